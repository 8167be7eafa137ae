package scienceqa

import (
	"math"
	"strconv"
	"testing"
)

func TestExtractAnswer(t *testing.T) {
	cases := []struct {
		in     string
		letter string
		ok     bool
	}{
		{"The answer is B.", "B", true},
		{" The answer is C.\n", "C", true},
		{"Because ... The answer is A. BECAUSE: x", "A", true},
		{"The answer is D!", "D", true},   // run_gpt3.py's "." matches any character
		{"The answer is B", "", false},    // ... but one must follow the letter
		{"The answer is B\n", "", false},  // and "." does not match a newline
		{"the answer is A.", "", false},   // case-sensitive
		{"The answer is (A).", "", false}, // the letter must follow directly
		{"The answer is a.", "", false},
		{"The answer is A. The answer is B.", "", false}, // several matches are unparsable
		{"", "", false},
	}
	for _, c := range cases {
		l, ok := ExtractAnswer(c.in)
		if l != c.letter || ok != c.ok {
			t.Errorf("ExtractAnswer(%q) = %q, %v; want %q, %v", c.in, l, ok, c.letter, c.ok)
		}
	}
}

func TestResolver(t *testing.T) {
	r := Resolver{Fallback: FallbackRandom, Seed: 10}
	if i, ok := r.Index("1", "The answer is C.", 3); i != 2 || !ok {
		t.Errorf("parsed C of 3: %d %v", i, ok)
	}
	// A letter beyond the choices falls back, as get_pred_idx.
	counts := make([]int, 3)
	for n := 0; n < 3000; n++ {
		pid := strconv.Itoa(n)
		i, ok := r.Index(pid, "The answer is E.", 3)
		if ok || i < 0 || i >= 3 {
			t.Fatalf("fallback for pid %s: %d %v", pid, i, ok)
		}
		if j, _ := r.Index(pid, "garbage", 3); j != i {
			t.Fatalf("pid %s: fallback not deterministic: %d then %d", pid, i, j)
		}
		counts[i]++
	}
	// Uniform: 1000 expected per option, standard deviation ~26.
	for i, c := range counts {
		if c < 850 || c > 1150 {
			t.Errorf("option %d drawn %d times of 3000", i, c)
		}
	}
	other := Resolver{Fallback: FallbackRandom, Seed: 11}
	same := 0
	for n := 0; n < 300; n++ {
		a, _ := r.Index(strconv.Itoa(n), "", 4)
		b, _ := other.Index(strconv.Itoa(n), "", 4)
		if a == b {
			same++
		}
	}
	if same > 120 { // 75 expected
		t.Errorf("seeds 10 and 11 agree on %d of 300 draws", same)
	}
	wrong := Resolver{Fallback: FallbackWrong}
	if i, ok := wrong.Index("1", "no answer", 3); i != Unanswered || ok {
		t.Errorf("wrong fallback: %d %v", i, ok)
	}
	if f, err := ParseFallback("wrong"); err != nil || f != FallbackWrong {
		t.Error(f, err)
	}
	if _, err := ParseFallback("zero"); err == nil {
		t.Error("bad fallback accepted")
	}
}

func TestArgmaxLetter(t *testing.T) {
	nan := math.NaN()
	cases := []struct {
		scores []float64
		n      int
		want   int
	}{
		{[]float64{0.1, 0.5, 0.5, 9}, 3, 1}, // ties go to the first; D is not an option
		{[]float64{-3, -1, -2}, 3, 1},
		{[]float64{nan, -5, nan}, 3, 1},
		{[]float64{2}, 1, 0},
	}
	for _, c := range cases {
		got, err := ArgmaxLetter(c.scores, c.n)
		if err != nil || got != c.want {
			t.Errorf("ArgmaxLetter(%v, %d) = %d, %v; want %d", c.scores, c.n, got, err, c.want)
		}
	}
	for _, bad := range []struct {
		s []float64
		n int
	}{{[]float64{1, 2}, 3}, {[]float64{1}, 0}, {[]float64{nan, nan}, 2}} {
		if _, err := ArgmaxLetter(bad.s, bad.n); err == nil {
			t.Errorf("ArgmaxLetter(%v, %d) gave no error", bad.s, bad.n)
		}
	}
}
