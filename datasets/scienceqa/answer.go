package scienceqa

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"regexp"
	"strings"
)

// answerPattern is run_gpt3.py's `The answer is ([A-Z]).`; the final "." is a regular-expression wildcard there
// too, so the letter must be followed by one more character on the same line.
var answerPattern = regexp.MustCompile(`The answer is ([A-Z]).`)

// ExtractAnswer returns the option letter of a generated answer as run_gpt3.py does: the pattern
// `The answer is ([A-Z]).` must match exactly once (non-overlapping, as Python's findall); zero or several
// matches are unparsable (ok false). run_gpt3.py strips the output and stops generation at the first newline;
// callers that generate past a newline should cut there first to reproduce it.
func ExtractAnswer(output string) (letter string, ok bool) {
	m := answerPattern.FindAllStringSubmatch(output, -1)
	if len(m) != 1 {
		return "", false
	}
	return m[0][1], true
}

// Fallback decides what an unparsable answer counts as.
type Fallback int

const (
	// FallbackRandom picks a random option, as run_gpt3.py's get_pred_idx (the official protocol).
	FallbackRandom Fallback = iota
	// FallbackWrong counts the answer as wrong (prediction -1).
	FallbackWrong
)

// String is the fallback's name as ParseFallback reads it.
func (f Fallback) String() string {
	switch f {
	case FallbackRandom:
		return "random"
	case FallbackWrong:
		return "wrong"
	}
	return fmt.Sprintf("Fallback(%d)", int(f))
}

// ParseFallback maps "random" and "wrong" to a Fallback.
func ParseFallback(s string) (Fallback, error) {
	switch s {
	case "random":
		return FallbackRandom, nil
	case "wrong":
		return FallbackWrong, nil
	}
	return 0, fmt.Errorf("scienceqa: unknown fallback %q (want random or wrong)", s)
}

// Unanswered is the prediction of an answer counted as wrong.
const Unanswered = -1

// Resolver turns an extracted letter into a choice index, applying the fallback to unparsable answers.
type Resolver struct {
	Fallback Fallback
	// Seed seeds the random fallback. The choice for a problem depends only on (Seed, pid, number of choices),
	// not on the order problems are evaluated in; it cannot reproduce the draws of Python's global random
	// generator in run_gpt3.py, only their distribution (uniform over the choices).
	Seed uint64
}

// Index returns the choice index of a generated answer for a problem with nChoices choices, and whether the
// answer was parsed. As get_pred_idx, a letter beyond the problem's choices is unparsable too.
func (r Resolver) Index(pid, output string, nChoices int) (index int, parsed bool) {
	if letter, ok := ExtractAnswer(output); ok {
		if i := strings.Index(DefaultLetters, letter); i >= 0 && i < nChoices {
			return i, true
		}
	}
	return r.fallback(pid, nChoices), false
}

func (r Resolver) fallback(pid string, nChoices int) int {
	if r.Fallback == FallbackWrong || nChoices <= 0 {
		return Unanswered
	}
	h := fnv.New64a()
	h.Write([]byte(pid))
	return rand.New(rand.NewPCG(r.Seed, h.Sum64())).IntN(nChoices)
}

// ArgmaxLetter returns the option with the highest score among the first nChoices entries of scores (one per
// option letter A, B, ...; extra letters are ignored). Ties go to the earlier option; NaN scores never win.
func ArgmaxLetter(scores []float64, nChoices int) (int, error) {
	if nChoices < 1 || nChoices > len(scores) {
		return 0, fmt.Errorf("scienceqa: %d choices but %d letter scores", nChoices, len(scores))
	}
	best := -1
	for i, s := range scores[:nChoices] {
		if math.IsNaN(s) {
			continue
		}
		if best < 0 || s > scores[best] {
			best = i
		}
	}
	if best < 0 {
		return 0, errors.New("scienceqa: every letter score is NaN")
	}
	return best, nil
}
