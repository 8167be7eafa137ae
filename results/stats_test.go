package results

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

func near(t *testing.T, what string, got, want, tol float64) {
	t.Helper()
	if math.Abs(got-want) > tol {
		t.Errorf("%s = %.10g, want %.10g (±%g)", what, got, want, tol)
	}
}

func TestWilson(t *testing.T) {
	// 485/904 (the default run's cloze accuracy). Reference computed independently in Python from the formula,
	// p=k/n; c=(p+z²/2n)/(1+z²/n); h=z/(1+z²/n)·sqrt(p(1−p)/n+z²/4n²): [0.5039117060274149, 0.5687882123985794].
	iv, err := Wilson(485, 904, Z95)
	if err != nil {
		t.Fatal(err)
	}
	near(t, "Wilson(485/904).Lo", iv.Lo, 0.5039117060274149, 1e-12)
	near(t, "Wilson(485/904).Hi", iv.Hi, 0.5687882123985794, 1e-12)
	// 0/10: the lower bound is 0 and the upper z²/(n+z²) (the formula with p̂=0 collapses to it).
	iv, err = Wilson(0, 10, Z95)
	if err != nil {
		t.Fatal(err)
	}
	near(t, "Wilson(0/10).Lo", iv.Lo, 0, 1e-15)
	near(t, "Wilson(0/10).Hi", iv.Hi, Z95*Z95/(10+Z95*Z95), 1e-12)
	// Symmetry: the interval of n−k is the mirror of k's.
	a, _ := Wilson(3, 17, Z95)
	b, _ := Wilson(14, 17, Z95)
	near(t, "mirror lo", a.Lo, 1-b.Hi, 1e-12)
	near(t, "mirror hi", a.Hi, 1-b.Lo, 1e-12)
	for _, c := range [][2]int{{1, 0}, {-1, 5}, {6, 5}} {
		if _, err := Wilson(c[0], c[1], Z95); err == nil {
			t.Errorf("Wilson(%d, %d): no error", c[0], c[1])
		}
	}
}

func TestBinomialTwoSided(t *testing.T) {
	// Exact McNemar, b=70 c=96 (the default run vs zero-shot): 2·Σ_{i≤70} C(166,i)/2¹⁶⁶, summed in exact
	// rational arithmetic in Python (fractions.Fraction, math.comb) = 0.0520057549969648.
	near(t, "p(70 of 166)", BinomialTwoSided(70, 166), 0.0520057549969648, 1e-12)
	near(t, "p(96 of 166)", BinomialTwoSided(96, 166), 0.0520057549969648, 1e-12)
	// By hand: 3 of 20, 2·(1+20+190+1140)/2²⁰ = 2702/1048576.
	near(t, "p(3 of 20)", BinomialTwoSided(3, 20), 2702.0/1048576, 1e-15)
	// A balanced outcome is p = 1 (the two tails overlap at the middle), and no discordant pair is no evidence.
	near(t, "p(5 of 10)", BinomialTwoSided(5, 10), 1, 0)
	near(t, "p(0 of 0)", BinomialTwoSided(0, 0), 1, 0)
	// 0 of 10: 2/2¹⁰.
	near(t, "p(0 of 10)", BinomialTwoSided(0, 10), 2.0/1024, 1e-15)
}

// outcomes builds a stratum of n problems from counts: both right, only A, only B, both wrong.
func outcomes(name string, both, onlyA, onlyB, neither int) Stratum {
	a, b := map[string]bool{}, map[string]bool{}
	i := 0
	add := func(n int, x, y bool) {
		for range n {
			pid := fmt.Sprintf("p%04d", i)
			a[pid], b[pid] = x, y
			i++
		}
	}
	add(both, true, true)
	add(onlyA, true, false)
	add(onlyB, false, true)
	add(neither, false, false)
	s, err := NewStratum(name, a, b)
	if err != nil {
		panic(err)
	}
	return s
}

