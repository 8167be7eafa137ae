package pipeline

import (
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/adapterlab/llama-adapter/adapter"
	"github.com/adapterlab/llama-adapter/datasets/scienceqa"
	"github.com/adapterlab/llama-adapter/experiments/lib/evaluate"
	"github.com/adapterlab/llama-adapter/models/tokenizer"
	"github.com/gomlx/gomlx/core/tensors"
)

// Asking one question: a problem of the run's data (by pid) or one written by hand, answered by the base model and
// by the model with the adapter, under every scoring protocol of the run and by free generation, with the prompts
// as the model reads them and the adapter's gates. It is how a researcher sees what an adapter changed.

// AskQuestion is what Ask is asked: PID names a problem of cfg's data; otherwise Problem is used as given (its
// Answer is not known: any valid index).
type AskQuestion struct {
	PID     string
	Problem *scienceqa.Problem
}

// AskPrompt is one protocol's prompt: its tokens and their text as the model reads them.
type AskPrompt struct {
	Tokens []int
	Text   string
}

// AskAnswer is one model's answers (the base model's, or with the adapter).
type AskAnswer struct {
	// Letter[o] is option o's letter-scoring log-probability; LetterChoice the protocol's answer (-1: not run).
	Letter       []float64
	LetterChoice int
	// Cloze holds the cloze scores (summed log-probabilities, token counts and both answers); nil when not run.
	Cloze *evaluate.ClozeResult
	// Generated is the greedy continuation of the generation prompt (cut at the first newline, as the evaluation
	// does); GenChoice its answer, Parsed whether "The answer is X" was found (else the fallback chose).
	Generated string
	GenChoice int
	Parsed    bool
}

// AskResult is everything Ask found.
type AskResult struct {
	Problem *scienceqa.Problem
	// AnswerKnown is false for a question given by hand (Problem.Answer means nothing then).
	AnswerKnown bool
	// Where says where the problem sits in the run's data ("evaluation fold 4 of 5 (not trained on)", ...).
	Where string
	// Letter, Cloze and Generate are the prompts (Letter/Cloze nil when the run has no such protocol);
	// LetterOptions and ClozeOptions each option's continuation tokens.
	Letter, Cloze, Generate     *AskPrompt
	LetterOptions, ClozeOptions [][]int
	Base, Adapted               AskAnswer
	Adapter                     *adapter.Adapter
	// Gates are the adapted layers' gates as applied (tanh(g) for head-tanh, g otherwise), one row per layer.
	Gates [][]float64
	// ImageNote says which image features the adapter saw ("" for a text-only adapter).
	ImageNote string
	MaxNew    int
}

