package scienceqa

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// Format is a prompt format of ScienceQA's models/base_prompt.py: "<input>-<output>", e.g. "QCM-A" (the
// LLaMA-Adapter paper's: Question, Context, Multiple options → Answer). Letters: Q question, C context,
// M options, L lecture, E solution (explanation), A answer. The input "QM" (question and options, no Context
// line) is this package's own, not one of base_prompt.py's: the "without the context line" variant of QCM, for
// measuring what the context line is worth.
type Format string

// The formats named in the brief; every input × output pair below is accepted.
const (
	QCMA   Format = "QCM-A"
	CQMA   Format = "CQM-A"
	QMA    Format = "QM-A" // not base_prompt.py's: QCM-A without its Context line
	QCMLEA Format = "QCM-LEA"
	QCMLA  Format = "QCML-A"
)

var (
	inputFormats  = []string{"CQM", "QCM", "QM", "QCML", "QCME", "QCMLE", "QCLM", "QCEM", "QCLEM"}
	outputFormats = []string{"A", "AL", "AE", "ALE", "AEL", "LA", "EA", "LEA", "ELA"}
)

// ParseFormat checks a format name such as "QCM-A".
func ParseFormat(s string) (Format, error) {
	in, out, ok := strings.Cut(s, "-")
	if ok && contains(inputFormats, in) && contains(outputFormats, out) {
		return Format(s), nil
	}
	return "", fmt.Errorf("scienceqa: unknown prompt format %q (want <%s>-<%s>)", s,
		strings.Join(inputFormats, "|"), strings.Join(outputFormats, "|"))
}

// input is the format's input part ("QCM" of "QCM-A").
func (f Format) input() string {
	in, _, _ := strings.Cut(string(f), "-")
	return in
}

// HasContext reports whether the format's prompt has a Context line (every input but QM). An empty format is
// read as QCM-A's (ClozeOptions' zero value).
func (f Format) HasContext() bool { return f == "" || strings.Contains(f.input(), "C") }

// contextFirst reports whether the Context line comes before the Question line (CQM).
func (f Format) contextFirst() bool { return strings.HasPrefix(f.input(), "CQ") }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// DefaultLetters are the option letters. base_prompt.py's default list stops at E (ScienceQA has at most 5
// choices); the rest of the alphabet only matters for other data.
const DefaultLetters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

// PromptOptions tune Build.
type PromptOptions struct {
	// UseCaption appends the problem's caption to the context (base_prompt.py's use_caption).
	UseCaption bool
	// Target chooses how the answer is written in the training text (default TargetLetter, base_prompt.py's).
	Target Target
}

// Prompt is one problem rendered in a format.
type Prompt struct {
	// Text is the test-time prompt (base_prompt.py's test example): it ends with "Answer:".
	Text string
	// Target is what training appends to Text, e.g. " The answer is A." for QCM-A: Text+Target is
	// base_prompt.py's training example.
	Target string
}

// Context returns the problem's context as base_prompt.py's get_context_text: the hint, with the caption
// appended (space-separated) when useCaption, stripped; "N/A" when empty.
func Context(p *Problem, useCaption bool) string {
	caption := ""
	if useCaption {
		caption = p.Caption
	}
	c := pyStrip(p.Hint + " " + caption)
	if c == "" {
		return "N/A"
	}
	return c
}

// Choices returns the options as base_prompt.py's get_choice_text: "(A) first (B) second ...".
func Choices(p *Problem) (string, error) {
	if len(p.Choices) > len(DefaultLetters) {
		return "", fmt.Errorf("scienceqa: pid %s: %d choices, more than the %d option letters", p.PID, len(p.Choices), len(DefaultLetters))
	}
	parts := make([]string, len(p.Choices))
	for i, c := range p.Choices {
		parts[i] = "(" + DefaultLetters[i:i+1] + ") " + c
	}
	return strings.Join(parts, " "), nil
}

// Letter returns the option letter of choice index i ("A" for 0).
func Letter(i int) string {
	if i < 0 || i >= len(DefaultLetters) {
		return "?"
	}
	return DefaultLetters[i : i+1]
}

// Build renders p in format f. The text follows base_prompt.py's create_one_example exactly: its field order,
// "\n" separators, lecture and solution newlines written as the two characters `\n`, every double space
// replaced by one (a single left-to-right pass, as Python's str.replace), surrounding whitespace stripped.
func Build(p *Problem, f Format, o PromptOptions) (Prompt, error) {
	if _, err := ParseFormat(string(f)); err != nil {
		return Prompt{}, err
	}
	return buildWithContext(p, f, Context(p, o.UseCaption), o.Target)
}

