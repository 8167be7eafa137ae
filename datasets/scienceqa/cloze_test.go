package scienceqa

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/adapterlab/llama-adapter/datasets/assets"
	"github.com/adapterlab/llama-adapter/models/tokenizer"
)

// The expected texts are written by hand from the records of problems_sample150.json.
func TestClozePromptRealRecords(t *testing.T) {
	hint7 := "Sturgeons eat invertebrates, plants, and small fish. They are bottom feeders. Bottom feeders find their food at the bottom of rivers, lakes, and the ocean.\n" +
		"The 's mouth is located on the underside of its head and points downward. Its mouth is adapted for bottom feeding.\n" +
		"Figure: sturgeon."
	cases := []struct {
		pid, caption string
		useCaption   bool
		want         string
	}{
		// Empty hint: no Context line (QCM-A would write "Context: N/A").
		{"1", "", false, "Question: Which of these states is farthest north?\nAnswer:"},
		// A question of several lines stays as it is.
		{"4", "", false, "Question: Which figure of speech is used in this text?\nSing, O goddess, the anger of Achilles son of Peleus, that brought countless ills upon the Achaeans.\n—Homer, The Iliad\nAnswer:"},
		{"7", "", false, "Question: Which animal's mouth is also adapted for bottom feeding?\nContext: " + hint7 + "\nAnswer:"},
		{"7", "A fish.", true, "Question: Which animal's mouth is also adapted for bottom feeding?\nContext: " + hint7 + " A fish.\nAnswer:"},
		// Captions on but the hint empty: the caption alone is the context.
		{"1", "A map.", true, "Question: Which of these states is farthest north?\nContext: A map.\nAnswer:"},
		{"1", "A map.", false, "Question: Which of these states is farthest north?\nAnswer:"},
	}
	for _, c := range cases {
		p := *sampleProblem(t, c.pid)
		p.Caption = c.caption
		if got := ClozePrompt(&p, c.useCaption); got != c.want {
			t.Errorf("pid %s caption %v:\n got %q\nwant %q", c.pid, c.useCaption, got, c.want)
		}
	}
	// The cloze prompt is QCM-A's prompt without its Options line wherever there is a context.
	for _, p := range sampleProblems(t) {
		if strings.TrimSpace(p.Hint) == "" {
			continue
		}
		b, err := Build(p, QCMA, PromptOptions{})
		if err != nil {
			t.Fatal(err)
		}
		opts, _ := Choices(p)
		want := strings.Replace(b.Text, "Options: "+strings.ReplaceAll(opts, "  ", " ")+"\n", "", 1)
		if got := ClozePrompt(p, false); got != want {
			t.Errorf("pid %s: cloze %q, QCM-A without options %q", p.PID, got, want)
		}
	}
	if got := ClozeContinuation("armored catfish"); got != " armored catfish" {
		t.Errorf("continuation %q", got)
	}
}

