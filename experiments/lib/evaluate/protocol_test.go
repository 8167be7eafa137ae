package evaluate

import (
	"context"
	"errors"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/adapterlab/llama-adapter/datasets/assets"
	"github.com/adapterlab/llama-adapter/datasets/scienceqa"
	"github.com/adapterlab/llama-adapter/models/device"
	"github.com/adapterlab/llama-adapter/models/llama"
	"github.com/adapterlab/llama-adapter/models/tokenizer"
	"github.com/gomlx/compute/dtypes"
)

func TestParseList(t *testing.T) {
	names := func(ps []Protocol) string {
		var s []string
		for _, p := range ps {
			s = append(s, p.Name())
		}
		return strings.Join(s, ",")
	}
	for in, want := range map[string]string{
		"cloze,cloze-norm,letter":  "cloze,cloze-norm,letter",
		" cloze-calibrated, cloze": "cloze-calibrated,cloze",
		"letter+cloze":             "letter,cloze,cloze-norm",
		"both":                     "generate,letter",
		"all":                      "generate,letter,cloze,cloze-norm",
		"generate":                 "generate",
	} {
		ps, err := ParseList(in)
		if err != nil || names(ps) != want {
			t.Errorf("ParseList(%q) = %s, %v; want %s", in, names(ps), err, want)
		}
	}
	for _, bad := range []string{"", "clozed", "letter,letter", "letter,", "both,letter"} {
		if _, err := ParseList(bad); err == nil {
			t.Errorf("ParseList(%q) accepted", bad)
		}
	}
}

// storiesEnv is stories260K (and its tokenizer) on the first n problems of the 150-problem sample.
func storiesEnv(t *testing.T, n int) *Env {
	t.Helper()
	m, err := llama.Load(assets.Require(t, assets.Path("models", "stories260K", "stories260K.bin")), dtypes.Float32)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(assets.Require(t, assets.Path("models", "stories260K", "tok512.bin")))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(assets.Require(t, assets.Path("scienceqa", "problems_sample150.json")))
	if err != nil {
		t.Fatal(err)
	}
	ps, _, err := scienceqa.ParseProblemsJSON("problems_sample150.json", data)
	if err != nil {
		t.Fatal(err)
	}
	return &Env{Runner: &Runner{Model: m, Backend: device.MustShared(), BatchSize: 4, PadMultiple: 16, MaxLen: 256},
		Problems: ps[:n], Setup: Setup{Tokenizer: tok, Format: scienceqa.QCMA, MaxLen: 256, MaxNew: 4}}
}

// TestClozeProtocols checks cloze-norm and cloze-calibrated against their definitions, from scores computed apart:
// cloze-norm is the cloze log-probability over the option's token count; cloze-calibrated is it minus the
// option's log-probability after "Answer:" alone, scored here one problem at a time. The three share one cloze pass.
func TestClozeProtocols(t *testing.T) {
	env := storiesEnv(t, 12)
	passes := map[string]int{}
	env.Progress = func(p string, done, total int) {
		if done == total {
			passes[p]++
		}
	}
	ps, err := ParseList("cloze,cloze-norm,cloze-calibrated")
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), env, ps, &strings.Builder{})
	if err != nil {
		t.Fatal(err)
	}
	// cloze's pass, then calibrated's unconditional one; cloze-norm reads cloze's.
	if passes["cloze"] != 1 || passes["cloze-norm"] != 0 || passes["cloze-calibrated"] != 1 {
		t.Errorf("passes per protocol: %v", passes)
	}
	cloze, norm, cal := res[0], res[1], res[2]
	solo := &Runner{Model: env.Runner.Model, Backend: env.Runner.Backend, BatchSize: 1, PadMultiple: 8, MaxLen: 256}
	differs := 0
	for _, p := range env.Problems {
		bare := bareExample(t, env, p)
		u := scoreCloze(t, solo, []ClozeExample{bare})
		c, err := scienceqa.TokenizeCloze(env.Tokenizer, p, scienceqa.ClozeOptions{MaxLen: 256})
		if err != nil {
			t.Fatal(err)
		}
		for o := range p.Choices {
			lp := cloze.Scores[p.PID][o]
			if got, want := norm.Scores[p.PID][o], lp/float64(len(c.Options[o])); math.Abs(got-want) > 1e-9 {
				t.Errorf("pid %s option %d: cloze-norm %v, want %v", p.PID, o, got, want)
			}
			if got, want := cal.Scores[p.PID][o], lp-u[0].LogProbs[o]; math.Abs(got-want) > 1e-4 {
				t.Errorf("pid %s option %d: cloze-calibrated %v, want %v", p.PID, o, got, want)
			}
		}
		for _, r := range res {
			if best, _ := scienceqa.ArgmaxLetter(r.Scores[p.PID], len(p.Choices)); r.Choices[p.PID] != best {
				t.Errorf("%s pid %s: chose %d, its scores' argmax is %d", r.Protocol, p.PID, r.Choices[p.PID], best)
			}
		}
		if cal.Choices[p.PID] != cloze.Choices[p.PID] {
			differs++
		}
	}
	t.Logf("calibration changes %d of %d answers", differs, len(env.Problems))
}

// bareExample is a problem's options after the bare cue, as cloze-calibrated's unconditional pass scores them.
func bareExample(t *testing.T, env *Env, p *scienceqa.Problem) ClozeExample {
	t.Helper()
	return clozeExample(p.PID, scienceqa.TokenizeContinuations(env.Tokenizer, scienceqa.ClozeAnswerCue, p.Choices), nil)
}

// TestCancelStopsEvaluation: a cancelled context stops every protocol, letter scoring and generation included,
// with the context's error.
func TestCancelStopsEvaluation(t *testing.T) {
	env := storiesEnv(t, 6) // two batches of 4 per protocol
	for _, name := range []string{"letter", "cloze", "generate"} {
		ps, _ := ParseList(name)
		ctx, cancel := context.WithCancel(context.Background())
		// Cancel after the first batch: the second must not run.
		batches := 0
		env.Progress = func(string, int, int) {
			batches++
			cancel()
		}
		if _, err := Run(ctx, env, ps, &strings.Builder{}); !errors.Is(err, context.Canceled) || batches != 1 {
			t.Errorf("%s: %v after %d batches; want context.Canceled after 1", name, err, batches)
		}
		cancel()
	}
}