func TestPairedDifferenceOneSeedIsMcNemar(t *testing.T) {
	// The default run's cloze counts: 904 problems, 96 only the adapter gets right, 70 only zero-shot, 485 vs 459
	// right in all.
	s := outcomes("s0", 389, 96, 70, 349)
	p, err := PairedDifference([]Stratum{s}, Bootstrap{})
	if err != nil {
		t.Fatal(err)
	}
	near(t, "diff", p.Diff, 100*26.0/904, 1e-12)
	near(t, "p", p.P, 0.0520057549969648, 1e-12)
	if p.Plus != 96 || p.Minus != 70 || p.OnlyA != 96 || p.OnlyB != 70 || p.Pairs != 904 || p.Problems != 904 || p.Seeds != 1 {
		t.Errorf("counts %+v", p)
	}
	if !(p.CI.Lo < p.Diff && p.Diff < p.CI.Hi) {
		t.Errorf("interval %v does not cover the difference %.3f", p.CI, p.Diff)
	}
	// The bootstrap standard error of a paired difference is √((b+c)/n − d²)/√n in proportions: ±1.96 of it is
	// the normal approximation the percentile interval must be close to at 10,000 resamples.
	n, d := 904.0, 26.0/904
	se := 100 * math.Sqrt((166/n-d*d)/n)
	near(t, "CI.Lo", p.CI.Lo, p.Diff-Z95*se, 0.25)
	near(t, "CI.Hi", p.CI.Hi, p.Diff+Z95*se, 0.25)
	// Deterministic: the same data and seed give the same interval; another seed a slightly different one.
	q, _ := PairedDifference([]Stratum{s}, Bootstrap{})
	if q.CI != p.CI {
		t.Errorf("two computations differ: %v vs %v", p.CI, q.CI)
	}
	r, _ := PairedDifference([]Stratum{s}, Bootstrap{Seed: 99})
	if r.CI == p.CI {
		t.Errorf("another bootstrap seed gave the identical interval %v", r.CI)
	}
	// The outside computation: bootstrap [0.11, 5.64]. The resampled differences are multiples of 1/904
	// (0.1106 points) and the 2.5 % quantile sits on the step between 0 and 0.11 (the one-sided tail is ≈ p/2 =
	// 0.026): at 10,000 resamples the lower end is 0 or 0.11 depending on the generator's seed; at 200,000 it is
	// 0.11, the step above 0.
	if testing.Short() {
		return
	}
	big, _ := PairedDifference([]Stratum{s}, Bootstrap{Resamples: 200000})
	near(t, "CI.Lo at 200k", big.CI.Lo, 100.0/904, 1e-9)
	near(t, "CI.Hi at 200k", big.CI.Hi, 5100.0/904, 1e-9)
	if got := VerdictOf(big.Diff, big.CI, +1); got != VerdictReproduced {
		t.Errorf("verdict %q", got)
	}
	if got := VerdictOf(big.Diff, Interval{Lo: 0, Hi: big.CI.Hi}, +1); got != VerdictInDirection {
		t.Errorf("verdict at a lower end of 0: %q", got)
	}
	if !strings.Contains(big.Sentence("adapter − zero-shot", +1), "+2.88 points, 95 % CI [0.11, 5.64], exact p = 0.052 (96 vs 70 problems better)") {
		t.Errorf("sentence %q", big.Sentence("adapter − zero-shot", +1))
	}
}

func TestPairedDifferenceWidthShrinksWithN(t *testing.T) {
	// The same proportions at 4× the problems: the interval halves (±10 %, the bootstrap's own noise).
	small, _ := PairedDifference([]Stratum{outcomes("s", 100, 30, 20, 50)}, Bootstrap{})
	large, _ := PairedDifference([]Stratum{outcomes("s", 400, 120, 80, 200)}, Bootstrap{})
	near(t, "diffs", small.Diff, large.Diff, 1e-12)
	ratio := (small.CI.Hi - small.CI.Lo) / (large.CI.Hi - large.CI.Lo)
	near(t, "width ratio", ratio, 2, 0.2)
}

