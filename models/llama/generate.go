package llama

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// Sampler picks the next token from logits: greedy when Temperature is 0, else temperature + nucleus (top-p)
// sampling with a seeded generator, so a run is reproducible.
type Sampler struct {
	Temperature float64
	TopP        float64 // 0 or ≥ 1: no nucleus truncation
	rng         *rand.Rand
}

// NewSampler makes a sampler; seed makes temperature sampling reproducible.
func NewSampler(temperature, topP float64, seed uint64) *Sampler {
	return &Sampler{Temperature: temperature, TopP: topP, rng: rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))}
}

// Sample returns the next token id.
func (s *Sampler) Sample(logits []float32) int {
	if s == nil || s.Temperature <= 0 {
		return Argmax(logits)
	}
	probs := make([]float64, len(logits))
	maxL := math.Inf(-1)
	for _, l := range logits {
		maxL = math.Max(maxL, float64(l))
	}
	sum := 0.0
	for i, l := range logits {
		probs[i] = math.Exp((float64(l) - maxL) / s.Temperature)
		sum += probs[i]
	}
	idx := make([]int, len(probs))
	for i := range idx {
		idx[i] = i
		probs[i] /= sum
	}
	if s.TopP > 0 && s.TopP < 1 {
		sort.SliceStable(idx, func(a, b int) bool { return probs[idx[a]] > probs[idx[b]] })
		cum, cut := 0.0, len(idx)
		for k, i := range idx {
			cum += probs[i]
			if cum > s.TopP {
				cut = k + 1
				break
			}
		}
		idx = idx[:cut]
		sum = cum
		if cut == len(probs) {
			sum = 1
		}
	}
	r := s.rng.Float64() * sum
	for _, i := range idx {
		r -= probs[i]
		if r <= 0 {
			return i
		}
	}
	return idx[len(idx)-1]
}

// Argmax returns the index of the largest value (the first one on ties, as llama2.c does).
func Argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

// Generator runs incremental decoding for a batch of prompts.
type Generator struct {
	m       *Model
	backend compute.Backend
	// MaxLen is the cache length: prompt plus generated tokens must fit.
	MaxLen int
	// UseCache selects KV-cache decoding (one token per step); without it every step reruns the whole (padded)
	// sequence, which is the reference the cache is checked against.
	UseCache bool
	// Extension, if set, is called while building each graph to get the attention extension (the adapter) and may
	// read Extra, the extra per-call inputs given to Generate.
	Extension func(g *Graph, extra []*Node) AttentionExtension

	step *model.Exec
}

// NewGenerator prepares a generator; graphs are compiled on first use (one per distinct input shape).
func (m *Model) NewGenerator(backend compute.Backend, maxLen int, useCache bool) *Generator {
	if maxLen <= 0 || maxLen > m.Config.MaxSeqLen {
		maxLen = m.Config.MaxSeqLen
	}
	return &Generator{m: m, backend: backend, MaxLen: maxLen, UseCache: useCache}
}

// graphFn inputs: tokens [B,S], positions [B,S], keyMask [B,T], pos (scalar) [, 2N cache tensors] [, extra...].
// Outputs: logits of the last position of each row [B, V] (cache mode: the last of the S new tokens; no-cache
// mode: at index pos), then the updated cache.
func (gen *Generator) graphFn(numExtra int) func(scope *model.Scope, inputs []*Node) []*Node {
	m := gen.m
	return func(scope *model.Scope, inputs []*Node) []*Node {
		g := inputs[0].Graph()
		tokens, positions, keyMask, pos := inputs[0], inputs[1], inputs[2], inputs[3]
		rest := inputs[4:]
		in := Inputs{Tokens: tokens, Positions: positions, KeyMask: keyMask}
		if gen.UseCache {
			in.Cache = CacheFromNodes(rest[:2*m.Config.NumLayers], pos)
			rest = rest[2*m.Config.NumLayers:]
		}
		if gen.Extension != nil {
			in.Extension = gen.Extension(g, rest[:numExtra])
		}
		in.SkipLogits = true
		out := m.Forward(g, in)
		B, S := tokens.Shape().Dimensions[0], tokens.Shape().Dimensions[1]
		var last *Node
		if gen.UseCache {
			last = Slice(out.Final, AxisRange(), AxisRange(S-1, S), AxisRange())
		} else {
			// Gather row b's state at index pos (the pure-Go backend has no DynamicSlice).
			idx := Concatenate([]*Node{Iota(g, shapes.Make(dtypes.Int32, B, 1), 0),
				BroadcastToDims(Reshape(ConvertDType(pos, dtypes.Int32), 1, 1), B, 1)}, 1)
			last = Gather(out.Final, idx)
		}
		logits := m.LogitsFromFinal(Reshape(last, B, m.Config.Dim))
		outs := []*Node{logits}
		if gen.UseCache {
			outs = append(outs, out.Cache.Nodes()...)
		}
		return outs
	}
}

// Step is called after each generated token with the row, the previous token and the new one; returning false
// stops that row.
type Step func(row, prev, next int) bool

