package scienceqa

import (
	"errors"
	"fmt"
	"strings"
)

// MaxLetterTokens bounds the tokens of one option's letter continuation (LetterPrompt.Options).
const MaxLetterTokens = 4

// LetterPrompt is a problem tokenized for letter scoring: the answer is the option whose letter is most probable
// after Prompt.
type LetterPrompt struct {
	PID string
	// Prompt is what every option's answer text starts with: BOS, the prompt and "... The answer is".
	Prompt []int
	// Options holds, per option, the tokens that follow Prompt up to its letter: one token with LLaMA's
	// SentencePiece ("▁A"), sometimes two with small vocabularies (" " then "A", while " B" is one token). At most
	// MaxLetterTokens.
	Options [][]int
	// Cut is set when the prompt was shortened to fit: context words dropped, or where even no context fits, BOS
	// and the prompt's last tokens kept.
	Cut bool
}

// TokenizeLetter builds p's letter-scoring prompt in format f: the training sequence is tokenized once per option
// (as if it were the answer); the shared prefix is the prompt and what each option's sequence adds is its
// continuation. Only formats whose output is the answer alone ("-A") qualify: in the others the prompt would
// include the gold lecture or solution. Beyond maxLen (0: no bound) the context is shortened as Tokenize does;
// when even no context is too long, the prompt keeps BOS and its last tokens (options and "The answer is" are at
// its end). Either sets Cut.
func TokenizeLetter(enc Encoder, p *Problem, f Format, o PromptOptions, maxLen int) (LetterPrompt, error) {
	l, err := tokenizeLetter(enc, p, f, o, maxLen)
	if !errors.Is(err, ErrTooLong) {
		return l, err
	}
	if l, err = tokenizeLetter(enc, p, f, o, 0); err != nil {
		return l, err
	}
	l.Prompt, l.Cut = KeepTail(l.Prompt, maxLen-MaxLetterTokens), true
	return l, nil
}

func tokenizeLetter(enc Encoder, p *Problem, f Format, po PromptOptions, maxLen int) (LetterPrompt, error) {
	if !strings.HasSuffix(string(f), "-A") {
		return LetterPrompt{}, fmt.Errorf("scienceqa: letter scoring needs a format whose output is the answer alone (X-A), not %s: use -eval generate", f)
	}
	// Tokenize once per option. Where the context had to be shortened, every option gets the shortest context any of
	// them needed, so the sequences differ only in the answer.
	seqs, words, err := tokenizePerOption(enc, *p, f, po, maxLen)
	if err != nil {
		return LetterPrompt{}, err
	}
	if words >= 0 {
		q := *p
		q.Hint = strings.Join(strings.Fields(Context(p, po.UseCaption))[:words], " ")
		q.Caption = ""
		if seqs, _, err = tokenizePerOption(enc, q, f, PromptOptions{}, 0); err != nil {
			return LetterPrompt{}, err
		}
	}
	// Common prefix (the prompt through "The answer is") and common suffix (e.g. "." and EOS) of all options.
	n := len(seqs[0])
	for _, s := range seqs[1:] {
		n = min(n, len(s))
	}
	common := 0
	for common < n && allEqual(seqs, func(s []int) int { return s[common] }) {
		common++
	}
	suffix := 0
	for suffix < n-common && allEqual(seqs, func(s []int) int { return s[len(s)-1-suffix] }) {
		suffix++
	}
	if common == 0 {
		return LetterPrompt{}, fmt.Errorf("scienceqa: pid %s: the options' sequences share no prefix", p.PID)
	}
	l := LetterPrompt{PID: p.PID, Prompt: seqs[0][:common], Cut: words >= 0}
	for i, s := range seqs {
		c := s[common : len(s)-suffix]
		if len(c) == 0 || len(c) > MaxLetterTokens {
			return LetterPrompt{}, fmt.Errorf("scienceqa: pid %s: option %s tokenizes to %d tokens after the prompt (1..%d)", p.PID, Letter(i), len(c), MaxLetterTokens)
		}
		l.Options = append(l.Options, c)
	}
	return l, nil
}

// tokenizePerOption tokenizes q once per option as its answer; words is the fewest context words any option kept
// (-1: none was shortened).
func tokenizePerOption(enc Encoder, q Problem, f Format, po PromptOptions, maxLen int) (seqs [][]int, words int, err error) {
	words = -1
	for i := range q.Choices {
		q.Answer = i
		e, err := Tokenize(enc, &q, f, TokenOptions{PromptOptions: po, MaxLen: maxLen})
		if err != nil {
			return nil, 0, err
		}
		if e.ContextWords >= 0 && (words < 0 || e.ContextWords < words) {
			words = e.ContextWords
		}
		seqs = append(seqs, e.IDs)
	}
	return seqs, words, nil
}

func allEqual(seqs [][]int, at func([]int) int) bool {
	for _, s := range seqs[1:] {
		if at(s) != at(seqs[0]) {
			return false
		}
	}
	return true
}

// KeepTail keeps the first token (BOS) and the last n-1 tokens of ids.
func KeepTail(ids []int, n int) []int {
	if len(ids) <= n {
		return ids
	}
	return append([]int{ids[0]}, ids[len(ids)-(n-1):]...)
}

// GenerationPrompt tokenizes p's test-time prompt (BOS + the prompt of format f, no answer) so that maxNew
// generated tokens still fit in maxLen: the context is shortened as Tokenize does, and when even no context is
// too long the prompt keeps BOS and its last tokens. cut says whether either happened.
func GenerationPrompt(enc Encoder, p *Problem, f Format, po PromptOptions, maxLen, maxNew int) (ids []int, cut bool, err error) {
	g, err := Tokenize(enc, p, f, TokenOptions{PromptOptions: po, MaxLen: maxLen - maxNew, PromptOnly: true})
	if !errors.Is(err, ErrTooLong) {
		return g.IDs, g.ContextWords >= 0, err
	}
	if g, err = Tokenize(enc, p, f, TokenOptions{PromptOptions: po, PromptOnly: true}); err != nil {
		return nil, false, err
	}
	return KeepTail(g.IDs, maxLen-maxNew), true, nil
}
