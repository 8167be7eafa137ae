package results

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
)

// The statistics every measured claim is stated with, implemented once here.
//
// An accuracy is a proportion of problems answered right. Its 95 % interval is the Wilson score interval for one
// evaluation (one seed), and the stratified bootstrap below for an accuracy pooled over seeds.
//
// A difference between two settings A and B (zero- vs random-init, L=30 vs L=10, a trained run vs the pretrained
// model) is paired: both answered the same problems, seed by seed. Its unit is the problem; the seeds are strata.
// The difference is the mean over every (seed, problem) pair of correct_A − correct_B, in percentage points; with
// the same problems in every seed that is the mean over seeds of the accuracy difference.
//
// Its interval is a percentile bootstrap: each resample draws the problems with replacement and keeps every seed.
// When all seeds answered the same problems (every sweep), one draw of problems is applied to every seed, so a
// problem that is hard for every seed stays one problem and the interval is not narrowed by counting it once per
// seed; otherwise problems are drawn within each seed's stratum independently. The generator is seeded, so the
// interval is the same on every run of the same data.
//
// Its exact test is a two-sided sign test over problems: each problem's paired difference summed over seeds is
// positive (A better on it), negative or zero; under the null hypothesis (no difference) a problem with a nonzero
// sum is positive with probability ½, so p = min(1, 2·P[Bin(n₊+n₋, ½) ≤ min(n₊, n₋)]). With one seed a problem's
// difference is +1 (only A right), −1 (only B right) or 0, and the test is exactly the exact McNemar test on the
// discordant counts. Several seeds are not summed as independent discordant pairs (they share their problems);
// the problem stays the unit, and the discordant counts summed over seeds are reported beside it for reading only.

// Z95 is the standard normal quantile of a two-sided 95 % interval.
const Z95 = 1.959963984540054

// DefaultResamples and DefaultBootstrapSeed are the bootstrap's defaults (Bootstrap.Resamples and Seed when 0).
const (
	DefaultResamples     = 10000
	DefaultBootstrapSeed = 27
)

// Interval is a two-sided confidence interval in the unit of its estimate.
type Interval struct {
	Lo float64 `json:"lo"`
	Hi float64 `json:"hi"`
}

// Excludes reports whether x lies outside the interval.
func (iv Interval) Excludes(x float64) bool { return x < iv.Lo || x > iv.Hi }

// Wilson returns the Wilson score interval of k successes in n trials with normal quantile z (Z95 for 95 %), as
// proportions in [0, 1]: (p̂ + z²/2n ± z·√(p̂(1−p̂)/n + z²/4n²)) / (1 + z²/n).
func Wilson(k, n int, z float64) (Interval, error) {
	if n <= 0 || k < 0 || k > n {
		return Interval{}, fmt.Errorf("results: Wilson interval of %d successes in %d trials", k, n)
	}
	fn := float64(n)
	p := float64(k) / fn
	z2 := z * z
	center := (p + z2/(2*fn)) / (1 + z2/fn)
	half := z / (1 + z2/fn) * math.Sqrt(p*(1-p)/fn+z2/(4*fn*fn))
	return Interval{Lo: max(0, center-half), Hi: min(1, center+half)}, nil
}

// BinomialTwoSided is the exact two-sided p-value of k successes in n trials with success probability ½ (the sign
// test and the exact McNemar test): min(1, 2·P[X ≤ min(k, n−k)]), X ~ Bin(n, ½). n = 0 gives 1.
func BinomialTwoSided(k, n int) float64 {
	if n <= 0 {
		return 1
	}
	m := min(k, n-k)
	// Σ_{i≤m} C(n,i)/2ⁿ in log space: n may be thousands (problems × seeds).
	logHalfN := float64(n) * math.Log(0.5)
	sum := 0.0
	for i := 0; i <= m; i++ {
		sum += math.Exp(logChoose(n, i) + logHalfN)
	}
	return min(1, 2*sum)
}