func TestTokenizeCloze(t *testing.T) {
	p := sampleProblem(t, "7")
	c, err := TokenizeCloze(byteEncoder{}, p, ClozeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Prompt[0] != 1 || decodeBytes(c.Prompt) != ClozePrompt(p, false) || c.Text != ClozePrompt(p, false) || c.ContextWords != -1 {
		t.Fatalf("prompt %q", decodeBytes(c.Prompt))
	}
	for i, o := range c.Options {
		if decodeBytes(o) != " "+p.Choices[i] {
			t.Errorf("option %d: %q", i, decodeBytes(o))
		}
	}
	// Over MaxLen: context words go, the question and every option stay.
	full := c.longest()
	s, err := TokenizeCloze(byteEncoder{}, p, ClozeOptions{MaxLen: full - 40})
	if err != nil {
		t.Fatal(err)
	}
	if s.longest() > full-40 || s.ContextWords <= 0 || !strings.HasPrefix(s.Text, "Question: "+p.Question+"\nContext: Sturgeons") ||
		!strings.HasSuffix(s.Text, "\nAnswer:") || len(s.Options) != 2 || decodeBytes(s.Options[1]) != " armored catfish" {
		t.Errorf("shortened: %d tokens, %d words, %q", s.longest(), s.ContextWords, s.Text)
	}
	if _, err := TokenizeCloze(byteEncoder{}, p, ClozeOptions{MaxLen: 30}); !errors.Is(err, ErrTooLong) {
		t.Errorf("MaxLen 30: %v", err)
	}

	// A real BPE tokenizer: prompt + option decode to the texts, and every option shares the prompt's tokens.
	tok, err := tokenizer.Load(assets.Require(t, assets.Path("models", "stories260K", "tok512.bin")))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range sampleProblems(t)[:40] {
		c, err := TokenizeCloze(tok, p, ClozeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if c.Prompt[0] != tok.BOS() || len(c.Options) != len(p.Choices) {
			t.Fatalf("pid %s: prompt starts %d, %d options", p.PID, c.Prompt[0], len(c.Options))
		}
		for i, o := range c.Options {
			whole := append(append([]int{}, c.Prompt...), o...)
			if got, want := tok.Decode(whole[1:]), c.Text+ClozeContinuation(p.Choices[i]); strings.TrimSpace(got) != strings.TrimSpace(want) {
				t.Errorf("pid %s option %d: decodes to %q, want %q", p.PID, i, got, want)
			}
			if len(o) == 0 {
				t.Errorf("pid %s option %d: no tokens", p.PID, i)
			}
		}
	}
}

func TestTargetLetterText(t *testing.T) {
	p := sampleProblem(t, "7")
	b, err := Build(p, QCMA, PromptOptions{Target: TargetLetterText})
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := Build(p, QCMA, PromptOptions{})
	if b.Target != " The answer is B: armored catfish." || b.Text != plain.Text {
		t.Errorf("target %q (prompt changed: %v)", b.Target, b.Text != plain.Text)
	}
	ex, err := Tokenize(byteEncoder{}, p, QCMA, TokenOptions{PromptOptions: PromptOptions{Target: TargetLetterText}})
	if err != nil {
		t.Fatal(err)
	}
	var masked []int
	for i, m := range ex.Mask {
		if m {
			masked = append(masked, ex.IDs[i])
		}
	}
	if got := decodeBytes(masked); got != " The answer is B: armored catfish." || masked[len(masked)-1] != 2 || ex.PromptLen != 1+len(plain.Text) {
		t.Errorf("masked %q, prompt %d ids", got, ex.PromptLen)
	}
	// Over-long: the context is shortened, the answer text kept whole.
	short, err := Tokenize(byteEncoder{}, p, QCMA, TokenOptions{PromptOptions: PromptOptions{Target: TargetLetterText}, MaxLen: len(ex.IDs) - 60})
	if err != nil {
		t.Fatal(err)
	}
	if short.ContextWords <= 0 || short.Prompt.Target != b.Target || !strings.Contains(short.Prompt.Text, "Options: (A) discus (B) armored catfish\n") {
		t.Errorf("shortened: %d words, %q + %q", short.ContextWords, short.Prompt.Text, short.Prompt.Target)
	}
	// Other output formats carry the text too.
	if e, _ := Build(p, "QCM-LEA", PromptOptions{Target: TargetLetterText}); !strings.HasSuffix(e.Target, " The answer is B: armored catfish.") {
		t.Errorf("QCM-LEA target %q", e.Target)
	}
	for _, tg := range []Target{TargetLetter, TargetLetterText} {
		if got, err := ParseTarget(tg.String()); err != nil || got != tg {
			t.Errorf("ParseTarget(%q) = %v, %v", tg.String(), got, err)
		}
	}
	if _, err := ParseTarget("text"); err == nil {
		t.Error("ParseTarget accepted \"text\"")
	}
	if _, err := Build(p, QCMA, PromptOptions{Target: 7}); err == nil {
		t.Error("an unknown target built")
	}
}

// TestTargetCloze: the cloze target trains on exactly the sequence cloze scoring reads for the gold option (prompt
// without options, then " <choice>"), plus EOS; the loss covers the choice and EOS only; over-long sequences lose
// context words, and an empty context stays absent (no "N/A").
func TestTargetCloze(t *testing.T) {
	p := sampleProblem(t, "7")
	o := TokenOptions{PromptOptions: PromptOptions{Target: TargetCloze}}
	ex, err := Tokenize(byteEncoder{}, p, QCMA, o)
	if err != nil {
		t.Fatal(err)
	}
	c, err := TokenizeCloze(byteEncoder{}, p, ClozeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := append(append(append([]int{}, c.Prompt...), c.Options[p.Answer]...), 2)
	if !slices.Equal(ex.IDs, want) || ex.PromptLen != len(c.Prompt) {
		t.Fatalf("cloze target ids differ from the cloze scorer's gold sequence + EOS:\n%q\n%q", decodeBytes(ex.IDs), decodeBytes(want))
	}
	var masked []int
	for i, m := range ex.Mask {
		if m {
			masked = append(masked, ex.IDs[i])
		}
	}
	if got := decodeBytes(masked); got != " armored catfish\x02" && got != " armored catfish" {
		t.Errorf("masked %q", got)
	}
	if strings.Contains(ex.Prompt.Text, "Options:") || ex.Prompt.Target != " armored catfish" {
		t.Errorf("prompt %q target %q", ex.Prompt.Text, ex.Prompt.Target)
	}
	short, err := Tokenize(byteEncoder{}, p, QCMA, TokenOptions{PromptOptions: o.PromptOptions, MaxLen: len(ex.IDs) - 40})
	if err != nil {
		t.Fatal(err)
	}
	if short.ContextWords <= 0 || short.Prompt.Target != " armored catfish" || len(short.IDs) > len(ex.IDs)-40 {
		t.Errorf("shortened: %d words, %d ids, target %q", short.ContextWords, len(short.IDs), short.Prompt.Target)
	}
	none, err := Tokenize(byteEncoder{}, p, QCMA, TokenOptions{PromptOptions: o.PromptOptions, MaxLen: len(ex.IDs) - len(Context(p, false)) - 9})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(none.Prompt.Text, "N/A") {
		t.Errorf("an emptied cloze context reads %q", none.Prompt.Text)
	}
	if got, err := ParseTarget("cloze"); err != nil || got != TargetCloze {
		t.Errorf("ParseTarget(cloze) = %v, %v", got, err)
	}
}
