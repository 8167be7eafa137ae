package main

import (
	"bytes"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/adapterlab/llama-adapter/adapter"
	"github.com/adapterlab/llama-adapter/datasets/assets"
	"github.com/adapterlab/llama-adapter/datasets/scienceqa"
	"github.com/adapterlab/llama-adapter/experiments/lib/pipeline"
	"github.com/adapterlab/llama-adapter/experiments/lib/pipeline/pipelinetest"
)

// storiesRun makes a run folder of the stories260K preset (with ac's layer count and prompt length, and change
// applied) holding a new adapter of config ac and the model's digest, as a trained run would.
func storiesRun(t *testing.T, ac adapter.Config, change func(c *pipeline.Config)) string {
	t.Helper()
	c := pipelinetest.Stories260K(t)
	c.Adapter.Layers, c.Adapter.PromptLen = ac.Layers, ac.PromptLen
	if change != nil {
		change(&c)
	}
	return pipelinetest.RunFolder(t, ac, c, "")
}

// evalPID is the first problem of the stories260K preset's evaluation fold.
func evalPID(t *testing.T) string {
	t.Helper()
	c := pipelinetest.Stories260K(t)
	assets.Require(t, c.Data.Dir)
	return evalProblems(t, c)[0].PID
}

// evalProblems returns the evaluation fold of c's data set, in the order runs evaluate it.
func evalProblems(t *testing.T, c pipeline.Config) []*scienceqa.Problem {
	t.Helper()
	src, err := scienceqa.Open(c.Data.Dir, scienceqa.OpenOptions{Problems: c.Data.ProblemsFile, Splits: c.Data.SplitsFile, NoImageCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	ds, err := src.Load()
	if err != nil {
		t.Fatal(err)
	}
	_, eval, err := scienceqa.TrainEval(ds.Problems, c.Data.Folds, c.Data.FoldSeed, c.Data.EvalFold)
	if err != nil {
		t.Fatal(err)
	}
	return eval
}

func askCmd(t *testing.T, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	if code := run(args, &out, &errOut); code != 0 {
		t.Fatalf("%v: exit %d\n%s", args, code, errOut.String())
	}
	return out.String()
}

var scoreRow = regexp.MustCompile(`(?m)^  [ ✓]\([A-Z]\) .*?\s(-?\d+\.\d+)[ ←]+\s+(-?\d+\.\d+)`)

// scoreColumns parses the printed score rows: base and adapter values.
func scoreColumns(t *testing.T, out string) (base, adapted []float64) {
	t.Helper()
	for _, m := range scoreRow.FindAllStringSubmatch(out, -1) {
		b, _ := strconv.ParseFloat(m[1], 64)
		a, _ := strconv.ParseFloat(m[2], 64)
		base, adapted = append(base, b), append(adapted, a)
	}
	if len(base) == 0 {
		t.Fatalf("no score rows in:\n%s", out)
	}
	return base, adapted
}

// TestAskPID: ask on a problem of the evaluation fold prints the prompt, the scores of both models side by side,
// the generations and the gates. A zero-gate adapter's column equals the base model's; a random one's does not.
func TestAskPID(t *testing.T) {
	pid := evalPID(t)
	zero := storiesRun(t, adapter.Config{Layers: 3, PromptLen: 4, Init: adapter.InitZero}, nil)
	out := askCmd(t, "ask", "-preset", "stories260K", "-run", zero, "-pid", pid)
	for _, want := range []string{"problem " + pid + ": evaluation fold 4 of 5", "Question: ", "The answer is", "letter: log p",
		"generation (greedy", "base model:", "with adapter:", "gates as applied (tanh(g), per head), adapted layers 2..4", "layer  4:"} {
		if !strings.Contains(out, want) {
			t.Errorf("ask output lacks %q:\n%s", want, out)
		}
	}
	base, adapted := scoreColumns(t, out)
	for i := range base {
		if d := base[i] - adapted[i]; d > 1e-3 || d < -1e-3 {
			t.Errorf("zero-gate adapter: score row %d is %g with it, %g without", i, adapted[i], base[i])
		}
	}
	random := storiesRun(t, adapter.Config{Layers: 3, PromptLen: 4, Init: adapter.InitRandom, Seed: 2}, nil)
	out = askCmd(t, "ask", "-preset", "stories260K", "-run", random, "-pid", pid)
	base2, adapted2 := scoreColumns(t, out)
	differ := false
	for i := range base2 {
		differ = differ || base2[i] != adapted2[i]
		if base2[i] != base[i] {
			t.Errorf("the base model's score row %d changed with the adapter loaded: %g vs %g", i, base2[i], base[i])
		}
	}
	if !differ {
		t.Errorf("a random adapter left every score unchanged:\n%s", out)
	}
}

// TestAskQuestionImage: a question of one's own with an image, put to a multimodal run (random-weight vision tower):
// the image goes through the run's tower, and the cloze protocol is shown when the run evaluated it.
func TestAskQuestionImage(t *testing.T) {
	dir := storiesRun(t, adapter.Config{Layers: 2, PromptLen: 3, Init: adapter.InitRandom, Seed: 4,
		Visual: &adapter.VisualConfig{Scales: 3, FeatureDim: 128}}, func(c *pipeline.Config) {
		c.Vision.Modality, c.Vision.CLIP, c.Eval.Mode = pipeline.Multimodal, "random", pipeline.EvalScores
	})
	img := image.NewNRGBA(image.Rect(0, 0, 40, 30))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 7)
	}
	img.SetNRGBA(0, 0, color.NRGBA{1, 2, 3, 255})
	path := filepath.Join(t.TempDir(), "q.png")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
	f.Close()
	out := askCmd(t, "ask", "-preset", "stories260K", "-run", dir, "-question", "Which is hotter?", "-choices", "the sun|the moon", "-image", path, "-feature-cache", t.TempDir())
	for _, want := range []string{"image " + path + " through random-weight ViT", "Question: Which is hotter?", "cloze: log p", "cloze-norm", "(B) the moon"} {
		if !strings.Contains(out, want) {
			t.Errorf("ask output lacks %q:\n%s", want, out)
		}
	}
}

