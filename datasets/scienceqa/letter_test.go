package scienceqa

import (
	"slices"
	"strings"
	"testing"

	"github.com/adapterlab/llama-adapter/datasets/assets"
	"github.com/adapterlab/llama-adapter/models/tokenizer"
)

func TestTokenizeLetter(t *testing.T) {
	p := sampleProblem(t, "7")
	l, err := TokenizeLetter(byteEncoder{}, p, QCMA, PromptOptions{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	// One byte per token: the prompt is the training sequence up to "The answer is " and each option adds its letter.
	full, err := Tokenize(byteEncoder{}, p, QCMA, TokenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	text := decodeBytes(full.IDs)
	if want := text[:strings.LastIndex(text, "The answer is ")+len("The answer is ")]; decodeBytes(l.Prompt) != want || l.Cut {
		t.Fatalf("prompt %q, want %q (cut %v)", decodeBytes(l.Prompt), want, l.Cut)
	}
	for i, o := range l.Options {
		if decodeBytes(o) != Letter(i) {
			t.Errorf("option %d continues with %q", i, decodeBytes(o))
		}
	}
	// Over maxLen: context words go first.
	full2, err := TokenizeLetter(byteEncoder{}, p, QCMA, PromptOptions{}, len(l.Prompt)-20)
	if err != nil || !full2.Cut || len(full2.Prompt)+MaxLetterTokens > len(l.Prompt) || !strings.HasSuffix(decodeBytes(full2.Prompt), "The answer is ") ||
		!strings.HasPrefix(decodeBytes(full2.Prompt), decodeBytes(l.Prompt)[:40]) {
		t.Errorf("shortened context: %q (cut %v), %v", decodeBytes(full2.Prompt), full2.Cut, err)
	}
	// Too long even without context: BOS and the prompt's last tokens, so "The answer is" stays at the end.
	c, err := TokenizeLetter(byteEncoder{}, p, QCMA, PromptOptions{}, 40)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Cut || len(c.Prompt) != 40-MaxLetterTokens || c.Prompt[0] != 1 || !strings.HasSuffix(decodeBytes(c.Prompt), "The answer is ") {
		t.Errorf("cut prompt: %d tokens %q (cut %v)", len(c.Prompt), decodeBytes(c.Prompt), c.Cut)
	}
	if _, err := TokenizeLetter(byteEncoder{}, p, QCMLEA, PromptOptions{}, 0); err == nil {
		t.Error("letter scoring accepted a format whose output is not the answer alone")
	}

	// A real BPE tokenizer (tok512 writes " B" as one token but " A" as two): every option's continuation is
	// its sequence minus the shared prompt and suffix.
	tok, err := tokenizer.Load(assets.Require(t, assets.Path("models", "stories260K", "tok512.bin")))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range sampleProblems(t)[:40] {
		l, err := TokenizeLetter(tok, p, QCMA, PromptOptions{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		for i, o := range l.Options {
			q := *p
			q.Answer = i
			e, err := Tokenize(tok, &q, QCMA, TokenOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if seq := append(slices.Clone(l.Prompt), o...); !slices.Equal(seq, e.IDs[:len(seq)]) {
				t.Fatalf("pid %s option %d: prompt+continuation is not a prefix of its training sequence", p.PID, i)
			}
			if got := strings.TrimSpace(tok.Decode(o)); got != Letter(i) {
				t.Errorf("pid %s option %d decodes to %q", p.PID, i, got)
			}
		}
	}
}

func TestGenerationPromptAndContinuations(t *testing.T) {
	p := sampleProblem(t, "7")
	ids, cut, err := GenerationPrompt(byteEncoder{}, p, QCMA, PromptOptions{}, 0, 0)
	if err != nil || cut || !strings.HasSuffix(decodeBytes(ids), "Answer:") {
		t.Fatalf("prompt %q, cut %v, %v", decodeBytes(ids), cut, err)
	}
	ids, cut, err = GenerationPrompt(byteEncoder{}, p, QCMA, PromptOptions{}, 60, 16)
	if err != nil || !cut || len(ids) != 60-16 || ids[0] != 1 || !strings.HasSuffix(decodeBytes(ids), "Answer:") {
		t.Errorf("cut prompt: %d tokens %q, cut %v, %v", len(ids), decodeBytes(ids), cut, err)
	}
	c := TokenizeContinuations(byteEncoder{}, ClozeAnswerCue, p.Choices)
	if decodeBytes(c.Prompt) != "Answer:" || c.Prompt[0] != 1 || len(c.Options) != len(p.Choices) {
		t.Fatalf("unconditional prompt %q, %d options", decodeBytes(c.Prompt), len(c.Options))
	}
	for i, o := range c.Options {
		if decodeBytes(o) != " "+p.Choices[i] {
			t.Errorf("option %d: %q", i, decodeBytes(o))
		}
	}
}

func TestTargetAndFallbackText(t *testing.T) {
	for _, name := range []string{"letter", "letter-text", "cloze"} {
		var v Target
		if err := v.UnmarshalText([]byte(name)); err != nil {
			t.Fatal(err)
		}
		if b, _ := v.MarshalText(); string(b) != name {
			t.Errorf("target %q round-trips to %q", name, b)
		}
	}
	for _, name := range []string{"random", "wrong"} {
		var f Fallback
		if err := f.Set(name); err != nil {
			t.Fatal(err)
		}
		if b, _ := f.MarshalText(); string(b) != name || f.String() != name {
			t.Errorf("fallback %q round-trips to %q", name, b)
		}
	}
	var f Fallback
	if err := f.UnmarshalText([]byte("maybe")); err == nil {
		t.Error("an unknown fallback was accepted")
	}
}
