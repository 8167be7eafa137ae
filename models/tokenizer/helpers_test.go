package tokenizer

import (
	"encoding/json"
	"os"
	"sort"
	"testing"

	"github.com/adapterlab/llama-adapter/datasets/assets"
)

// Paths of the shared assets the tests read (never copied into the repository).
func llamaModelPath(tb testing.TB) string {
	return assets.Require(tb, assets.Path("models", "llama-tokenizer", "tokenizer.model"))
}

func tok512Path(tb testing.TB) string {
	return assets.Require(tb, assets.Path("models", "stories260K", "tok512.bin"))
}

// scienceQATexts returns every non-empty question, hint, choice, lecture and solution of problems_sample150.json,
// in a fixed order.
func scienceQATexts(tb testing.TB) []string {
	tb.Helper()
	path := assets.Require(tb, assets.Path("scienceqa", "problems_sample150.json"))
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("reading %s: %v", path, err)
	}
	var problems map[string]struct {
		Question string   `json:"question"`
		Hint     string   `json:"hint"`
		Choices  []string `json:"choices"`
		Lecture  string   `json:"lecture"`
		Solution string   `json:"solution"`
	}
	if err := json.Unmarshal(data, &problems); err != nil {
		tb.Fatalf("parsing %s: %v", path, err)
	}
	pids := make([]string, 0, len(problems))
	for pid := range problems {
		pids = append(pids, pid)
	}
	sort.Strings(pids)
	var texts []string
	for _, pid := range pids {
		p := problems[pid]
		for _, s := range append([]string{p.Question, p.Hint, p.Lecture, p.Solution}, p.Choices...) {
			if s != "" {
				texts = append(texts, s)
			}
		}
	}
	if len(texts) < 150 {
		tb.Fatalf("%s: only %d texts", path, len(texts))
	}
	return texts
}

// streamDecode concatenates DecodePiece over ids starting after BOS, as a generation loop prints them.
func streamDecode(tok Tokenizer, ids []int) string {
	var out []byte
	prev := tok.BOS()
	for _, id := range ids {
		out = append(out, tok.DecodePiece(prev, id)...)
		prev = id
	}
	return string(out)
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