// Ask puts one question to the model with and without the adapter at adapterPath. Progress goes to out.
func Ask(cfg Config, adapterPath string, q AskQuestion, out io.Writer) (*AskResult, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s, err := open(cfg, out)
	if err != nil {
		return nil, err
	}
	defer s.close()
	res := &AskResult{MaxNew: cfg.Eval.MaxNew}
	if res.Problem, res.Where, err = s.findProblem(q); err != nil {
		return nil, err
	}
	res.AnswerKnown = q.PID != ""
	if res.Adapter, err = LoadAdapter(adapterPath, s.model); err != nil {
		return nil, fmt.Errorf("adapter %s: %w", adapterPath, err)
	}
	fmt.Fprintln(out, adapter.Count(res.Adapter.Config, s.model.Config).Summary())
	one := &runData{eval: []*scienceqa.Problem{res.Problem}}
	var feats map[string][]float32
	if vc := res.Adapter.Config.Visual; vc != nil {
		res.ImageNote = "no image: zero features (as the evaluation's problems without one)"
		if res.Problem.HasImage() {
			var visual *adapter.VisualConfig
			if feats, visual, err = s.featuresOf(one, out); err != nil {
				return nil, err
			}
			if visual.Scales != vc.Scales || visual.FeatureDim != vc.FeatureDim {
				return nil, fmt.Errorf("adapter %s expects %d×%d image features; -clip %s gives %d×%d", adapterPath,
					vc.Scales, vc.FeatureDim, cfg.Vision.CLIP, visual.Scales, visual.FeatureDim)
			}
			res.ImageNote = fmt.Sprintf("image %s through %s", res.Problem.Image.Path, one.vision)
		} else {
			feats = map[string][]float32{res.Problem.PID: make([]float32, vc.Scales*vc.FeatureDim)}
		}
	}
	// The run's scoring protocols and generation, each with the image features (the adapter's side) and without
	// (the base model takes none); the tokens are the same.
	gen := cfg
	gen.Eval.Mode = EvalGenerate
	var ex [2][2]*runExamples // [without, with features][scoring, generation]
	for i, f := range []map[string][]float32{nil, feats} {
		for j, c := range []Config{cfg, gen} {
			if ex[i][j], err = buildExamples(c, s.tok, one, f); err != nil {
				return nil, err
			}
		}
	}
	exScore, exGen := ex[1][0], ex[1][1]
	decode := func(ids []int) *AskPrompt { return &AskPrompt{Tokens: ids, Text: promptText(s.tok, ids)} }
	if len(exScore.letters) > 0 {
		res.Letter = decode(ints(exScore.letters[0].Prompt))
		for _, o := range exScore.letters[0].Options {
			res.LetterOptions = append(res.LetterOptions, ints(o))
		}
	}
	if len(exScore.clozes) > 0 {
		res.Cloze = decode(ints(exScore.clozes[0].Prompt))
		for _, o := range exScore.clozes[0].Options {
			res.ClozeOptions = append(res.ClozeOptions, ints(o))
		}
	}
	res.Generate = decode(exGen.gens[0].Prompt)
	fallback, err := cfg.Eval.Fallback.scienceqa()
	if err != nil {
		return nil, err
	}
	resolver := scienceqa.Resolver{Fallback: fallback, Seed: cfg.Seed}
	for _, side := range []struct {
		name string
		a    *adapter.Adapter
		ex   [2]*runExamples
		dst  *AskAnswer
	}{{"base model", nil, ex[0], &res.Base}, {"with the adapter", res.Adapter, ex[1], &res.Adapted}} {
		fmt.Fprintf(out, "answering %s (compiling the scoring and generation graphs first)…\n", side.name)
		r := &evaluate.Runner{Model: s.model, Adapter: side.a, Backend: s.backend, BatchSize: 1, PadMultiple: 32, MaxLen: cfg.Train.MaxLen}
		if *side.dst, err = askAnswer(r, side.ex[0], side.ex[1], cfg.Eval.MaxNew, s.tok, resolver); err != nil {
			return nil, fmt.Errorf("%s: %w", side.name, err)
		}
	}
	if res.Gates, err = appliedGates(res.Adapter); err != nil {
		return nil, err
	}
	return res, nil
}

// askAnswer is the one place Ask calls the evaluation code: its letter and cloze scoring and its generation, on
// one problem's examples, exactly as a run's evaluation calls them.
func askAnswer(r *evaluate.Runner, scoring, gen *runExamples, maxNew int, tok tokenizer.Tokenizer, resolver scienceqa.Resolver) (AskAnswer, error) {
	ans := AskAnswer{LetterChoice: -1}
	if len(scoring.letters) > 0 {
		scores, err := r.OptionScores(scoring.letters)
		if err != nil {
			return ans, err
		}
		choices, err := r.ScoreLetters(scoring.letters)
		if err != nil {
			return ans, err
		}
		ans.Letter, ans.LetterChoice = scores[0], choices[0]
	}
	if len(scoring.clozes) > 0 {
		res, err := r.ScoreCloze(scoring.clozes, nil)
		if err != nil {
			return ans, err
		}
		ans.Cloze = &res[0]
	}
	outs, err := r.Generate(gen.gens, maxNew, func(id int) bool { return id == tok.EOS() })
	if err != nil {
		return ans, err
	}
	text := tok.Decode(outs[0])
	if j := strings.IndexByte(text, '\n'); j >= 0 { // run_gpt3.py stops at the first newline, as evaluateRun
		text = text[:j]
	}
	ans.Generated = text
	ans.GenChoice, ans.Parsed = resolver.Index(gen.gens[0].ID, strings.TrimSpace(text), gen.nChoices[0])
	return ans, nil
}

