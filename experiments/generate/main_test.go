package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/adapterlab/llama-adapter/datasets/assets"
)

// TestGreedyReference reproduces llama2.c's run.c output for stories260K (-t 0, empty prompt, 256 steps) byte for
// byte, with the KV cache and without it.
func TestGreedyReference(t *testing.T) {
	want, err := os.ReadFile(assets.Require(t, assets.Path("models", "stories260K", "greedy_reference.txt")))
	if err != nil {
		t.Fatal(err)
	}
	modes := [][]string{{}, {"-no-cache"}}
	if testing.Short() {
		modes = modes[:1] // the no-cache run recomputes 256 full sequences
	}
	for _, extra := range modes {
		var out, errOut bytes.Buffer
		args := append([]string{"-steps", "256", "-temperature", "0", "-stop-eos=false"}, extra...)
		if err := run(args, &out, &errOut); err != nil {
			t.Fatalf("%v: %v\n%s", extra, err, errOut.String())
		}
		if !bytes.Equal(out.Bytes(), want) {
			t.Errorf("%v: output differs from greedy_reference.txt\ngot:  %q\nwant: %q", extra, out.String(), string(want))
		}
		t.Logf("%v: %s", extra, bytes.TrimSpace(errOut.Bytes()))
	}
}

// TestTokenizeSmolLM2 checks -tokenize against the golden ids of every non-special case (llama.cpp's smollm
// pre-tokenizer, no BOS), printed as one JSON array.
func TestTokenizeSmolLM2(t *testing.T) {
	assets.RequireModel(t, assets.SmolLM2)
	var cases []struct {
		Name    string `json:"name"`
		Text    string `json:"text"`
		Special bool   `json:"parse_special_tokens"`
		IDs     []int  `json:"ids"`
	}
	readGoldenCases(t, "tokenizer.json", &cases)
	for _, c := range cases {
		var out, errOut bytes.Buffer
		if err := run([]string{"-model", assets.SmolLM2, "-install=false", "-tokenize", c.Text}, &out, &errOut); err != nil {
			t.Fatalf("%s: %v\n%s", c.Name, err, errOut.String())
		}
		want, _ := json.Marshal(c.IDs)
		if c.IDs == nil {
			want = []byte("[]")
		}
		if got := strings.TrimSpace(out.String()); got != string(want) {
			t.Errorf("%s: -tokenize printed %s, want %s", c.Name, got, want)
		}
	}
}

// TestGreedySmolLM2 runs the command on greedy.json's plain prompts with -bos as each case says, and on the chat
// case with -chat; the continuation must be the golden greedy text.
func TestGreedySmolLM2(t *testing.T) {
	assets.RequireModel(t, assets.SmolLM2)
	if testing.Short() {
		t.Skip("short: SmolLM2 greedy decoding compiles a 135M-parameter model")
	}
	var cases []struct {
		Name       string `json:"name"`
		PromptText string `json:"prompt_text"`
		BOS        bool   `json:"bos_prepended"`
		PromptIDs  []int  `json:"prompt_ids"`
		NewIDs     []int  `json:"new_ids"`
		NewText    string `json:"new_text"`
		FirstEOS   *int   `json:"first_eos_step"`
	}
	readGoldenCases(t, "greedy.json", &cases)
	ran := 0
	for _, c := range cases {
		if c.FirstEOS != nil || strings.Contains(c.PromptText, "<|im_start|>") {
			continue // the command stops at EOS and strips control tokens: checked by models/llama's greedy test
		}
		var out, errOut bytes.Buffer
		args := []string{"-model", assets.SmolLM2, "-install=false", "-prompt", c.PromptText,
			"-bos=" + strconv.FormatBool(c.BOS), "-steps", strconv.Itoa(len(c.PromptIDs) + len(c.NewIDs) - 1)}
		if err := run(args, &out, &errOut); err != nil {
			t.Fatalf("%s: %v\n%s", c.Name, err, errOut.String())
		}
		if want := c.PromptText + c.NewText + "\n"; out.String() != want {
			t.Errorf("%s:\ngot  %q\nwant %q", c.Name, out.String(), want)
		}
		ran++
	}
	if ran == 0 {
		t.Fatal("no greedy.json case without EOS and chat tokens")
	}
}

// readGoldenCases decodes the "cases" list of SmolLM2's golden file name (in the goldens' smollm2 folder) into
// cases, a pointer to a slice of the file's case type, and fails the test when the list is empty; the test is
// skipped when the goldens are not installed.
func readGoldenCases(t *testing.T, name string, cases any) {
	t.Helper()
	raw, err := os.ReadFile(assets.Require(t, assets.Golden("smollm2", name)))
	if err != nil {
		t.Fatal(err)
	}
	var golden struct {
		Cases json.RawMessage `json:"cases"`
	}
	if err := json.Unmarshal(raw, &golden); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if err := json.Unmarshal(golden.Cases, cases); err != nil {
		t.Fatalf("%s: cases: %v", name, err)
	}
	if reflect.ValueOf(cases).Elem().Len() == 0 {
		t.Fatalf("%s: no cases", name) // a test over no cases would pass without checking anything
	}
}

func TestResolveBOS(t *testing.T) {
	for _, c := range []struct {
		flag string
		want bool
		err  bool
	}{{"true", true, false}, {"false", false, false}, {"", true, false}, {"yes", false, true}} {
		got, err := resolveBOS(c.flag, nil)
		if (err != nil) != c.err || (!c.err && got != c.want) {
			t.Errorf("resolveBOS(%q) = %v, %v", c.flag, got, err)
		}
	}
}

// TestGenerateProfile: the command's generation phase reports its compiles and executions as a run's phases do.
// With the KV cache and a prompt of several tokens, the step graph compiles for two shapes (the prefill of all
// prompt tokens but the last, and the one-token step) and runs once for the prefill plus once per token chosen
// (one more when a row stops at BOS/EOS: its stopping token is computed, not kept); without the cache one shape runs
// once per token.
func TestGenerateProfile(t *testing.T) {
	for _, c := range []struct {
		args     []string
		compiles int
		prefill  int
	}{{nil, 2, 1}, {[]string{"-no-cache"}, 1, 0}} {
		var out, errOut bytes.Buffer
		args := append([]string{"-prompt", "Once upon a time", "-steps", "40", "-temperature", "0"}, c.args...)
		p, err := generate(args, &out, &errOut)
		if err != nil {
			t.Fatalf("%v: %v\n%s", c.args, err, errOut.String())
		}
		var n int
		var secs, rate float64
		line := errOut.String()[strings.Index(errOut.String(), "generated "):]
		if _, err := fmt.Sscanf(line, "generated %d tokens in %fs: %f tokens/s", &n, &secs, &rate); err != nil || n == 0 {
			t.Fatalf("%v: no token count in stderr (%v):\n%s", c.args, err, errOut.String())
		}
		if p == nil || p.Phase != "generate" || p.Compiles != c.compiles || p.CompileSeconds <= 0 || p.ExecuteSeconds <= 0 ||
			p.Executions < c.prefill+n || p.Executions > c.prefill+n+1 || p.CompileSeconds+p.ExecuteSeconds > p.WallSeconds+0.01 {
			t.Errorf("%v: %d tokens generated, profile %+v; want %d compiles, %d..%d executions, compile+execute within the wall time",
				c.args, n, p, c.compiles, c.prefill+n, c.prefill+n+1)
		}
		if !strings.Contains(errOut.String(), "profile: "+p.String()) {
			t.Errorf("%v: stderr lacks the profile line:\n%s", c.args, errOut.String())
		}
	}
}