func buildWithContext(p *Problem, f Format, context string, target Target) (Prompt, error) {
	if p.Answer < 0 || p.Answer >= len(p.Choices) || p.Answer >= len(DefaultLetters) {
		return Prompt{}, fmt.Errorf("scienceqa: pid %s: answer %d out of range for %d choices", p.PID, p.Answer, len(p.Choices))
	}
	choices, err := Choices(p)
	if err != nil {
		return Prompt{}, err
	}
	answer, err := target.answer(p)
	if err != nil {
		return Prompt{}, err
	}
	in, out, _ := strings.Cut(string(f), "-")
	parts := exampleParts{
		question: p.Question, context: context, choices: choices, answer: answer,
		lecture:  strings.ReplaceAll(p.Lecture, "\n", `\n`),
		solution: strings.ReplaceAll(p.Solution, "\n", `\n`),
	}
	text := parts.render(in, out, true)
	train := parts.render(in, out, false)
	if !strings.HasPrefix(train, text) {
		// base_prompt.py removes every "BECAUSE:" (the input's too) when the training text ends with one, i.e.
		// when the explanation is empty: then training and test texts disagree and there is no clean target.
		return Prompt{}, fmt.Errorf("scienceqa: pid %s: format %s: the training text does not extend the test prompt (empty explanation)", p.PID, f)
	}
	return Prompt{Text: text, Target: train[len(text):]}, nil
}

type exampleParts struct {
	question, context, choices, answer, lecture, solution string
}

// render is base_prompt.py's create_one_example for one input/output format pair.
func (e exampleParts) render(in, out string, test bool) string {
	q := "Question: " + e.question + "\n"
	c := "Context: " + e.context + "\n"
	m := "Options: " + e.choices + "\n"
	because := func(s string) string { return "BECAUSE: " + s + "\n" }
	var input string
	switch in {
	case "CQM":
		input = c + q + m
	case "QCM":
		input = q + c + m
	case "QM": // this package's own: QCM without the Context line
		input = q + m
	case "QCML":
		input = q + c + m + because(e.lecture)
	case "QCME":
		input = q + c + m + because(e.solution)
	case "QCMLE":
		input = q + c + m + because(e.lecture+" "+e.solution)
	case "QCLM":
		input = q + c + because(e.lecture) + m
	case "QCEM":
		input = q + c + because(e.solution) + m
	case "QCLEM":
		input = q + c + because(e.lecture+" "+e.solution) + m
	}
	ans := "The answer is " + e.answer + "." // e.answer: "B", or "B: <choice text>" (TargetLetterText)
	var output string
	switch {
	case test:
		output = "Answer:"
	case out == "A":
		output = "Answer: " + ans
	// base_prompt.py's naming: AL appends the solution and AE the lecture.
	case out == "AL":
		output = "Answer: " + ans + " BECAUSE: " + e.solution
	case out == "AE":
		output = "Answer: " + ans + " BECAUSE: " + e.lecture
	case out == "ALE":
		output = "Answer: " + ans + " BECAUSE: " + e.lecture + " " + e.solution
	case out == "AEL":
		output = "Answer: " + ans + " BECAUSE: " + e.solution + " " + e.lecture
	case out == "LA":
		output = "Answer: " + e.lecture + " " + ans
	case out == "EA":
		output = "Answer: " + e.solution + " " + ans
	case out == "LEA":
		output = "Answer: " + e.lecture + " " + e.solution + " " + ans
	case out == "ELA":
		output = "Answer: " + e.solution + " " + e.lecture + " " + ans
	}
	text := pyStrip(strings.ReplaceAll(input+output, "  ", " "))
	if strings.HasSuffix(text, "BECAUSE:") {
		text = pyStrip(strings.ReplaceAll(text, "BECAUSE:", ""))
	}
	return text
}

// pyStrip is Python's str.strip(): unicode.IsSpace plus the separators U+001C..U+001F that Python also strips.
func pyStrip(s string) string {
	return strings.TrimFunc(s, func(r rune) bool { return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f) })
}

// Encoder turns text into token ids; models/tokenizer's Tokenizer satisfies it.
type Encoder interface {
	// Encode returns the ids of text, with the BOS id first when addBOS (no EOS).
	Encode(text string, addBOS bool) []int
	// EOS is the end-of-sequence id.
	EOS() int
}

// TokenOptions tune Tokenize.
type TokenOptions struct {
	PromptOptions
	// MaxLen bounds the number of ids (0: no bound). When the sequence is longer, the context is shortened
	// (whole words dropped from its end); the question, options and answer are never cut.
	MaxLen int
	// PromptOnly tokenizes the test-time prompt alone (BOS + Text, no target, no EOS), for generation.
	PromptOnly bool
}