func logChoose(n, k int) float64 {
	a, _ := math.Lgamma(float64(n + 1))
	b, _ := math.Lgamma(float64(k + 1))
	c, _ := math.Lgamma(float64(n - k + 1))
	return a - b - c
}

// Stratum is one seed's paired outcomes: for each problem (PIDs, sorted), whether A and B answered it right.
type Stratum struct {
	Name string   `json:"name"`
	PIDs []string `json:"pids"`
	A    []bool   `json:"a"`
	B    []bool   `json:"b"`
}

// NewStratum pairs two runs' per-problem correctness (pid → correct); both must cover the same problems.
func NewStratum(name string, a, b map[string]bool) (Stratum, error) {
	s := Stratum{Name: name}
	for pid := range a {
		if _, ok := b[pid]; !ok {
			return s, fmt.Errorf("results: stratum %s: problem %s answered by A but not by B", name, pid)
		}
		s.PIDs = append(s.PIDs, pid)
	}
	if len(b) != len(a) {
		for pid := range b {
			if _, ok := a[pid]; !ok {
				return s, fmt.Errorf("results: stratum %s: problem %s answered by B but not by A", name, pid)
			}
		}
	}
	if len(s.PIDs) == 0 {
		return s, fmt.Errorf("results: stratum %s: no problems", name)
	}
	sort.Strings(s.PIDs)
	for _, pid := range s.PIDs {
		s.A, s.B = append(s.A, a[pid]), append(s.B, b[pid])
	}
	return s, nil
}

// Bootstrap sets the paired bootstrap: Resamples (DefaultResamples when 0) and the generator's Seed
// (DefaultBootstrapSeed when 0).
type Bootstrap struct {
	Resamples int
	Seed      uint64
}

func (b Bootstrap) resamples() int {
	if b.Resamples <= 0 {
		return DefaultResamples
	}
	return b.Resamples
}

func (b Bootstrap) rng() *rand.Rand {
	seed := b.Seed
	if seed == 0 {
		seed = DefaultBootstrapSeed
	}
	// PCG's output for a seed is fixed, and indices are taken by modulo (not IntN), so the interval does not
	// depend on how a Go release draws bounded integers.
	return rand.New(rand.NewPCG(seed, 0x5eed))
}

// Paired is a paired difference A − B with its interval and exact test.
type Paired struct {
	// Diff is the mean of correct_A − correct_B over every (seed, problem) pair, in percentage points.
	Diff float64 `json:"diff"`
	// CI is the bootstrap percentile interval of Diff at 95 %, in points.
	CI Interval `json:"ci95"`
	// P is the exact two-sided sign test over problems (with one seed: the exact McNemar test).
	P float64 `json:"p"`
	// Plus and Minus count the problems whose difference summed over seeds is positive (A better) and negative.
	Plus  int `json:"problems_a_better"`
	Minus int `json:"problems_b_better"`
	// OnlyA and OnlyB are the discordant pairs summed over seeds: A right and B wrong, and the reverse.
	OnlyA int `json:"only_a_right"`
	OnlyB int `json:"only_b_right"`
	// Pairs is the number of (seed, problem) pairs, Problems the number of distinct problems, Seeds the strata.
	Pairs    int `json:"pairs"`
	Problems int `json:"problems"`
	Seeds    int `json:"seeds"`
	// Clustered says the bootstrap drew one set of problems for every seed (all seeds answered the same problems).
	Clustered bool `json:"clustered"`
}

// samePIDs reports whether every stratum lists the same problems.
func samePIDs(strata []Stratum) bool {
	for _, s := range strata[1:] {
		if len(s.PIDs) != len(strata[0].PIDs) {
			return false
		}
		for i, pid := range s.PIDs {
			if pid != strata[0].PIDs[i] {
				return false
			}
		}
	}
	return true
}

