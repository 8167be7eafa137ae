package pipeline

import (
	"math"
	"strings"
	"testing"

	"github.com/adapterlab/llama-adapter/results"
)

// TestCounterfactualStats: ten problems whose answer is option 0. True images answer 7 right; the shuffled ones 4
// (the true image alone right on 4 problems, the shuffled alone on 1); zeros the same answers as the true images.
// Accuracies, discordant counts, differences, McNemar p (exact: 2·P(X ≤ 1), X ~ Bin(5, ½) = 12/32) and the
// Wilson interval (from its formula) are checked by hand.
func TestCounterfactualStats(t *testing.T) {
	var pids []string
	answers := map[string]int{}
	choices := map[string]map[string]int{ImageTrue: {}, ImageShuffled: {}, ImageZero: {}}
	trueRight := []bool{true, true, true, true, true, true, true, false, false, false}
	shufRight := []bool{true, true, false, false, false, false, true, true, false, false}
	for i := range 10 {
		pid := string(rune('a' + i))
		pids = append(pids, pid)
		answers[pid] = 0
		pick := func(right bool) int {
			if right {
				return 0
			}
			return 1 + i%2 // wrong answers differ among themselves: a changed choice need not change correctness
		}
		choices[ImageTrue][pid] = pick(trueRight[i])
		choices[ImageShuffled][pid] = pick(shufRight[i])
		choices[ImageZero][pid] = choices[ImageTrue][pid]
	}
	choices[ImageShuffled]["i"] = 2 // wrong either way, but a different wrong option: changed, same correctness
	cp, err := CounterfactualStats("letter", pids, answers, choices, results.Bootstrap{Resamples: 2000})
	if err != nil {
		t.Fatal(err)
	}
	if a := cp.Accuracy[ImageTrue]; a.Correct != 7 || a.Total != 10 || a.Percent != 70 {
		t.Errorf("true accuracy %+v", a)
	}
	if a := cp.Accuracy[ImageShuffled]; a.Correct != 4 || a.Percent != 40 {
		t.Errorf("shuffled accuracy %+v", a)
	}
	// Wilson for 7/10: (p + z²/2n ± z·sqrt(p(1−p)/n + z²/4n²)) / (1 + z²/n).
	z, n, p := results.Z95, 10.0, 0.7
	c, h := p+z*z/(2*n), z*math.Sqrt(p*(1-p)/n+z*z/(4*n*n))
	lo, hi := 100*(c-h)/(1+z*z/n), 100*(c+h)/(1+z*z/n)
	if a := cp.Accuracy[ImageTrue]; math.Abs(a.CI.Lo-lo) > 1e-9 || math.Abs(a.CI.Hi-hi) > 1e-9 {
		t.Errorf("true Wilson interval [%g, %g], want [%g, %g]", a.CI.Lo, a.CI.Hi, lo, hi)
	}
	d := cp.TrueMinusShuffled
	if d.Diff != 30 || d.OnlyA != 4 || d.OnlyB != 1 || math.Abs(d.P-12.0/32) > 1e-12 {
		t.Errorf("true − shuffled %+v, want +30 points, 4 vs 1, p 0.375", d)
	}
	if d.CI.Excludes(0) || d.CI.Lo >= 30 || d.CI.Hi <= 30 {
		t.Errorf("true − shuffled interval %+v: 5 discordant problems of 10 cannot exclude 0", d.CI)
	}
	if z := cp.TrueMinusZero; z.Diff != 0 || z.OnlyA+z.OnlyB != 0 || z.P != 1 {
		t.Errorf("true − zero %+v, want 0", z)
	}
	// Problems whose choice moved: the five discordant ones, and i (another wrong option).
	if cp.Changed[ImageShuffled] != 6 || cp.Changed[ImageZero] != 0 {
		t.Errorf("changed %v, want shuffled 6, zero 0", cp.Changed)
	}
	if !strings.HasPrefix(cp.Reading, "true ≈ shuffled (interval includes 0): the adapter ignores the image") ||
		!strings.Contains(cp.Reading, "true = zero (no answer changed)") {
		t.Errorf("reading %q", cp.Reading)
	}

	delete(choices[ImageZero], "c")
	if _, err := CounterfactualStats("letter", pids, answers, choices, results.Bootstrap{}); err == nil {
		t.Error("a missing choice was accepted")
	}
}

func TestImageReading(t *testing.T) {
	iv := func(lo, hi float64) results.Paired { return results.Paired{CI: results.Interval{Lo: lo, Hi: hi}} }
	some := map[string]int{ImageShuffled: 3, ImageZero: 3}
	for _, c := range []struct {
		shuf, zero results.Paired
		changed    map[string]int
		want       []string
	}{
		{iv(1, 5), iv(-3, 2), some, []string{"true > shuffled (interval excludes 0): the adapter uses the image", "true ≈ zero"}},
		{iv(-5, -1), iv(2, 4), some, []string{"true < shuffled", "misleads", "true > zero (interval excludes 0)"}},
		{iv(-1, 2), iv(-4, -2), some, []string{"true ≈ shuffled", "ignores the image", "true < zero"}},
		{iv(0, 0), iv(0, 0), map[string]int{}, []string{"true = shuffled (no answer changed)", "true = zero"}},
	} {
		got := imageReading(c.shuf, c.zero, c.changed)
		for _, w := range c.want {
			if !strings.Contains(got, w) {
				t.Errorf("reading %q lacks %q", got, w)
			}
		}
	}
}