// findProblem returns the question's problem and where it sits in the run's data.
func (s *session) findProblem(q AskQuestion) (*scienceqa.Problem, string, error) {
	if q.PID == "" {
		if q.Problem == nil {
			return nil, "", fmt.Errorf("ask: no pid and no question")
		}
		return q.Problem, "a question given on the command line", nil
	}
	split := fmt.Sprintf("evaluation fold %d of %d (seed %d)", s.cfg.Data.EvalFold, s.cfg.Data.Folds, s.cfg.Data.FoldSeed)
	if s.cfg.Data.EvalSplit != "" {
		split = "evaluation split " + s.cfg.Data.EvalSplit
	}
	for _, p := range s.data.eval {
		if p.PID == q.PID {
			return p, split + ": not trained on", nil
		}
	}
	for _, p := range s.data.train {
		if p.PID == q.PID {
			return p, "a training problem: the adapter was trained on it", nil
		}
	}
	src, err := scienceqa.Open(s.cfg.Data.Dir, scienceqa.OpenOptions{Problems: s.cfg.Data.ProblemsFile, Splits: s.cfg.Data.SplitsFile,
		NoImageCheck: s.cfg.Vision.Modality != Multimodal})
	if err != nil {
		return nil, "", err
	}
	ds, err := src.Load()
	if err != nil {
		return nil, "", err
	}
	for _, p := range ds.Problems {
		if p.PID == q.PID {
			return p, "in the data but neither trained on (beyond -train-limit) nor in the " + split, nil
		}
	}
	return nil, "", fmt.Errorf("pid %s is not among the %d problems of %s", q.PID, len(ds.Problems), src)
}

// featuresOf computes the image features of d's problems with the session's vision tower (cached like a run's).
func (s *session) featuresOf(d *runData, out io.Writer) (map[string][]float32, *adapter.VisualConfig, error) {
	feats, scales, dim, err := imageFeatures(s.cfg, s.backend, d, out)
	if err != nil {
		return nil, nil, err
	}
	if len(d.skippedImages) > 0 {
		return nil, nil, fmt.Errorf("the image of pid %s does not decode", d.skippedImages[0])
	}
	v := s.cfg.Vision.Projection
	v.Scales, v.FeatureDim = scales, dim
	return feats, &v, nil
}

// appliedGates returns each adapted layer's gates as the extension applies them: tanh(g) per head for head-tanh,
// the stored value for the other modes (used as is).
func appliedGates(a *adapter.Adapter) ([][]float64, error) {
	t, err := a.Gates.Value()
	if err != nil {
		return nil, err
	}
	vals, err := tensors.CopyFlatData[float32](t)
	if err != nil {
		return nil, err
	}
	L := a.Config.Layers
	per := len(vals) / L
	rows := make([][]float64, L)
	for j := range rows {
		for _, g := range vals[j*per : (j+1)*per] {
			v := float64(g)
			if a.Config.Gate == adapter.GateHeadTanh {
				v = math.Tanh(v)
			}
			rows[j] = append(rows[j], v)
		}
	}
	return rows, nil
}

// promptText is the text of a prompt's tokens as the model reads them: every piece in order (special tokens such
// as BOS written as ⟨bos⟩).
func promptText(tok tokenizer.Tokenizer, ids []int) string {
	var sb strings.Builder
	prev := -1
	for _, id := range ids {
		switch id {
		case tok.BOS():
			sb.WriteString("⟨bos⟩")
		case tok.EOS():
			sb.WriteString("⟨eos⟩")
		default:
			sb.WriteString(tok.DecodePiece(prev, id))
		}
		prev = id
	}
	return sb.String()
}

func ints(v []int32) []int {
	out := make([]int, len(v))
	for i, x := range v {
		out[i] = int(x)
	}
	return out
}
