package scienceqa

import (
	"errors"
	"strings"
	"testing"

	"github.com/adapterlab/llama-adapter/datasets/assets"
	"github.com/adapterlab/llama-adapter/models/tokenizer"
)

// pid 1 of the sample: question "Which of these states is farthest north?", choices West Virginia, Louisiana,
// Arizona, Oklahoma, answer 0, empty hint; the expected texts below are written by hand from that record and
// base_prompt.py's templates.
func TestPromptQCMAPid1(t *testing.T) {
	p := sampleProblem(t, "1")
	got, err := Build(p, QCMA, PromptOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := "Question: Which of these states is farthest north?\n" +
		"Context: N/A\n" +
		"Options: (A) West Virginia (B) Louisiana (C) Arizona (D) Oklahoma\n" +
		"Answer:"
	if got.Text != want {
		t.Errorf("QCM-A text:\n%q\nwant\n%q", got.Text, want)
	}
	if got.Target != " The answer is A." {
		t.Errorf("QCM-A target %q", got.Target)
	}
}

func TestPromptFormats(t *testing.T) {
	p := sampleProblem(t, "1")
	p.Caption = "An aerial view of a painting of a forest."
	q := "Question: Which of these states is farthest north?\n"
	m := "Options: (A) West Virginia (B) Louisiana (C) Arizona (D) Oklahoma\n"
	lecture := `Maps have four cardinal directions, or main directions. Those directions are north, south, east, and west.\nA compass rose is a set of arrows that point to the cardinal directions. A compass rose usually shows only the first letter of each cardinal direction.\nThe north arrow points to the North Pole. On most maps, north is at the top of the map.`
	solution := "To find the answer, look at the compass rose. Look at which way the north arrow is pointing. West Virginia is farthest north."
	cases := []struct {
		f            Format
		caption      bool
		text, target string
	}{
		{CQMA, false, "Context: N/A\n" + q + m + "Answer:", " The answer is A."},
		// The caption is appended to the (empty) hint and the result stripped.
		{CQMA, true, "Context: An aerial view of a painting of a forest.\n" + q + m + "Answer:", " The answer is A."},
		{QCMLEA, false, q + "Context: N/A\n" + m + "Answer:", " " + lecture + " " + solution + " The answer is A."},
		{QCMLA, false, q + "Context: N/A\n" + m + "BECAUSE: " + lecture + "\nAnswer:", " The answer is A."},
		// base_prompt.py's AL appends the solution (and AE the lecture).
		{"QCM-AL", false, q + "Context: N/A\n" + m + "Answer:", " The answer is A. BECAUSE: " + solution},
	}
	for _, c := range cases {
		got, err := Build(p, c.f, PromptOptions{UseCaption: c.caption})
		if err != nil {
			t.Fatalf("%s: %v", c.f, err)
		}
		if got.Text != c.text || got.Target != c.target {
			t.Errorf("%s caption=%v:\n got %q + %q\nwant %q + %q", c.f, c.caption, got.Text, got.Target, c.text, c.target)
		}
	}
	// Every format of base_prompt.py builds for every sample problem, and a hint is the context.
	for _, pr := range sampleProblems(t) {
		for _, in := range inputFormats {
			for _, out := range outputFormats {
				if _, err := Build(pr, Format(in+"-"+out), PromptOptions{}); err != nil &&
					!strings.Contains(err.Error(), "empty explanation") {
					t.Fatalf("%s-%s pid %s: %v", in, out, pr.PID, err)
				}
			}
		}
		if pr.Hint != "" {
			b, _ := Build(pr, QCMA, PromptOptions{})
			if !strings.Contains(b.Text, "\nContext: "+pyStrip(strings.ReplaceAll(pr.Hint, "  ", " "))+"\n") {
				t.Errorf("pid %s: hint not the context: %q", pr.PID, b.Text)
			}
		}
	}
	for _, bad := range []string{"QCM", "QCM-X", "XYZ-A", ""} {
		if _, err := ParseFormat(bad); err == nil {
			t.Errorf("format %q accepted", bad)
		}
	}
}

// Python's str.replace("  ", " ") is one left-to-right pass: three spaces become two.
func TestPromptSpacing(t *testing.T) {
	p := &Problem{PID: "x", Question: "  a   b  ", Choices: []string{"c  d", "e"}, Answer: 1, Hint: " \t"}
	got, err := Build(p, QCMA, PromptOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := "Question:  a  b \nContext: N/A\nOptions: (A) c d (B) e\nAnswer:"
	if got.Text != want || got.Target != " The answer is B." {
		t.Errorf("got %q + %q, want %q", got.Text, got.Target, want)
	}
	// An empty explanation makes base_prompt.py drop every "BECAUSE:", the input's too: no clean target.
	if _, err := Build(p, "QCML-AE", PromptOptions{}); err == nil {
		t.Error("QCML-AE with an empty lecture built")
	}
	if got, _ := Build(p, "QCM-AE", PromptOptions{}); got.Target != " The answer is B." {
		t.Errorf("QCM-AE with an empty lecture: target %q", got.Target)
	}
}

// byteEncoder is a tokenizer with one token per byte (ids 3..258), BOS 1, EOS 2: token counts are byte counts.
type byteEncoder struct{}

func (byteEncoder) Encode(text string, addBOS bool) []int {
	var ids []int
	if addBOS {
		ids = append(ids, 1)
	}
	for _, b := range []byte(text) {
		ids = append(ids, int(b)+3)
	}
	return ids
}

func (byteEncoder) EOS() int { return 2 }

func decodeBytes(ids []int) string {
	var b []byte
	for _, id := range ids {
		if id >= 3 {
			b = append(b, byte(id-3))
		}
	}
	return string(b)
}

func TestTokenizeMask(t *testing.T) {
	p := sampleProblem(t, "1")
	ex, err := Tokenize(byteEncoder{}, p, QCMA, TokenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	target := " The answer is A."
	if ex.IDs[0] != 1 || ex.IDs[len(ex.IDs)-1] != 2 || ex.PromptLen != 1+len(ex.Prompt.Text) ||
		len(ex.IDs) != ex.PromptLen+len(target)+1 || len(ex.Mask) != len(ex.IDs) {
		t.Fatalf("layout: %d ids, prompt %d", len(ex.IDs), ex.PromptLen)
	}
	var masked []int
	for i, m := range ex.Mask {
		if m {
			masked = append(masked, ex.IDs[i])
		}
	}
	// Exactly the answer tokens and the EOS.
	if got := decodeBytes(masked); got != target || masked[len(masked)-1] != 2 || len(masked) != len(target)+1 {
		t.Errorf("masked tokens %q (%d), want %q + EOS", got, len(masked), target)
	}
	if ex.ContextWords != -1 {
		t.Errorf("context shortened without a bound")
	}

	po, err := Tokenize(byteEncoder{}, p, QCMA, TokenOptions{PromptOnly: true})
	if err != nil || len(po.IDs) != ex.PromptLen || decodeBytes(po.IDs) != ex.Prompt.Text {
		t.Errorf("prompt only: %d ids, %v", len(po.IDs), err)
	}
	for _, m := range po.Mask {
		if m {
			t.Fatal("prompt-only example has a masked token")
		}
	}
}

func TestTokenizeTruncation(t *testing.T) {
	words := make([]string, 60)
	for i := range words {
		words[i] = "word" + string(rune('a'+i%26))
	}
	p := &Problem{PID: "t", Question: "Which is right?", Choices: []string{"left", "right", "up"}, Answer: 1,
		Hint: strings.Join(words, " "), Lecture: "L", Solution: "S"}
	for _, f := range []Format{QCMA, CQMA, QCMLEA} {
		full, err := Tokenize(byteEncoder{}, p, f, TokenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		maxLen := len(full.IDs) - 100
		ex, err := Tokenize(byteEncoder{}, p, f, TokenOptions{MaxLen: maxLen})
		if err != nil {
			t.Fatal(err)
		}
		text := ex.Prompt.Text + ex.Prompt.Target
		if len(ex.IDs) > maxLen || ex.ContextWords <= 0 || ex.ContextWords >= len(words) {
			t.Fatalf("%s: %d ids (max %d), %d context words", f, len(ex.IDs), maxLen, ex.ContextWords)
		}
		for _, keep := range []string{"Question: Which is right?\n", "Options: (A) left (B) right (C) up\n", "The answer is B.",
			"Context: " + strings.Join(words[:ex.ContextWords], " ") + "\n"} {
			if !strings.Contains(text, keep) {
				t.Errorf("%s: %q lost from %q", f, keep, text)
			}
		}
		if ex.Prompt.Target != full.Prompt.Target {
			t.Errorf("%s: target changed: %q", f, ex.Prompt.Target)
		}
		// Maximal: one more word does not fit (byte tokens: one word + a space).
		if len(ex.IDs)+len(words[ex.ContextWords])+1 <= maxLen {
			t.Errorf("%s: %d ids, word %q would still fit in %d", f, len(ex.IDs), words[ex.ContextWords], maxLen)
		}
		masked := 0
		for _, m := range ex.Mask {
			if m {
				masked++
			}
		}
		if masked != len(ex.Prompt.Target)+1 {
			t.Errorf("%s: %d masked, want %d", f, masked, len(ex.Prompt.Target)+1)
		}
	}
	// Too long even without context.
	_, err := Tokenize(byteEncoder{}, p, QCMA, TokenOptions{MaxLen: 40})
	if !errors.Is(err, ErrTooLong) {
		t.Errorf("MaxLen 40: %v", err)
	}
	// The whole context dropped: written as N/A.
	noCtx, _ := Tokenize(byteEncoder{}, &Problem{PID: "t", Question: p.Question, Choices: p.Choices, Answer: 1}, QCMA, TokenOptions{})
	ex, err := Tokenize(byteEncoder{}, p, QCMA, TokenOptions{MaxLen: len(noCtx.IDs) + 1})
	if err != nil || ex.ContextWords != 0 || !strings.Contains(ex.Prompt.Text, "Context: N/A\n") {
		t.Errorf("no room for context: %v, %d words, %q", err, ex.ContextWords, ex.Prompt.Text)
	}
}

// With the real stories260K tokenizer (llama2.c BPE), the mask covers the tokens of " The answer is X." and EOS.
func TestTokenizeRealTokenizer(t *testing.T) {
	tok, err := tokenizer.Load(assets.Require(t, assets.Path("models", "stories260K", "tok512.bin")))
	if err != nil {
		t.Fatal(err)
	}
	notPrefix := 0
	for _, p := range sampleProblems(t) {
		ex, err := Tokenize(tok, p, QCMA, TokenOptions{MaxLen: 512})
		if errors.Is(err, ErrTooLong) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		prompt := tok.Encode(ex.Prompt.Text, true)
		for i := range prompt {
			if prompt[i] != ex.IDs[i] {
				notPrefix++
				break
			}
		}
		var masked []int
		for i, m := range ex.Mask {
			if m {
				masked = append(masked, ex.IDs[i])
			}
		}
		want := "The answer is " + Letter(p.Answer) + "."
		if got := tok.Decode(masked); strings.TrimSpace(got) != want || masked[len(masked)-1] != tok.EOS() {
			t.Errorf("pid %s: masked tokens decode to %q, want %q + EOS", p.PID, got, want)
		}
		if ex.IDs[0] != tok.BOS() || len(ex.IDs) > 512 {
			t.Errorf("pid %s: %d ids starting %d", p.PID, len(ex.IDs), ex.IDs[0])
		}
	}
	if notPrefix > 0 {
		t.Errorf("%d prompts tokenize differently alone than as the prefix of the training text", notPrefix)
	}
}
