package pipeline

import (
	"context"
	"fmt"
	"io"
	"math"
	"slices"
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

// AskPrompt is a prompt as the model reads it: its tokens and their text, and the protocols that read it.
type AskPrompt struct {
	// Title says what the prompt is for.
	Title string
	// Protocols are the run's protocols that read this prompt.
	Protocols []string
	Tokens    []int
	Text      string
}

// AskResult is everything Ask found.
type AskResult struct {
	Problem *scienceqa.Problem
	// AnswerKnown is false for a question given by hand (Problem.Answer means nothing then).
	AnswerKnown bool
	// Where says where the problem sits in the run's data ("evaluation fold 4 of 5 (not trained on)", ...).
	Where string
	// Prompts are the prompts of the protocols run, as the protocols tokenize them (datasets/scienceqa).
	Prompts []AskPrompt
	// ClozeTokens[o] is the token count of option o's cloze continuation (nil: no cloze protocol ran).
	ClozeTokens []int
	// Protocols are the protocols run: the run's -eval list, with generation added at the end when it lacks it.
	// Base and Adapted hold their results on the problem (keyed by its pid), in that order: the base model's and
	// the model's with the adapter.
	Protocols     []evaluate.Protocol
	Base, Adapted []*evaluate.Result
	Adapter       *adapter.Adapter
	// Gates are the adapted layers' gates as applied (tanh(g) for head-tanh, g otherwise), one row per layer.
	Gates [][]float64
	// ImageNote says which image features the adapter saw ("" for a text-only adapter).
	ImageNote string
	MaxNew    int
}

// Ask puts one question to the model with and without the adapter at adapterPath, by every protocol of cfg's
// -eval (and generation), each run by experiments/lib/evaluate on an evaluation of the one problem set up as a
// run's evaluation is. Progress goes to out.
func Ask(ctx context.Context, cfg Config, adapterPath string, q AskQuestion, out io.Writer) (*AskResult, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	protocols, err := cfg.Eval.Mode.Protocols()
	if err != nil {
		return nil, err
	}
	if !slices.ContainsFunc(protocols, func(p evaluate.Protocol) bool { return p.Name() == string(EvalGenerate) }) {
		gen, ok := evaluate.Lookup(string(EvalGenerate))
		if !ok {
			return nil, fmt.Errorf("ask: no %q protocol registered", EvalGenerate)
		}
		protocols = append(protocols, gen)
	}
	s, err := open(cfg, out)
	if err != nil {
		return nil, err
	}
	defer s.close()
	res := &AskResult{MaxNew: cfg.Eval.MaxNew, Protocols: protocols}
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
	// The adapter's side reads the image features; the base model takes none. Everything else is the same.
	for _, side := range []struct {
		name  string
		a     *adapter.Adapter
		feats map[string][]float32
		dst   *[]*evaluate.Result
	}{{"base model", nil, nil, &res.Base}, {"with the adapter", res.Adapter, feats, &res.Adapted}} {
		env, err := evalEnv(cfg, s, side.a, one.eval, side.feats)
		if err != nil {
			return nil, err
		}
		if side.a != nil { // the prompts do not depend on the side: take them once, from the same setup
			if res.Prompts, res.ClozeTokens, err = askPrompts(env.Setup, res.Problem, protocols); err != nil {
				return nil, err
			}
		}
		fmt.Fprintf(out, "answering %s (compiling the scoring and generation graphs first)…\n", side.name)
		if *side.dst, err = evaluate.Run(ctx, env, protocols, out); err != nil {
			return nil, fmt.Errorf("%s: %w", side.name, err)
		}
	}
	if res.Gates, err = appliedGates(res.Adapter); err != nil {
		return nil, err
	}
	return res, nil
}

// askPrompts tokenizes p as the protocols of experiments/lib/evaluate do (the same datasets/scienceqa functions
// with the same options, from the evaluation's setup), for the protocols listed: the letter prompt, the cloze
// prompt (shared by the cloze protocols), cloze-calibrated's bare cue and the generation prompt. It also returns
// each option's cloze continuation length (nil without a cloze protocol).
func askPrompts(su evaluate.Setup, p *scienceqa.Problem, protocols []evaluate.Protocol) ([]AskPrompt, []int, error) {
	has := func(names ...string) []string {
		var found []string
		for _, pr := range protocols {
			if slices.Contains(names, pr.Name()) {
				found = append(found, pr.Name())
			}
		}
		return found
	}
	tok := su.Tokenizer
	var prompts []AskPrompt
	add := func(title string, ps []string, ids []int) {
		prompts = append(prompts, AskPrompt{Title: title, Protocols: ps, Tokens: ids, Text: promptText(tok, ids)})
	}
	if ps := has("letter"); ps != nil {
		l, err := scienceqa.TokenizeLetter(tok, p, su.Format, scienceqa.PromptOptions{UseCaption: su.Captions}, su.MaxLen)
		if err != nil {
			return nil, nil, fmt.Errorf("letter prompt: %w", err)
		}
		add("letter scoring prompt: each option's letter is scored as the next token", ps, l.Prompt)
	}
	var clozeTokens []int
	if ps := has("cloze", "cloze-norm", "cloze-calibrated"); ps != nil {
		c, err := scienceqa.TokenizeCloze(tok, p, scienceqa.ClozeOptions{Format: su.Format, UseCaption: su.Captions, MaxLen: su.MaxLen})
		if err != nil {
			return nil, nil, fmt.Errorf("cloze prompt: %w", err)
		}
		add("cloze prompt: each option's text is scored as its continuation", ps, c.Prompt)
		for _, o := range c.Options {
			clozeTokens = append(clozeTokens, len(o))
		}
	}
	if ps := has("cloze-calibrated"); ps != nil {
		c := scienceqa.TokenizeContinuations(tok, scienceqa.ClozeAnswerCue, p.Choices)
		add("cloze-calibrated's unconditional prompt: each option's text is scored after it too, and subtracted", ps, c.Prompt)
	}
	if ps := has(string(EvalGenerate)); ps != nil {
		ids, _, err := scienceqa.GenerationPrompt(tok, p, su.Format, scienceqa.PromptOptions{UseCaption: su.Captions, Target: su.Target}, su.MaxLen, su.MaxNew)
		if err != nil {
			return nil, nil, fmt.Errorf("generation prompt: %w", err)
		}
		add("generation prompt", ps, ids)
	}
	return prompts, clozeTokens, nil
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
