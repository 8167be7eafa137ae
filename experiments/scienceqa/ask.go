package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/adapterlab/llama-adapter/datasets/assets"
	"github.com/adapterlab/llama-adapter/datasets/scienceqa"
	"github.com/adapterlab/llama-adapter/experiments/lib/evaluate"
	"github.com/adapterlab/llama-adapter/experiments/lib/pipeline"
)

// runAsk puts one question to a trained run, with and without its adapter:
//
//	go run ./experiments/scienceqa ask -run DIR|ID -pid PID
//	go run ./experiments/scienceqa ask -run DIR|ID -question TEXT -choices "a|b|c" [-hint TEXT] [-image FILE]
//
// It prints the prompts exactly as the model reads them, each choice's score under every scoring protocol of the
// run's -eval (letter, cloze, cloze-norm, cloze-calibrated, as the evaluation computes them), the greedy generation
// and the answer parsed from it, and the adapter's gates per layer.
func runAsk(args []string, stdout, stderr io.Writer) error {
	var adapterPath, pid, question, choices, hint, image string
	var fs *flag.FlagSet
	cfg, err := parseConfig("ask", args, stderr, func(f *flag.FlagSet) {
		fs = f
		if r := f.Lookup("run"); r != nil {
			r.Usage = "the run to ask: a run folder, or a run id under -runs"
		}
		f.StringVar(&adapterPath, "adapter", "", "adapter to ask: a run folder, an adapter.safetensors or an official v1 .pth (default: the -run folder)")
		f.StringVar(&pid, "pid", "", "problem to ask, by pid (from the run's data)")
		f.StringVar(&question, "question", "", "a question of your own (instead of -pid), with -choices")
		f.StringVar(&choices, "choices", "", `the question's choices, separated by "|"`)
		f.StringVar(&hint, "hint", "", "the question's context (optional)")
		f.StringVar(&image, "image", "", "the question's image (optional; a multimodal run encodes it with its vision tower)")
	})
	if err != nil {
		return err
	}
	// -run names the run folder: a path, or an id under -runs.
	if adapterPath == "" && cfg.RunID != "" {
		adapterPath = cfg.RunID
		if !pipeline.IsRunFolder(adapterPath) {
			adapterPath = filepath.Join(cfg.RunsDir, cfg.RunID)
		}
	}
	cfg.RunID = "" // -run named the folder to read (maybe a path, not an id); ask writes no run folder
	if adapterPath == "" {
		return fmt.Errorf("ask needs a run (-run DIR or ID) or an adapter (-adapter PATH)")
	}
	if cfg, err = withRunSettings(cfg, adapterPath, fs, stderr); err != nil {
		return err
	}
	if pipeline.IsRunFolder(adapterPath) && !visited(fs, "eval") {
		rec, err := pipeline.ReadConfig(adapterPath)
		if err != nil {
			return err
		}
		cfg.Eval.Mode = rec.Eval.Mode // the run's protocols
	}
	var q pipeline.AskQuestion
	switch {
	case pid != "" && question != "":
		return fmt.Errorf("give -pid or -question, not both")
	case pid != "":
		q.PID = pid
	case question != "":
		cs := strings.Split(choices, "|")
		if len(cs) < 2 {
			return fmt.Errorf(`-choices %q: give at least two choices separated by "|"`, choices)
		}
		for i := range cs {
			cs[i] = strings.TrimSpace(cs[i])
		}
		p := &scienceqa.Problem{PID: "question", Question: question, Choices: cs, Hint: hint}
		if image != "" {
			if _, err := os.Stat(image); err != nil {
				return fmt.Errorf("-image: %w", err)
			}
			p.Image.Path = image
		}
		q.Problem = p
	default:
		return fmt.Errorf("ask needs -pid PID or -question TEXT -choices \"a|b|c\"")
	}
	if image != "" && question == "" {
		return fmt.Errorf("-image goes with -question (a -pid problem brings its own image)")
	}
	pipeline.EnsureBackend(cfg, stderr)
	ctx, cancel := interruptible()
	defer cancel()
	res, err := pipeline.Ask(ctx, cfg, adapterPath, q, stderr)
	if err != nil {
		return err
	}
	printAsk(stdout, adapterPath, res)
	return nil
}

