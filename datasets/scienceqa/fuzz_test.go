package scienceqa

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/adapterlab/llama-adapter/datasets/assets"
)

// FuzzParseProblemsJSON: the problems reader never panics, accounts for every record (decoded or reported), and
// what it decodes validates and renders without panicking.
func FuzzParseProblemsJSON(f *testing.F) {
	if data, err := os.ReadFile(assets.Path("scienceqa", "problems_sample150.json")); err == nil {
		var recs map[string]json.RawMessage
		if json.Unmarshal(data, &recs) == nil {
			for pid, r := range recs {
				if len(pid) == 1 || pid == "12" || pid == "4241" { // a few whole records keep inputs small
					f.Add([]byte(`{"` + pid + `": ` + string(r) + `}`))
				}
			}
		}
	}
	f.Add([]byte(`{"1": {"question": "q", "choices": ["a", "b"], "answer": 1, "hint": "", "image": null, "split": "test"}}`))
	f.Add([]byte(`{"1": {"question": "q", "choices": ["a"], "answer": 9, "split": "x"}, "2": null, "3": []}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ps, errs, err := ParseProblemsJSON("fuzz.json", data)
		if err != nil {
			return
		}
		var top map[string]json.RawMessage
		if json.Unmarshal(data, &top) != nil {
			t.Fatalf("accepted a document encoding/json rejects")
		}
		if len(ps)+len(errs) != len(top) {
			t.Fatalf("%d problems + %d errors for %d records", len(ps), len(errs), len(top))
		}
		for _, p := range ps {
			if _, ok := top[p.PID]; !ok {
				t.Fatalf("pid %q not in the input", p.PID)
			}
			p.Image = Image{} // no file lookups while fuzzing
			if validate("fuzz.json", p, false) != nil {
				continue
			}
			for _, fm := range []Format{QCMA, CQMA, QCMLEA, QCMLA} {
				pr, err := Build(p, fm, PromptOptions{UseCaption: true})
				if err != nil {
					continue
				}
				if !strings.HasSuffix(pr.Text, "Answer:") || !strings.Contains(pr.Target, "The answer is "+Letter(p.Answer)+".") {
					t.Fatalf("%s: %q + %q", fm, pr.Text, pr.Target)
				}
			}
			_ = CategoriesOf(p)
		}
	})
}

// FuzzExtractAnswer: the extractor never panics, and a parsed letter is A..Z and really follows
// "The answer is " in the text.
func FuzzExtractAnswer(f *testing.F) {
	for _, s := range []string{"The answer is A.", " The answer is C.\n", "The answer is B", "The answer is A. The answer is B.",
		"BECAUSE: x The answer is E.", "", "The answer is \xff.", "The answer is Z\u00e9"} {
		f.Add(s, 3)
	}
	letter := regexp.MustCompile(`^[A-Z]$`)
	f.Fuzz(func(t *testing.T, s string, n int) {
		l, ok := ExtractAnswer(s)
		if ok && (!letter.MatchString(l) || !strings.Contains(s, "The answer is "+l)) {
			t.Fatalf("ExtractAnswer(%q) = %q", s, l)
		}
		if !ok && l != "" {
			t.Fatalf("unparsed but letter %q", l)
		}
		n %= 30
		i, parsed := Resolver{Seed: 1}.Index("p", s, n)
		if n > 0 && (i < 0 || i >= n) {
			t.Fatalf("Index(%q, %d) = %d", s, n, i)
		}
		if parsed && (!ok || i != strings.Index(DefaultLetters, l)) {
			t.Fatalf("Index(%q, %d) = %d parsed, letter %q", s, n, i, l)
		}
	})
}

// FuzzParsePredictions: the predictions reader never panics.
func FuzzParsePredictions(f *testing.F) {
	f.Add([]byte(`{"1": 0, "2": "1"}`))
	f.Add([]byte(`{"results": {"1": 2.0}, "acc": 1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = ParsePredictions("fuzz.json", data)
	})
}
