package scienceqa

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// The prompt-format sweep's three inputs (QCM, CQM, QM) on pid 7 of the sample (a hint of three lines, choices
// "discus" and "armored catfish", answer 1). The expected texts are written by hand from that record.
const (
	pid7Question = "Question: Which animal's mouth is also adapted for bottom feeding?\n"
	pid7Context  = "Context: Sturgeons eat invertebrates, plants, and small fish. They are bottom feeders. Bottom feeders find their food at the bottom of rivers, lakes, and the ocean.\n" +
		"The 's mouth is located on the underside of its head and points downward. Its mouth is adapted for bottom feeding.\n" +
		"Figure: sturgeon.\n"
	pid7Options = "Options: (A) discus (B) armored catfish\n"
)

// TestPromptQMA: QM-A is QCM-A without its Context line, letter target unchanged.
func TestPromptQMA(t *testing.T) {
	p := sampleProblem(t, "7")
	got, err := Build(p, QMA, PromptOptions{UseCaption: true})
	if err != nil {
		t.Fatal(err)
	}
	want := "Question: Which animal's mouth is also adapted for bottom feeding?\n" +
		"Options: (A) discus (B) armored catfish\n" +
		"Answer:"
	if got.Text != want || got.Target != " The answer is B." {
		t.Errorf("QM-A:\n got %q + %q\nwant %q + %q", got.Text, got.Target, want, " The answer is B.")
	}
	if f, err := ParseFormat("QM-A"); err != nil || f != QMA {
		t.Errorf("ParseFormat(QM-A) = %q, %v", f, err)
	}
	if QMA.HasContext() || !QCMA.HasContext() || !CQMA.HasContext() || !Format("").HasContext() {
		t.Errorf("HasContext: QM-A %v, QCM-A %v, CQM-A %v, \"\" %v", QMA.HasContext(), QCMA.HasContext(), CQMA.HasContext(), Format("").HasContext())
	}
}

// TestPromptFieldOrder: on every sample problem, CQM-A's prompt is QCM-A's with the Context line moved before the
// Question line, and QM-A's is QCM-A's without it; nothing else differs, the targets are the same.
func TestPromptFieldOrder(t *testing.T) {
	for _, p := range sampleProblems(t) {
		qcm, err := Build(p, QCMA, PromptOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// The Context line runs from "\nContext: " to the "\nOptions: " that follows it.
		cs := strings.Index(qcm.Text, "\nContext: ") + 1
		ce := cs + strings.Index(qcm.Text[cs:], "\nOptions: ") + 1
		if cs == 0 || ce <= cs {
			t.Fatalf("pid %s: no Context line in %q", p.PID, qcm.Text)
		}
		ctx, rest := qcm.Text[cs:ce], qcm.Text[:cs]+qcm.Text[ce:]
		for _, c := range []struct {
			f    Format
			want string
		}{{CQMA, ctx + rest}, {QMA, rest}} {
			got, err := Build(p, c.f, PromptOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got.Text != c.want || got.Target != qcm.Target {
				t.Errorf("pid %s %s:\n got %q + %q\nwant %q + %q", p.PID, c.f, got.Text, got.Target, c.want, qcm.Target)
			}
		}
	}
	p := sampleProblem(t, "7")
	for f, want := range map[Format]string{
		QCMA: pid7Question + pid7Context + pid7Options + "Answer:",
		CQMA: pid7Context + pid7Question + pid7Options + "Answer:",
	} {
		if got, _ := Build(p, f, PromptOptions{}); got.Text != want {
			t.Errorf("%s:\n got %q\nwant %q", f, got.Text, want)
		}
	}
}

// TestClozePromptFormat: the cloze prompt takes the format's field order and context line (options never), and the
// cloze target trains on exactly what cloze scoring reads in the same format.
func TestClozePromptFormat(t *testing.T) {
	p := sampleProblem(t, "7")
	for _, c := range []struct {
		f    Format
		want string
	}{
		{QCMA, pid7Question + pid7Context + "Answer:"},
		{"", pid7Question + pid7Context + "Answer:"}, // the zero Format is QCM-A
		{CQMA, pid7Context + pid7Question + "Answer:"},
		{QMA, pid7Question + "Answer:"},
		{QCMLA, pid7Question + pid7Context + "Answer:"}, // lecture not in a cloze prompt
	} {
		if got := ClozePromptFormat(p, c.f, false); got != c.want {
			t.Errorf("cloze %q:\n got %q\nwant %q", c.f, got, c.want)
		}
		cl, err := TokenizeCloze(byteEncoder{}, p, ClozeOptions{Format: c.f})
		if err != nil {
			t.Fatal(err)
		}
		if cl.Text != c.want {
			t.Errorf("TokenizeCloze %q text %q", c.f, cl.Text)
		}
		if c.f == "" {
			continue
		}
		ex, err := Tokenize(byteEncoder{}, p, c.f, TokenOptions{PromptOptions: PromptOptions{Target: TargetCloze}})
		if err != nil {
			t.Fatal(err)
		}
		want := append(append(slices.Clone(cl.Prompt), cl.Options[p.Answer]...), 2)
		if !slices.Equal(ex.IDs, want) || ex.Prompt.Text != c.want {
			t.Errorf("%s cloze target %q, the scorer's gold sequence %q", c.f, decodeBytes(ex.IDs), decodeBytes(want))
		}
	}
	// An empty hint in CQM: no Context line at all (as in QCM), not an empty one before the question.
	if got, want := ClozePromptFormat(sampleProblem(t, "1"), CQMA, false), "Question: Which of these states is farthest north?\nAnswer:"; got != want {
		t.Errorf("CQM cloze, no hint: %q, want %q", got, want)
	}
}

// TestQMTooLong: with no Context line there is nothing to shorten: a QM prompt over MaxLen is ErrTooLong (letter
// and cloze), where QCM drops context words.
func TestQMTooLong(t *testing.T) {
	p := sampleProblem(t, "7")
	full, err := Tokenize(byteEncoder{}, p, QMA, TokenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if full.ContextWords != -1 || strings.Contains(full.Prompt.Text, "Context") {
		t.Errorf("QM-A: context words %d, text %q", full.ContextWords, full.Prompt.Text)
	}
	if _, err := Tokenize(byteEncoder{}, p, QMA, TokenOptions{MaxLen: len(full.IDs) - 1}); !errors.Is(err, ErrTooLong) {
		t.Errorf("QM-A one token over: %v, want ErrTooLong", err)
	}
	qcm, err := Tokenize(byteEncoder{}, p, QCMA, TokenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cut, err := Tokenize(byteEncoder{}, p, QCMA, TokenOptions{MaxLen: len(qcm.IDs) - 1}); err != nil || cut.ContextWords < 0 {
		t.Errorf("QCM-A one token over: %d context words, %v", cut.ContextWords, err)
	}
	cl, err := TokenizeCloze(byteEncoder{}, p, ClozeOptions{Format: QMA})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := TokenizeCloze(byteEncoder{}, p, ClozeOptions{Format: QMA, MaxLen: cl.longest() - 1}); !errors.Is(err, ErrTooLong) {
		t.Errorf("QM cloze one token over: %v, want ErrTooLong", err)
	}
}
