package clip

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/adapterlab/llama-adapter/datasets/assets"
	"github.com/adapterlab/llama-adapter/models/device"
)

// Question families of ScienceQA test problems, by the question text (problems_test.json): map questions (a
// highlighted country/state/continent/ocean, a colony, "which state is farthest north", a capital, a marked city),
// magnet pairs, and particle diagrams.
var questionKinds = []struct {
	name string
	re   *regexp.Regexp
}{
	{"map", regexp.MustCompile(`(country|continent|ocean|state) is highlighted|colony shown|states is farthest|capital of|marked on the map`)},
	{"magnets", regexp.MustCompile(`magnet`)},
	{"particles", regexp.MustCompile(`particles`)},
}

// TestDINOv2Neighbours is a sanity check one can read: nearest neighbours by cosine of the last layer's class token
// among the ScienceQA test images. For each question family, it measures how often the 3 nearest images of a
// query of that family belong to it too (precision@3), against the family's share of the other images (what
// chance gives), and requires map questions to find map questions at least twice as often as chance.
//
// All 2,017 images are used when $DINOV2_FEATURE_CACHE names a cache root holding their features (the `features`
// command's -cache, e.g. /tmp/dinov2-cache; reads take about a second); otherwise the first 300 by pid are
// computed (about 50 s on 2 busy CPU cores; 120 under -short).
func TestDINOv2Neighbours(t *testing.T) {
	probPath := assets.Require(t, assets.Path("scienceqa", "problems_test.json"))
	paths := testImages(t)
	cacheRoot := os.Getenv("DINOV2_FEATURE_CACHE")
	if cacheRoot == "" {
		device.SkipSlowOnPureGo(t, "DINOv2 features of 120-300 images")
		sort.Slice(paths, func(i, j int) bool { return pidOf(paths[i]) < pidOf(paths[j]) })
		k := 300
		if testing.Short() {
			k = 120
		}
		paths = paths[:min(k, len(paths))]
		cacheRoot = t.TempDir()
	}
	data, err := os.ReadFile(probPath)
	if err != nil {
		t.Fatal(err)
	}
	var probs map[string]struct {
		Question string `json:"question"`
	}
	if err := json.Unmarshal(data, &probs); err != nil {
		t.Fatalf("%s: %v", probPath, err)
	}
	m := loadDINOv2(t)
	enc, err := m.NewEncoder(device.MustShared(), FeatureOptions{})
	if err != nil {
		t.Fatal(err)
	}
	x, err := NewExtractor(enc, cacheRoot)
	if err != nil {
		t.Fatal(err)
	}
	srcs := make([]ImageSource, len(paths))
	for i, p := range paths {
		srcs[i] = ImageSource{Path: p}
	}
	feats, err := x.Features(srcs)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d images (%d from the cache %s, %d computed)", len(paths), x.Stats.Hits, x.Cache.Dir, x.Stats.Computed)

	// Unit-normalized CLS of layer 12 (the third feature).
	n, C := len(paths), m.Config.HiddenSize
	vecs := make([][]float64, n)
	for i, f := range feats {
		v := make([]float64, C)
		s := 0.0
		for c := range v {
			v[c] = float64(f[2*C+c])
			s += v[c] * v[c]
		}
		for c := range v {
			v[c] /= math.Sqrt(s)
		}
		vecs[i] = v
	}
	pids := make([]string, n)
	kind := make([]string, n)
	for i, p := range paths {
		pids[i] = pidOf(p)
		q, ok := probs[pids[i]]
		if !ok {
			t.Fatalf("pid %s (%s) not in %s", pids[i], p, probPath)
		}
		for _, k := range questionKinds {
			if k.re.MatchString(q.Question) {
				kind[i] = k.name
				break
			}
		}
	}
	top3 := func(i int) [3]int {
		best := [3]int{-1, -1, -1}
		sims := [3]float64{-2, -2, -2}
		for j := range vecs {
			if j == i {
				continue
			}
			s := 0.0
			for c, a := range vecs[i] {
				s += a * vecs[j][c]
			}
			if s > 1-1e-6 { // the same picture again (ScienceQA repeats images): not a neighbour worth counting
				continue
			}
			for r := 0; r < 3; r++ {
				if s > sims[r] {
					copy(sims[r+1:], sims[r:2])
					copy(best[r+1:], best[r:2])
					sims[r], best[r] = s, j
					break
				}
			}
		}
		return best
	}
	shown := map[string]int{}
	for _, k := range questionKinds {
		queries, hits, total := 0, 0, 0
		for i := range vecs {
			if kind[i] != k.name {
				continue
			}
			queries++
			nb := top3(i)
			for _, j := range nb {
				if kind[j] == k.name {
					hits++
				}
			}
			if shown[k.name] < 2 {
				shown[k.name]++
				t.Logf("%s query pid %s %q → neighbours %s %q, %s %q, %s %q", k.name, pids[i], probs[pids[i]].Question,
					pids[nb[0]], probs[pids[nb[0]]].Question, pids[nb[1]], probs[pids[nb[1]]].Question, pids[nb[2]], probs[pids[nb[2]]].Question)
			}
		}
		for j := range vecs {
			if kind[j] == k.name {
				total++
			}
		}
		if queries == 0 {
			t.Logf("%s: no query among the %d images", k.name, n)
			continue
		}
		prec := float64(hits) / float64(3*queries)
		chance := float64(total-1) / float64(n-1)
		t.Logf("%s: %d queries, precision@3 %.3f, chance %.3f (%.1f×)", k.name, queries, prec, chance, prec/chance)
		if k.name == "map" && (queries < 10 || prec < 2*chance || prec < 0.5) {
			t.Errorf("map questions' neighbours are map questions %.3f of the time, chance %.3f (%d queries): want ≥ 2× chance and ≥ 0.5",
				prec, chance, queries)
		}
	}
	qs := make([]string, n)
	for i := range qs {
		qs[i] = probs[pids[i]].Question
	}
	fq, fh := farthestStats(kind, qs, top3)
	if fq > 0 {
		t.Logf(`"Which of these states is farthest …?": %d queries, %.3f of their 3 nearest are map questions`, fq, float64(fh)/float64(3*fq))
	}
	distinct := map[string]bool{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		distinct[ImageKey(b)] = true
	}
	t.Logf("%d distinct pictures among the %d images; identical ones are never counted as neighbours", len(distinct), n)
}

// farthestStats: the brief's example, "Which of these states is farthest north?" queries, whose neighbours should
// be map questions (any kind) too.
func farthestStats(kind, questions []string, top3 func(int) [3]int) (queries, hits int) {
	for i, q := range questions {
		if !strings.Contains(q, "states is farthest") {
			continue
		}
		queries++
		for _, j := range top3(i) {
			if kind[j] == "map" {
				hits++
			}
		}
	}
	return queries, hits
}

// pidOf is the problem id of images/test/<pid>/image.png.
func pidOf(path string) string { return filepath.Base(filepath.Dir(path)) }