// visited reports whether flag name was given.
func visited(fs *flag.FlagSet, name string) bool {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	return given
}

// withRunSettings gives cfg the settings a run folder recorded (model, vision tower, adapter, prompt format, seed)
// where their flags were not given, saying which given flags contradict the recording, and checks that the model
// is the run's by its recorded digest. Other paths (adapter files) leave cfg as it is.
func withRunSettings(cfg pipeline.Config, path string, fs *flag.FlagSet, w io.Writer) (pipeline.Config, error) {
	if !pipeline.IsRunFolder(path) {
		return cfg, nil
	}
	rec, err := pipeline.ReadConfig(path)
	if err != nil {
		return cfg, fmt.Errorf("run folder %s: %w", path, err)
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	merged, conflicts := pipeline.MergeRunSettings(rec, cfg, given)
	fmt.Fprintf(w, "run folder %s: its recorded settings apply where no flag is given (model %s, %s", path, merged.Model.Path, merged.Vision.Modality)
	if merged.Vision.CLIP != "" {
		fmt.Fprintf(w, ", vision tower %s", merged.Vision.CLIP)
	}
	fmt.Fprintf(w, ", format %s)\n", merged.Data.Format)
	for _, c := range conflicts {
		fmt.Fprintf(w, "run folder %s: %s\n", path, c)
	}
	model := merged.Model.Path
	if assets.IsModelName(model) {
		if model, err = assets.ModelPath(model); err != nil {
			return merged, nil // not installed yet: it is installed (the pinned file) when the model is opened
		}
	}
	if err := pipeline.CheckRecordedModel(path, model); err != nil {
		return merged, fmt.Errorf("%w (or give the run's %s instead of its folder)", err, pipeline.AdapterFile)
	}
	return merged, nil
}

// printAsk writes Ask's findings: the problem, the prompts, the scores side by side, the generations, the gates.
func printAsk(w io.Writer, adapterPath string, r *pipeline.AskResult) {
	printAskProblem(w, adapterPath, r)
	printAskScores(w, r)
	printAskGates(w, r)
}

// printAskProblem writes the adapter, the problem with its metadata and answer, and the prompts.
func printAskProblem(w io.Writer, adapterPath string, r *pipeline.AskResult) {
	p := r.Problem
	a := r.Adapter
	fmt.Fprintf(w, "adapter: %s (L=%d, K=%d, gate %s", adapterPath, a.Config.Layers, a.Config.PromptLen, a.Config.Gate)
	if r.ImageNote != "" {
		fmt.Fprintf(w, "; %s", r.ImageNote)
	}
	fmt.Fprintln(w, ")")
	fmt.Fprintf(w, "problem %s: %s", p.PID, r.Where)
	for _, x := range []string{p.Subject, p.Topic, p.Grade} {
		if x != "" {
			fmt.Fprintf(w, " · %s", x)
		}
	}
	if p.HasImage() {
		fmt.Fprint(w, " · image")
	}
	fmt.Fprintln(w)
	if r.AnswerKnown {
		fmt.Fprintf(w, "correct answer: (%s) %s\n", scienceqa.Letter(p.Answer), p.Choices[p.Answer])
	}
	for _, ap := range r.Prompts {
		fmt.Fprintf(w, "\n── %s (%d tokens, as the model reads them; %s) ──\n%s\n", ap.Title, len(ap.Tokens), strings.Join(ap.Protocols, ", "), ap.Text)
	}
}

// askNameWidth is the width of the scores table's first column (the choice).
const askNameWidth = 34

// printAskScores writes each scoring protocol's per-choice scores, base model beside adapted, then the
// generation protocols' texts and parsed answers.
func printAskScores(w io.Writer, r *pipeline.AskResult) {
	p := r.Problem
	fmt.Fprintf(w, "\n%-*s %16s %16s\n", askNameWidth, "scores (← the answer)", "base model", "with adapter")
	var gens [][2]askGeneration
	for i, pr := range r.Protocols {
		b, ad := r.Base[i], r.Adapted[i]
		if b.Texts != nil {
			gens = append(gens, [2]askGeneration{{"base model", b}, {"with adapter", ad}})
		}
		if b.Scores == nil {
			continue
		}
		fmt.Fprintln(w, scoreHeading(pr, r.ClozeTokens))
		bs, as := b.Scores[p.PID], ad.Scores[p.PID]
		for o := range p.Choices {
			printAskRow(w, r, o, bs[o], as[o], b.Choices[p.PID] == o, ad.Choices[p.PID] == o)
		}
	}
	for _, g := range gens {
		fmt.Fprintf(w, "\ngeneration (greedy, at most %d tokens, cut at the first newline):\n", r.MaxNew)
		for _, side := range g {
			how := "parsed"
			if side.res.Unparsed > 0 {
				how = "no \"The answer is X\": fallback"
			}
			choice := "(none)"
			if c := side.res.Choices[p.PID]; c >= 0 && c < len(p.Choices) {
				choice = "(" + scienceqa.Letter(c) + ")"
			}
			fmt.Fprintf(w, "  %-13s %q → %s [%s]\n", side.name+":", side.res.Texts[p.PID], choice, how)
		}
	}
}

// askGeneration is one side (base model or adapted) of a generation protocol's result.
type askGeneration struct {
	name string
	res  *evaluate.Result
}

// printAskRow writes choice o's scores, base and adapted, marking the chosen ones and the answer.
func printAskRow(w io.Writer, r *pipeline.AskResult, o int, base, adapted float64, baseChosen, adaptedChosen bool) {
	p := r.Problem
	mark := func(v float64, chosen bool) string {
		s := fmt.Sprintf("%.4f", v)
		if chosen {
			s += " ←"
		} else {
			s += "  "
		}
		return s
	}
	name := fmt.Sprintf("(%s) %s", scienceqa.Letter(o), p.Choices[o])
	if r.AnswerKnown && o == p.Answer {
		name = "✓" + name
	} else {
		name = " " + name
	}
	if n := []rune(name); len(n) > askNameWidth-2 {
		name = string(n[:askNameWidth-3]) + "…"
	}
	fmt.Fprintf(w, "  %-*s %16s %16s\n", askNameWidth-2, name, mark(base, baseChosen), mark(adapted, adaptedChosen))
}

// printAskGates writes the gates per adapted layer as the model applies them.
func printAskGates(w io.Writer, r *pipeline.AskResult) {
	a := r.Adapter
	what := "g, used as is"
	if a.Config.Gate == "head-tanh" {
		what = "tanh(g), per head"
	}
	fmt.Fprintf(w, "\ngates as applied (%s), adapted layers %d..%d:\n", what, a.Config.FirstLayer(a.Model), a.Model.NumLayers-1)
	for j, g := range r.Gates {
		fmt.Fprintf(w, "  layer %2d:", a.Config.FirstLayer(a.Model)+j)
		for _, v := range g {
			fmt.Fprintf(w, " %+.4f", v)
		}
		fmt.Fprintln(w)
	}
}

// scoreHeading says what a scoring protocol's numbers are (its description for a protocol ask does not know).
func scoreHeading(pr evaluate.Protocol, clozeTokens []int) string {
	switch pr.Name() {
	case "letter":
		return "letter: log p(option's letter tokens)"
	case "cloze":
		return "cloze: log p(option's text), summed over its tokens"
	case "cloze-norm":
		return "cloze-norm: log p(option's text) per token (tokens: " + tokenCounts(clozeTokens) + ")"
	case "cloze-calibrated":
		return "cloze-calibrated: log p(option's text) − log p(it after \"" + scienceqa.ClozeAnswerCue + "\" alone)"
	}
	return pr.Name() + ": " + pr.Description()
}

func tokenCounts(n []int) string {
	s := make([]string, len(n))
	for i, v := range n {
		s[i] = fmt.Sprintf("%s %d", scienceqa.Letter(i), v)
	}
	return strings.Join(s, ", ")
}