// Generate continues each prompt (token ids, usually starting with BOS) greedily or with the sampler for up to
// maxNew tokens per row, or until onToken returns false for that row. (llama2.c's "steps" count the prompt too:
// maxNew = steps − len(prompt) + 1: its last forward pass is at position steps−1.) Prompts of different lengths are left-padded. It returns the generated ids per row
// (prompt excluded; a token refused by onToken is not included).
func (gen *Generator) Generate(prompts [][]int, maxNew int, sampler *Sampler, onToken Step, extra ...*tensors.Tensor) ([][]int, error) {
	m := gen.m
	B := len(prompts)
	if B == 0 {
		return nil, nil
	}
	P := 0
	for i, p := range prompts {
		if len(p) == 0 {
			return nil, fmt.Errorf("generate: prompt %d is empty (start it with BOS)", i)
		}
		for _, id := range p {
			if id < 0 || id >= m.Config.VocabSize {
				return nil, fmt.Errorf("generate: prompt %d has token %d outside the vocabulary (%d)", i, id, m.Config.VocabSize)
			}
		}
		P = max(P, len(p))
	}
	// The longest prompt ends at index P-1; generated token k (0-based) sits at index P+k, and the last one is never
	// fed back, so the cache needs P+maxNew-1 positions.
	need := P + maxNew - 1
	if need > gen.MaxLen {
		return nil, fmt.Errorf("generate: prompt of %d tokens and %d new tokens need %d positions, more than the maximum %d",
			P, maxNew, need, gen.MaxLen)
	}
	T := gen.MaxLen
	if gen.step == nil {
		exec, err := model.NewExec(gen.backend, m.Store, gen.graphFn(len(extra)))
		if err != nil {
			return nil, err
		}
		gen.step = exec
	}
	// Left padding: row b's token j sits at index pad[b]+j; its rotary position is j.
	pad := make([]int, B)
	tokens := make([]int32, B*T)
	keyMask := make([]bool, B*T)
	for b, p := range prompts {
		pad[b] = P - len(p)
		for j, id := range p {
			tokens[b*T+pad[b]+j] = int32(id)
			keyMask[b*T+pad[b]+j] = true
		}
	}
	out := make([][]int, B)
	done := make([]bool, B)
	cur := make([]int, B) // last token of each row
	for b, p := range prompts {
		cur[b] = p[len(p)-1]
	}
	var cache []*tensors.Tensor
	if gen.UseCache {
		cache = m.NewCacheTensors(B, T)
	}
	call := func(start, n int) ([]float32, error) {
		// Run positions [start, start+n) of the padded sequence; returns logits [B, V] of index start+n-1.
		tok := make([]int32, B*n)
		posIDs := make([]int32, B*n)
		for b := 0; b < B; b++ {
			for j := 0; j < n; j++ {
				tok[b*n+j] = tokens[b*T+start+j]
				posIDs[b*n+j] = int32(max(0, start+j-pad[b]))
			}
		}
		mask := tensors.FromFlatDataAndDimensions(append([]bool(nil), keyMask...), B, T)
		var args []any
		if gen.UseCache {
			args = []any{tensors.FromFlatDataAndDimensions(tok, B, n), tensors.FromFlatDataAndDimensions(posIDs, B, n), mask,
				tensors.FromScalar(int32(start))}
			// The cache is dead once passed in (the step returns its successor), so its device buffers are donated:
			// the step can reuse them instead of holding two caches at once.
			for _, c := range cache {
				d, err := DonateTensorBuffer(c, gen.backend, 0)
				if err != nil {
					return nil, fmt.Errorf("generate: donating the KV cache: %w", err)
				}
				args = append(args, d)
			}
		} else {
			// Whole padded sequence every time; logits are read at index start+n-1.
			allPos := make([]int32, B*T)
			for b := 0; b < B; b++ {
				for j := 0; j < T; j++ {
					allPos[b*T+j] = int32(max(0, j-pad[b]))
				}
			}
			args = []any{tensors.FromFlatDataAndDimensions(append([]int32(nil), tokens...), B, T),
				tensors.FromFlatDataAndDimensions(allPos, B, T), mask, tensors.FromScalar(int32(start + n - 1))}
		}
		for _, e := range extra {
			args = append(args, e)
		}
		outs, err := gen.step.Exec(args...)
		if err != nil {
			return nil, err
		}
		if gen.UseCache {
			cache = outs[1:]
		}
		return tensors.CopyFlatData[float32](outs[0])
	}
	// Prefill all but the last prompt token of the longest row together, then one token per step.
	pos := P - 1
	if gen.UseCache && P > 1 {
		if _, err := call(0, P-1); err != nil {
			return nil, err
		}
	}
	V := m.Config.VocabSize
	for ; maxNew > 0; pos++ {
		var logits []float32
		var err error
		if gen.UseCache {
			logits, err = call(pos, 1)
		} else {
			logits, err = call(0, pos+1)
		}
		if err != nil {
			return nil, err
		}
		alive := false
		for b := 0; b < B; b++ {
			if done[b] {
				continue
			}
			next := sampler.Sample(logits[b*V : (b+1)*V])
			if onToken != nil && !onToken(b, cur[b], next) {
				done[b] = true
				continue
			}
			out[b] = append(out[b], next)
			cur[b] = next
			if len(out[b]) >= maxNew {
				done[b] = true
				continue
			}
			alive = true
		}
		if !alive {
			break
		}
		for b := 0; b < B; b++ {
			tokens[b*T+pos+1] = int32(cur[b])
			keyMask[b*T+pos+1] = true
		}
	}
	return out, nil
}