func checkStrata(strata []Stratum) error {
	if len(strata) == 0 {
		return errors.New("results: paired difference of no strata")
	}
	for _, s := range strata {
		if len(s.PIDs) == 0 || len(s.A) != len(s.PIDs) || len(s.B) != len(s.PIDs) {
			return fmt.Errorf("results: stratum %s: %d problems, %d A and %d B outcomes", s.Name, len(s.PIDs), len(s.A), len(s.B))
		}
	}
	return nil
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// bootstrapMean is the 95 % percentile interval of the mean of values (one slice per stratum, in points) over
// resamples of each stratum's entries; clustered draws one set of indices for every stratum (same length).
func bootstrapMean(values [][]float64, clustered bool, bs Bootstrap) Interval {
	r := bs.rng()
	n := bs.resamples()
	total := 0
	for _, v := range values {
		total += len(v)
	}
	stats := make([]float64, n)
	var idx []int
	if clustered {
		idx = make([]int, len(values[0]))
	}
	for i := range stats {
		sum := 0.0
		if clustered {
			m := uint64(len(idx))
			for j := range idx {
				idx[j] = int(r.Uint64() % m)
			}
			for _, v := range values {
				for _, j := range idx {
					sum += v[j]
				}
			}
		} else {
			for _, v := range values {
				m := uint64(len(v))
				for range v {
					sum += v[r.Uint64()%m]
				}
			}
		}
		stats[i] = sum / float64(total)
	}
	sort.Float64s(stats)
	return Interval{Lo: quantile(stats, 0.025), Hi: quantile(stats, 0.975)}
}

// quantile is the q-quantile of sorted xs by linear interpolation between order statistics (R's type 7, numpy's
// default).
func quantile(xs []float64, q float64) float64 {
	h := q * float64(len(xs)-1)
	lo := math.Floor(h)
	i := int(lo)
	if i+1 >= len(xs) {
		return xs[len(xs)-1]
	}
	return xs[i] + (h-lo)*(xs[i+1]-xs[i])
}

// PairedDifference computes A − B over the strata (one per seed): the difference in points, its bootstrap
// interval and the exact sign test over problems (see the package's statistics notes above).
func PairedDifference(strata []Stratum, bs Bootstrap) (Paired, error) {
	if err := checkStrata(strata); err != nil {
		return Paired{}, err
	}
	res := Paired{Seeds: len(strata), Clustered: samePIDs(strata)}
	values := make([][]float64, len(strata))
	byProblem := map[string]int{}
	sum := 0.0
	for i, s := range strata {
		values[i] = make([]float64, len(s.PIDs))
		for j, pid := range s.PIDs {
			d := b2f(s.A[j]) - b2f(s.B[j])
			values[i][j] = 100 * d
			sum += d
			byProblem[pid] += int(d)
			switch {
			case d > 0:
				res.OnlyA++
			case d < 0:
				res.OnlyB++
			}
		}
		res.Pairs += len(s.PIDs)
	}
	res.Problems = len(byProblem)
	for _, d := range byProblem {
		switch {
		case d > 0:
			res.Plus++
		case d < 0:
			res.Minus++
		}
	}
	res.Diff = 100 * sum / float64(res.Pairs)
	res.CI = bootstrapMean(values, res.Clustered, bs)
	res.P = BinomialTwoSided(res.Plus, res.Plus+res.Minus)
	return res, nil
}

// Accuracy is an accuracy with its 95 % interval, in percent.
type Accuracy struct {
	Percent float64  `json:"percent"`
	CI      Interval `json:"ci95"`
	Correct int      `json:"correct"`
	Total   int      `json:"total"`
	// Method is "wilson" (one evaluation) or "bootstrap" (pooled over seeds, problems resampled as in
	// PairedDifference).
	Method string `json:"method"`
}

// AccuracyOf is the accuracy of per-problem outcomes pooled over seeds (one map pid → correct per seed): with one
// seed its Wilson interval, with several the bootstrap interval of the pooled mean (problems drawn once for every
// seed when they answered the same problems, so the seeds are not counted as independent problems).
func AccuracyOf(seeds []map[string]bool, bs Bootstrap) (Accuracy, error) {
	if len(seeds) == 0 {
		return Accuracy{}, errors.New("results: accuracy of no runs")
	}
	strata := make([]Stratum, len(seeds))
	var a Accuracy
	for i, m := range seeds {
		none := make(map[string]bool, len(m))
		for pid := range m {
			none[pid] = false
		}
		s, err := NewStratum(fmt.Sprint(i), m, none)
		if err != nil {
			return Accuracy{}, err
		}
		strata[i] = s
		for _, ok := range s.A {
			if ok {
				a.Correct++
			}
		}
		a.Total += len(s.A)
	}
	a.Percent = 100 * float64(a.Correct) / float64(a.Total)
	if len(seeds) == 1 {
		iv, err := Wilson(a.Correct, a.Total, Z95)
		if err != nil {
			return Accuracy{}, err
		}
		a.CI, a.Method = Interval{Lo: 100 * iv.Lo, Hi: 100 * iv.Hi}, "wilson"
		return a, nil
	}
	values := make([][]float64, len(strata))
	for i, s := range strata {
		values[i] = make([]float64, len(s.A))
		for j, ok := range s.A {
			values[i][j] = 100 * b2f(ok)
		}
	}
	a.CI, a.Method = bootstrapMean(values, samePIDs(strata), bs), "bootstrap"
	return a, nil
}

// Verdict words: what an interval says about a claim that A − B is positive (a paper's direction) or, with no
// claimed direction, about which is higher.
const (
	VerdictReproduced     = "reproduced in direction (interval excludes 0)"
	VerdictInDirection    = "in direction, not significant"
	VerdictOpposite       = "opposite, not significant"
	VerdictOppositeSig    = "opposite (interval excludes 0)"
	VerdictNoDifference   = "no difference (interval includes 0)"
	VerdictHigher         = "higher (interval excludes 0)"
	VerdictLower          = "lower (interval excludes 0)"
	VerdictNotSignificant = "no significant difference (interval includes 0)"
)

// VerdictOf derives the verdict from the difference A − B and its interval. expect is the claimed sign of A − B:
// +1 or −1 (the paper says A is better, or worse), 0 (no claim).
//
// With a claim: the interval entirely on the claimed side is VerdictReproduced; a difference on the claimed side
// whose interval reaches 0 is VerdictInDirection; the interval entirely on the other side is VerdictOppositeSig;
// a difference on the other side whose interval reaches 0 is VerdictOpposite; a difference of exactly 0 is
// VerdictNoDifference. Without a claim: VerdictHigher, VerdictLower or VerdictNotSignificant.
func VerdictOf(diff float64, ci Interval, expect int) string {
	excl := ci.Excludes(0)
	if expect == 0 {
		switch {
		case excl && ci.Lo > 0:
			return VerdictHigher
		case excl && ci.Hi < 0:
			return VerdictLower
		}
		return VerdictNotSignificant
	}
	s := float64(expect)
	switch {
	case excl && s*ci.Lo > 0 && s*ci.Hi > 0:
		return VerdictReproduced
	case excl:
		return VerdictOppositeSig
	case s*diff > 0:
		return VerdictInDirection
	case s*diff < 0:
		return VerdictOpposite
	}
	return VerdictNoDifference
}

// Sentence states a paired difference for a report: "<what>: +2.88 points, 95 % CI [0.11, 5.64], exact p = 0.052
// (96 vs 70 problems): <verdict>."
func (p Paired) Sentence(what string, expect int) string {
	seeds := ""
	if p.Seeds > 1 {
		seeds = fmt.Sprintf(", %d seeds", p.Seeds)
	}
	return fmt.Sprintf("%s: %+.2f points, 95 %% CI [%.2f, %.2f], exact p %s (%d vs %d problems better%s): %s.",
		what, p.Diff, p.CI.Lo, p.CI.Hi, FormatP(p.P), p.Plus, p.Minus, seeds, VerdictOf(p.Diff, p.CI, expect))
}

// FormatP prints a p-value as a relation: "= 0.052" (three decimals), or "< 0.001" below that.
func FormatP(p float64) string {
	if p < 0.001 {
		return "< 0.001"
	}
	return fmt.Sprintf("= %.3f", p)
}
