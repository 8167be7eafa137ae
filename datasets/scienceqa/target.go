package scienceqa

import "fmt"

// Target is how the answer is written in the training text.
type Target int

const (
	// TargetLetter is base_prompt.py's answer: "The answer is B."
	TargetLetter Target = iota
	// TargetLetterText also carries the option's text: "The answer is B: <choice text>." A small model learns
	// the fact from the text even where it cannot yet bind the letter to the option.
	TargetLetterText
	// TargetCloze trains on what cloze scoring reads: the cloze prompt (question and context, no options; see
	// ClozePromptFormat: the format gives their order and whether the context is there) followed by
	// ClozeContinuation of the gold choice, then EOS. The prompt format's options and letter are not used. For models that cannot bind option letters (SmolLM2-135M), this teaches the adapter
	// ScienceQA's answers in the form they are scored in.
	TargetCloze
)

var targetNames = map[Target]string{TargetLetter: "letter", TargetLetterText: "letter-text", TargetCloze: "cloze"}

// String returns the target's name as ParseTarget reads it ("letter", "letter-text").
func (t Target) String() string {
	if s, ok := targetNames[t]; ok {
		return s
	}
	return fmt.Sprintf("Target(%d)", int(t))
}

// ParseTarget reads a target name ("letter", "letter-text" or "cloze"; "" is "letter").
func ParseTarget(s string) (Target, error) {
	if s == "" {
		return TargetLetter, nil
	}
	for t, name := range targetNames {
		if s == name {
			return t, nil
		}
	}
	return 0, fmt.Errorf("scienceqa: unknown answer target %q (want letter, letter-text or cloze)", s)
}

// answer is what follows "The answer is " (before the final "."), for p's gold answer.
func (t Target) answer(p *Problem) (string, error) {
	switch t {
	case TargetLetter:
		return Letter(p.Answer), nil
	case TargetLetterText:
		return Letter(p.Answer) + ": " + p.Choices[p.Answer], nil
	case TargetCloze:
		return "", fmt.Errorf("scienceqa: pid %s: the cloze target has no \"The answer is\" sentence", p.PID)
	}
	return "", fmt.Errorf("scienceqa: pid %s: unknown answer target %d", p.PID, int(t))
}