// TestEvalRunFolderBringsSettings: eval -adapter <a multimodal run folder> runs with the run's vision tower without
// repeating -modality and -clip (it failed with "clip: stat : no such file or directory" before).
func TestEvalRunFolderBringsSettings(t *testing.T) {
	dir := storiesRun(t, adapter.Config{Layers: 2, PromptLen: 3, Init: adapter.InitRandom, Seed: 4,
		Visual: &adapter.VisualConfig{Scales: 3, FeatureDim: 128}}, func(c *pipeline.Config) {
		c.Vision.Modality, c.Vision.CLIP = pipeline.Multimodal, "random"
	})
	var out, errOut bytes.Buffer
	args := []string{"eval", "-preset", "stories260K", "-adapter", dir, "-train-limit", "4", "-eval-limit", "6", "-out", t.TempDir(), "-feature-cache", t.TempDir(), "-K", "9"}
	if code := run(args, &out, &errOut); code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errOut.String())
	}
	for _, want := range []string{"its recorded settings apply", "vision tower random", "-K 9 overrides the run's recorded 3", "vision tower: random-weight ViT"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("eval output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestSubcommandHelp: every subcommand's -h exits 0.
func TestSubcommandHelp(t *testing.T) {
	for _, sub := range []string{"-h", "train", "eval", "score", "compare", "counterfactual", "features", "ask"} {
		args := []string{sub, "-h"}
		if sub == "-h" {
			args = args[:1]
		}
		var out, errOut bytes.Buffer
		if code := run(args, &out, &errOut); code != 0 {
			t.Errorf("%v: exit %d\n%s", args, code, errOut.String())
		}
	}
}

// TestAskMatchesEval: ask's scores with the adapter are the run's evaluation's, protocol by protocol, for every
// scoring protocol the run recorded (cloze-calibrated included): eval -adapter on the same problem writes them to
// choice_scores_<protocol>.json. The base model's column is the same evaluation without the adapter, so the
// columns differ for a random adapter.
func TestAskMatchesEval(t *testing.T) {
	pid := evalPID(t)
	protocols := []string{"letter", "cloze", "cloze-calibrated"}
	dir := storiesRun(t, adapter.Config{Layers: 3, PromptLen: 4, Init: adapter.InitRandom, Seed: 5}, func(c *pipeline.Config) {
		c.Eval.Mode = pipeline.EvalMode(strings.Join(protocols, ","))
	})
	out := askCmd(t, "ask", "-preset", "stories260K", "-run", dir, "-pid", pid)
	for _, want := range []string{"cloze-calibrated: log p", "cloze-calibrated's unconditional prompt", "; cloze, cloze-calibrated) ──", "generation (greedy"} {
		if !strings.Contains(out, want) {
			t.Errorf("ask output lacks %q:\n%s", want, out)
		}
	}
	base, adapted := scoreColumns(t, out)
	evalDir := t.TempDir()
	var evOut, evErr bytes.Buffer
	args := []string{"eval", "-preset", "stories260K", "-adapter", dir, "-train-limit", "4", "-eval-limit", "1", "-out", evalDir, "-eval", strings.Join(protocols, ",")}
	if code := run(args, &evOut, &evErr); code != 0 {
		t.Fatalf("%v: exit %d\n%s\n%s", args, code, evOut.String(), evErr.String())
	}
	var want []float64
	for _, p := range protocols {
		raw, err := os.ReadFile(filepath.Join(evalDir, "choice_scores_"+p+".json"))
		if err != nil {
			t.Fatal(err)
		}
		var scores map[string][]float64
		if err := json.Unmarshal(raw, &scores); err != nil {
			t.Fatal(err)
		}
		if scores[pid] == nil {
			t.Fatalf("%s: no scores for pid %s", p, pid)
		}
		want = append(want, scores[pid]...)
	}
	if len(want) != len(adapted) {
		t.Fatalf("ask printed %d score rows, the evaluation has %d scores:\n%s", len(adapted), len(want), out)
	}
	differ := false
	for i := range want {
		// ask prints 4 decimals.
		if d := adapted[i] - want[i]; d > 6e-5 || d < -6e-5 {
			t.Errorf("score row %d: ask %.4f, the run's evaluation %.6f", i, adapted[i], want[i])
		}
		differ = differ || base[i] != adapted[i]
	}
	if !differ {
		t.Errorf("a random adapter's column equals the base model's:\n%s", out)
	}
}
