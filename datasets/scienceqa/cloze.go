package scienceqa

import (
	"fmt"
	"strings"
)

// ClozePrompt returns the cloze prompt of p: the question and its context without the options,
//
//	Question: <question>\nContext: <context>\nAnswer:
//
// The Context line is left out when the hint (plus the caption when useCaption) is empty: unlike base_prompt.py's
// "N/A", an absent context says nothing a model must learn to ignore. Spacing follows base_prompt.py (double
// spaces become one, surrounding whitespace stripped), so the text is QCM-A's prompt minus its Options line.
// Each option is then scored as the continuation ClozeContinuation(choice). It is ClozePromptFormat in QCM-A.
func ClozePrompt(p *Problem, useCaption bool) string {
	return ClozePromptFormat(p, QCMA, useCaption)
}

// ClozePromptFormat is ClozePrompt with the Question and Context lines of format f: in its order (CQM: Context
// first) and the Context line only where f has one (not QM). Only the field order and the presence of the context
// come from f: the options are never in a cloze prompt (they are what is scored), nor are the lecture and
// solution of the QCML… inputs. The zero Format reads as QCM-A.
func ClozePromptFormat(p *Problem, f Format, useCaption bool) string {
	return clozePrompt(p, f, clozeContext(p, useCaption))
}

// clozeContext is Context without the "N/A" placeholder: "" when there is none.
func clozeContext(p *Problem, useCaption bool) string {
	caption := ""
	if useCaption {
		caption = p.Caption
	}
	return pyStrip(p.Hint + " " + caption)
}

func clozePrompt(p *Problem, f Format, context string) string {
	q, c := "Question: "+p.Question+"\n", ""
	if context != "" && f.HasContext() {
		c = "Context: " + context + "\n"
	}
	text := q + c
	if f.contextFirst() {
		text = c + q
	}
	return pyStrip(strings.ReplaceAll(text+ClozeAnswerCue, "  ", " "))
}

// ClozeContinuation is the text scored for one option after ClozePrompt: a space and the choice text as the
// record has it.
func ClozeContinuation(choice string) string { return " " + choice }

// ClozeOptions tune TokenizeCloze.
type ClozeOptions struct {
	// Format gives the order of the Question and Context lines and whether there is a Context line
	// (ClozePromptFormat); "" is QCM-A.
	Format Format
	// UseCaption appends the caption to the context, as PromptOptions.UseCaption.
	UseCaption bool
	// MaxLen bounds prompt + the longest option (0: no bound); beyond it the context loses words from its end
	// (then its line is dropped), never the question or an option.
	MaxLen int
}

// Cloze is a problem tokenized for cloze scoring.
type Cloze struct {
	PID string
	// Prompt is BOS followed by the prompt's tokens, as training sequences start.
	Prompt []int
	// Options holds, per choice, the tokens that follow Prompt: Encode(prompt+continuation) minus Prompt.
	Options [][]int
	// Text is the prompt text (after any context shortening).
	Text string
	// ContextWords is the number of context words kept, -1 when the context was not shortened.
	ContextWords int
}

// TokenizeCloze tokenizes p's cloze prompt and each option's continuation with enc. Each option is encoded
// together with the prompt (a tokenizer may merge across the boundary); the prompt is the longest prefix of
// Encode(prompt) that every option's sequence shares, so all options are scored after the same tokens.
// A prompt too long for MaxLen even without context is an error wrapping ErrTooLong.
func TokenizeCloze(enc Encoder, p *Problem, o ClozeOptions) (Cloze, error) {
	if len(p.Choices) < 2 {
		return Cloze{}, fmt.Errorf("scienceqa: pid %s: %d choices, cloze scoring needs at least 2", p.PID, len(p.Choices))
	}
	context := clozeContext(p, o.UseCaption)
	if !o.Format.HasContext() {
		context = "" // nothing to shorten
	}
	c := tokenizeClozeWithContext(enc, p, o.Format, context)
	if o.MaxLen <= 0 || c.longest() <= o.MaxLen {
		return c, nil
	}
	words := strings.Fields(context)
	try := func(n int) (Cloze, bool) {
		e := tokenizeClozeWithContext(enc, p, o.Format, strings.Join(words[:n], " "))
		e.ContextWords = n
		return e, e.longest() <= o.MaxLen
	}
	best, ok := try(0)
	if !ok {
		return Cloze{}, fmt.Errorf("scienceqa: pid %s: cloze prompt + longest option is %d tokens with no context, max %d: %w", p.PID, best.longest(), o.MaxLen, ErrTooLong)
	}
	for lo, hi := 0, len(words); hi-lo > 1; { // try(lo) fits, try(hi) does not
		mid := (lo + hi) / 2
		if e, ok := try(mid); ok {
			lo, best = mid, e
		} else {
			hi = mid
		}
	}
	return best, nil
}

// longest is the length of the prompt plus its longest option.
func (c Cloze) longest() int {
	n := 0
	for _, o := range c.Options {
		n = max(n, len(o))
	}
	return len(c.Prompt) + n
}

func tokenizeClozeWithContext(enc Encoder, p *Problem, f Format, context string) Cloze {
	c := TokenizeContinuations(enc, clozePrompt(p, f, context), p.Choices)
	c.PID = p.PID
	return c
}

// ClozeAnswerCue is the end of every cloze prompt and, alone, the prompt of the unconditional pass that
// calibrates option scores (an option's log-probability after the cue with no question or context).
const ClozeAnswerCue = "Answer:"

// TokenizeContinuations tokenizes each choice's ClozeContinuation after text, as TokenizeCloze does for the cloze
// prompt: each option is encoded together with text (a tokenizer may merge across the boundary) and the prompt is
// the longest prefix of Encode(text) every option's sequence shares. PID is left empty.
func TokenizeContinuations(enc Encoder, text string, choices []string) Cloze {
	prompt := enc.Encode(text, true)
	seqs := make([][]int, len(choices))
	n := len(prompt)
	for i, ch := range choices {
		seqs[i] = enc.Encode(text+ClozeContinuation(ch), true)
		k := 0
		for k < n && k < len(seqs[i]) && seqs[i][k] == prompt[k] {
			k++
		}
		n = k
	}
	c := Cloze{Prompt: prompt[:n], Text: text, ContextWords: -1}
	for _, s := range seqs {
		c.Options = append(c.Options, s[n:])
	}
	return c
}
