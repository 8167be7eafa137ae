package evaluate

import (
	"context"
	"strings"
	"testing"
)

// TestGenerationProfile: the generation protocol's profile counts its step graphs' compiles and executions like the
// scoring protocols'. Each batch runs a prefill (its prompts are longer than one token) and up to MaxNew one-token
// steps; its two shapes compile once. Run again on the same runner, it reuses every executable: no compile, the
// same executions (greedy decoding repeats itself).
func TestGenerationProfile(t *testing.T) {
	env := storiesEnv(t, 6) // batches of 4 and 2
	const batches = 2
	ps, err := ParseList("generate")
	if err != nil {
		t.Fatal(err)
	}
	var first []*Result
	for round := 0; round < 2; round++ {
		res, err := Run(context.Background(), env, ps, &strings.Builder{})
		if err != nil {
			t.Fatal(err)
		}
		p := res[0].Profile
		if p.Phase != "generate" || p.ExecuteSeconds <= 0 || p.Executions < 2*batches || p.Executions > batches*(1+env.MaxNew) ||
			p.CompileSeconds+p.ExecuteSeconds > p.WallSeconds+0.01 || (p.Compiles > 0) != (p.CompileSeconds > 0) {
			t.Errorf("round %d: profile %+v: want %d..%d executions, compile+execute within the wall time", round, p, 2*batches, batches*(1+env.MaxNew))
		}
		if round == 0 {
			if p.Compiles < 2 || p.Compiles > 2*batches {
				t.Errorf("first round: %d compiles, want 2..%d (a prefill and a step shape per batch, some shared)", p.Compiles, 2*batches)
			}
			first = res
			continue
		}
		if p.Compiles != 0 || p.Executions != first[0].Profile.Executions {
			t.Errorf("second round: %d compiles and %d executions, want 0 and the first round's %d", p.Compiles, p.Executions, first[0].Profile.Executions)
		}
		for pid, text := range first[0].Texts {
			if res[0].Texts[pid] != text {
				t.Errorf("pid %s: generated %q, then %q", pid, text, res[0].Texts[pid])
			}
		}
	}
}