func TestPairedDifferenceSeedsAsStrata(t *testing.T) {
	// Two seeds on the same problems, identical outcomes: the problem is the unit, so the interval is that of one
	// seed (clustered draw), not narrowed by √2, and the sign test counts each problem once.
	one := outcomes("s0", 100, 30, 20, 50)
	two := outcomes("s1", 100, 30, 20, 50)
	p1, _ := PairedDifference([]Stratum{one}, Bootstrap{})
	p2, err := PairedDifference([]Stratum{one, two}, Bootstrap{})
	if err != nil {
		t.Fatal(err)
	}
	if !p2.Clustered || p2.Problems != 200 || p2.Pairs != 400 || p2.Plus != 30 || p2.Minus != 20 || p2.OnlyA != 60 {
		t.Errorf("two seeds: %+v", p2)
	}
	near(t, "diff", p2.Diff, p1.Diff, 1e-12)
	near(t, "p", p2.P, p1.P, 1e-15)
	near(t, "CI width", p2.CI.Hi-p2.CI.Lo, p1.CI.Hi-p1.CI.Lo, 0.1*(p1.CI.Hi-p1.CI.Lo))
	// Seeds that disagree on a problem cancel on it: A better on p0000 in seed 0, B better on it in seed 1.
	a0 := map[string]bool{"x": true, "y": true, "z": false}
	b0 := map[string]bool{"x": false, "y": true, "z": false}
	a1 := map[string]bool{"x": false, "y": true, "z": true}
	b1 := map[string]bool{"x": true, "y": true, "z": false}
	s0, _ := NewStratum("0", a0, b0)
	s1, _ := NewStratum("1", a1, b1)
	p, _ := PairedDifference([]Stratum{s0, s1}, Bootstrap{Resamples: 200})
	if p.Plus != 1 || p.Minus != 0 || p.OnlyA != 2 || p.OnlyB != 1 {
		t.Errorf("cancelling seeds: %+v", p)
	}
	near(t, "diff", p.Diff, 100*1.0/6, 1e-12)
	// Different problems per seed: drawn within each stratum.
	s2 := outcomes("s2", 10, 5, 1, 4)
	s2.PIDs[0] = "other"
	if p, _ := PairedDifference([]Stratum{one, s2}, Bootstrap{Resamples: 100}); p.Clustered {
		t.Error("strata with different problems drawn as clusters")
	}
	if _, err := NewStratum("bad", map[string]bool{"x": true}, map[string]bool{"y": true}); err == nil {
		t.Error("strata of different problems paired without error")
	}
}

func TestAccuracyOf(t *testing.T) {
	m := map[string]bool{}
	for i := range 904 {
		m[fmt.Sprint(i)] = i < 485
	}
	a, err := AccuracyOf([]map[string]bool{m}, Bootstrap{})
	if err != nil {
		t.Fatal(err)
	}
	near(t, "percent", a.Percent, 100*485.0/904, 1e-12)
	near(t, "wilson lo", a.CI.Lo, 50.39117060274149, 1e-10)
	if a.Method != "wilson" || a.Correct != 485 || a.Total != 904 {
		t.Errorf("%+v", a)
	}
	// Two seeds: bootstrap around the pooled mean, close to the normal interval of 904 problems.
	m2 := map[string]bool{}
	for pid, v := range m {
		m2[pid] = !v
	}
	b, err := AccuracyOf([]map[string]bool{m, m2}, Bootstrap{})
	if err != nil {
		t.Fatal(err)
	}
	// Every problem is right in exactly one seed: every resample's mean is 50 %.
	near(t, "pooled", b.Percent, 50, 1e-12)
	near(t, "pooled lo", b.CI.Lo, 50, 1e-9)
	near(t, "pooled hi", b.CI.Hi, 50, 1e-9)
}

func TestVerdictOf(t *testing.T) {
	for _, c := range []struct {
		diff   float64
		ci     Interval
		expect int
		want   string
	}{
		{2, Interval{0.5, 4}, 1, VerdictReproduced},
		{2, Interval{-0.5, 4}, 1, VerdictInDirection},
		{-2, Interval{-4, 0.5}, 1, VerdictOpposite},
		{-2, Interval{-4, -0.5}, 1, VerdictOppositeSig},
		{0, Interval{-1, 1}, 1, VerdictNoDifference},
		{-2, Interval{-4, -0.5}, -1, VerdictReproduced},
		{2, Interval{0.5, 4}, -1, VerdictOppositeSig},
		{2, Interval{0.5, 4}, 0, VerdictHigher},
		{-2, Interval{-4, -0.5}, 0, VerdictLower},
		{2, Interval{-0.5, 4}, 0, VerdictNotSignificant},
		{2, Interval{0, 4}, 1, VerdictInDirection}, // an interval touching 0 does not exclude it
	} {
		if got := VerdictOf(c.diff, c.ci, c.expect); got != c.want {
			t.Errorf("VerdictOf(%g, %v, %d) = %q, want %q", c.diff, c.ci, c.expect, got, c.want)
		}
	}
}
