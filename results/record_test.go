package results

import (
	"reflect"
	"testing"
)

func TestDiffRecords(t *testing.T) {
	type rec struct {
		Epochs  int               `json:"epochs"`
		LR      float64           `json:"lr"`
		Digests map[string]string `json:"digests"`
		Layers  []int             `json:"layers,omitempty"`
	}
	old := rec{Epochs: 2, LR: 1e-3, Digests: map[string]string{"model": "aa", "data": "dd"}, Layers: []int{1, 2}}
	now := rec{Epochs: 3, LR: 1e-3, Digests: map[string]string{"model": "bb", "tokenizer": "tt"}}
	got, err := DiffRecords(old, now)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`digests.data: recorded "dd", now absent`,
		`digests.model: recorded "aa", now "bb"`,
		`digests.tokenizer: recorded absent, now "tt"`,
		`epochs: recorded 2, now 3`,
		`layers: recorded [1,2], now absent`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
	if d, err := DiffRecords(old, old); err != nil || len(d) != 0 {
		t.Errorf("same record: %v, %v", d, err)
	}
}