// Example is a tokenized prompt.
type Example struct {
	PID string
	// IDs are BOS, the tokens of Text+Target, then EOS (training); or BOS and the tokens of Text (PromptOnly).
	IDs []int
	// PromptLen is the number of leading ids that belong to the prompt: len(Encode(Text, BOS)).
	PromptLen int
	// Mask marks the ids the loss is computed on: Mask[i] means IDs[i] is a target, predicted from the logits
	// at position i-1. It covers exactly IDs[PromptLen:], the answer tokens and the final EOS, as
	// LLaMA-Adapter's finetuning code does (labels = ids of BOS+prompt+output+EOS with the first
	// len(BOS+prompt) set to ignore). All false for PromptOnly.
	Mask []bool
	// Prompt is the text that was tokenized (after any context shortening).
	Prompt Prompt
	// ContextWords is the number of context words kept, -1 when the context was not shortened.
	ContextWords int
}

// ErrTooLong is returned (wrapped) when a prompt exceeds TokenOptions.MaxLen even with an empty context.
var ErrTooLong = errors.New("prompt too long")

// Tokenize renders p in format f and tokenizes it with enc (see Example for the layout and the loss mask).
func Tokenize(enc Encoder, p *Problem, f Format, o TokenOptions) (Example, error) {
	if _, err := ParseFormat(string(f)); err != nil {
		return Example{}, err
	}
	context := Context(p, o.UseCaption)
	if o.Target == TargetCloze {
		context = clozeContext(p, o.UseCaption)
	}
	if !f.HasContext() {
		// Nothing to shorten: a prompt too long for MaxLen is ErrTooLong below, and ContextWords stays -1.
		context = ""
	}
	ex, err := tokenizeWithContext(enc, p, f, context, o.Target, o.PromptOnly)
	if err != nil || o.MaxLen <= 0 || len(ex.IDs) <= o.MaxLen {
		return ex, err
	}
	// Keep the longest word prefix of the context that fits. Token counts grow with the words kept (up to BPE
	// merges at the cut), so a binary search finds the cut, and the result is checked.
	words := strings.Fields(context)
	fits := func(n int) (Example, bool, error) {
		c := strings.Join(words[:n], " ")
		if c == "" && o.Target != TargetCloze {
			c = "N/A" // as base_prompt.py writes an empty context
		}
		e, err := tokenizeWithContext(enc, p, f, c, o.Target, o.PromptOnly)
		e.ContextWords = n
		return e, err == nil && len(e.IDs) <= o.MaxLen, err
	}
	lo, hi := 0, len(words) // fits(lo) is what we test first; hi does not fit
	best, ok, err := fits(0)
	if err != nil {
		return Example{}, err
	}
	if !ok {
		return Example{}, fmt.Errorf("scienceqa: pid %s: %d tokens with no context, max %d: %w", p.PID, len(best.IDs), o.MaxLen, ErrTooLong)
	}
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		e, ok, err := fits(mid)
		if err != nil {
			return Example{}, err
		}
		if ok {
			lo, best = mid, e
		} else {
			hi = mid
		}
	}
	return best, nil
}

func tokenizeWithContext(enc Encoder, p *Problem, f Format, context string, target Target, promptOnly bool) (Example, error) {
	var pr Prompt
	var err error
	if target == TargetCloze {
		if p.Answer < 0 || p.Answer >= len(p.Choices) {
			return Example{}, fmt.Errorf("scienceqa: pid %s: answer %d out of range for %d choices", p.PID, p.Answer, len(p.Choices))
		}
		pr = Prompt{Text: clozePrompt(p, f, context), Target: ClozeContinuation(p.Choices[p.Answer])}
	} else if pr, err = buildWithContext(p, f, context, target); err != nil {
		return Example{}, err
	}
	prompt := enc.Encode(pr.Text, true)
	ex := Example{PID: p.PID, PromptLen: len(prompt), Prompt: pr, ContextWords: -1}
	if promptOnly {
		ex.IDs = prompt
		ex.Mask = make([]bool, len(prompt))
		return ex, nil
	}
	// As the official code, the whole text is encoded at once and the prompt's length decides the mask.
	ex.IDs = append(enc.Encode(pr.Text+pr.Target, true), enc.EOS())
	ex.Mask = make([]bool, len(ex.IDs))
	for i := ex.PromptLen; i < len(ex.IDs); i++ {
		ex.Mask[i] = true
	}
	return ex, nil
}
