package tokenizer

import (
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

// mustLoad loads the tokenizer file at path with load, failing the test on error.
func mustLoad[T any](tb testing.TB, load func(path string) (T, error), path string) T {
	tb.Helper()
	tok, err := load(path)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// scienceQATexts returns every non-empty question, hint, choice, lecture and solution of problems_sample150.json,
// in a fixed order.
func scienceQATexts(tb testing.TB) []string {
	tb.Helper()
	path := assets.Require(tb, assets.Path("scienceqa", "problems_sample150.json"))
	var problems map[string]struct {
		Question string   `json:"question"`
		Hint     string   `json:"hint"`
		Choices  []string `json:"choices"`
		Lecture  string   `json:"lecture"`
		Solution string   `json:"solution"`
	}
	assets.ReadJSON(tb, path, &problems)
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
