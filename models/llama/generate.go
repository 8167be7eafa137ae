package llama

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"

	"github.com/adapterlab/llama-adapter/models/device"
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
	// Counter, if set, counts the step graph's compiles (one per distinct input shape: the prefill's prompt length
	// and the one-token decoding step, per batch size) and executions, as the scoring and training executors count
	// theirs, so a generation phase's profile shows them. Nil: uncounted.
	Counter *device.ExecCounter

	step *model.Exec
}

// NewGenerator prepares a generator; graphs are compiled on first use (one per distinct input shape).
func (m *Model) NewGenerator(backend compute.Backend, maxLen int, useCache bool) *Generator {
	if maxLen <= 0 || maxLen > m.Config.MaxSeqLen {
		maxLen = m.Config.MaxSeqLen
	}
	return &Generator{m: m, backend: backend, MaxLen: maxLen, UseCache: useCache}
}

// stepInputs are the step graph's inputs by name. The graph's positional inputs are their flattening (pack), in
// this order; graphFn reads them back with unpackStepInputs.
type stepInputs[T any] struct {
	Tokens    T   // [B, S] int32: the tokens run by this call
	Positions T   // [B, S] int32: their rotary positions
	KeyMask   T   // [B, MaxLen] bool: real (non-padding) key indices so far
	Pos       T   // scalar int32: cached: where the S tokens go; uncached: the index whose logits are returned
	Cache     []T // cached only: 2·N tensors K0, V0, K1, V1, ...
	Extra     []T // the caller's extra inputs (the adapter's), as given to Generate
}

// pack flattens the inputs in graph order.
func (in stepInputs[T]) pack() []T {
	return append(append([]T{in.Tokens, in.Positions, in.KeyMask, in.Pos}, in.Cache...), in.Extra...)
}

// unpackStepInputs names a step graph's positional inputs; numCache is 2·N with a cache, else 0.
func unpackStepInputs[T any](flat []T, numCache int) stepInputs[T] {
	return stepInputs[T]{Tokens: flat[0], Positions: flat[1], KeyMask: flat[2], Pos: flat[3],
		Cache: flat[4 : 4+numCache], Extra: flat[4+numCache:]}
}

// numCacheInputs is how many cache tensors the step graph takes.
func (gen *Generator) numCacheInputs() int {
	if gen.UseCache {
		return 2 * gen.m.Config.NumLayers
	}
	return 0
}

// graphFn builds the step graph. Outputs: logits [B, V] of one position per row (cached: the last of the S new
// tokens; uncached: index Pos), then, cached, the updated cache.
func (gen *Generator) graphFn() func(scope *model.Scope, inputs []*Node) []*Node {
	m := gen.m
	return func(scope *model.Scope, inputs []*Node) []*Node {
		in := unpackStepInputs(inputs, gen.numCacheInputs())
		g := in.Tokens.Graph()
		fwd := Inputs{Tokens: in.Tokens, Positions: in.Positions, KeyMask: in.KeyMask, SkipLogits: true}
		if gen.UseCache {
			fwd.Cache = CacheFromNodes(in.Cache, in.Pos)
		}
		if gen.Extension != nil {
			fwd.Extension = gen.Extension(g, in.Extra)
		}
		out := m.Forward(g, fwd)
		B, S := in.Tokens.Shape().Dimensions[0], in.Tokens.Shape().Dimensions[1]
		var last *Node
		if gen.UseCache {
			last = Slice(out.Final, AxisRange(), AxisRange(S-1, S), AxisRange())
		} else {
			// Gather row b's state at index Pos (the pure-Go backend has no DynamicSlice).
			idx := Concatenate([]*Node{Iota(g, shapes.Make(dtypes.Int32, B, 1), 0),
				BroadcastToDims(Reshape(ConvertDType(in.Pos, dtypes.Int32), 1, 1), B, 1)}, 1)
			last = Gather(out.Final, idx)
		}
		logits := m.LogitsFromFinal(Reshape(last, B, m.Config.Dim), fwd.Extension)
		if gen.UseCache {
			return append([]*Node{logits}, out.Cache.Nodes()...)
		}
		return []*Node{logits}
	}
}

// Step is called after each generated token with the row, the previous token and the new one; returning false
// stops that row.
type Step func(row, prev, next int) bool

// Generate continues each prompt (token ids, usually starting with BOS) greedily or with the sampler for up to
// maxNew tokens per row, or until onToken returns false for that row. (llama2.c's "steps" count the prompt too:
// maxNew = steps − len(prompt) + 1: its last forward pass is at position steps−1.) Prompts of different lengths are
// left-padded. It returns the generated ids per row (prompt excluded; a token refused by onToken is not included).
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
	if need := P + maxNew - 1; need > gen.MaxLen {
		return nil, fmt.Errorf("generate: prompt of %d tokens and %d new tokens need %d positions, more than the maximum %d",
			P, maxNew, need, gen.MaxLen)
	}
	if gen.step == nil {
		exec, err := model.NewExec(gen.backend, m.Store, gen.graphFn())
		if err != nil {
			return nil, fmt.Errorf("generate: %w", err)
		}
		gen.step = exec.WithName("generation step graph")
	}
	d := gen.newDecoding(prompts, P, extra)
	if err := d.prefill(); err != nil {
		return nil, err
	}
	out := make([][]int, B)
	done := make([]bool, B)
	cur := make([]int, B) // last token of each row
	for b, p := range prompts {
		cur[b] = p[len(p)-1]
	}
	V := m.Config.VocabSize
	for pos := P - 1; maxNew > 0; pos++ {
		logits, err := d.decodeStep(pos)
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
		d.append(pos+1, cur)
	}
	return out, nil
}

// decoding is one Generate call's state: the left-padded token rows [B, T] (T = MaxLen) filled as tokens are
// chosen, their key mask, and the KV cache when there is one.
type decoding struct {
	gen     *Generator
	B, T    int
	pad     []int // row b's token j sits at index pad[b]+j; its rotary position is j
	tokens  []int32
	keyMask []bool
	last    int // index of the last prompt token of the longest row
	cache   []*tensors.Tensor
	extra   []*tensors.Tensor
}

func (gen *Generator) newDecoding(prompts [][]int, P int, extra []*tensors.Tensor) *decoding {
	B, T := len(prompts), gen.MaxLen
	d := &decoding{gen: gen, B: B, T: T, pad: make([]int, B), tokens: make([]int32, B*T), keyMask: make([]bool, B*T),
		last: P - 1, extra: extra}
	for b, p := range prompts {
		d.pad[b] = P - len(p)
		for j, id := range p {
			d.tokens[b*T+d.pad[b]+j] = int32(id)
			d.keyMask[b*T+d.pad[b]+j] = true
		}
	}
	if gen.UseCache {
		d.cache = gen.m.NewCacheTensors(B, T)
	}
	return d
}

// append records the chosen tokens at index pos of every row.
func (d *decoding) append(pos int, tokens []int) {
	for b, id := range tokens {
		d.tokens[b*d.T+pos] = int32(id)
		d.keyMask[b*d.T+pos] = true
	}
}

// prefill runs, cached, all prompt indices but the last (0..P-2) at once to fill the cache; the last prompt token
// goes through the first decodeStep, which gives the first logits. Uncached there is nothing to keep.
func (d *decoding) prefill() error {
	if !d.gen.UseCache || d.last == 0 {
		return nil
	}
	_, err := d.runCached(0, d.last)
	return err
}

// decodeStep returns the logits [B·V] that predict index pos+1: cached, by feeding the one token at pos; uncached,
// by rerunning the whole padded sequence (the reference the cache is checked against).
func (d *decoding) decodeStep(pos int) ([]float32, error) {
	if d.gen.UseCache {
		return d.runCached(pos, 1)
	}
	return d.runUncached(pos)
}

// runCached feeds indices [start, start+n) of every row, writing their keys/values into the cache, and returns the
// logits of index start+n-1.
func (d *decoding) runCached(start, n int) ([]float32, error) {
	tok := make([]int32, d.B*n)
	posIDs := make([]int32, d.B*n)
	for b := 0; b < d.B; b++ {
		for j := 0; j < n; j++ {
			tok[b*n+j] = d.tokens[b*d.T+start+j]
			posIDs[b*n+j] = int32(max(0, start+j-d.pad[b]))
		}
	}
	in := stepInputs[any]{
		Tokens:    tensors.FromFlatDataAndDimensions(tok, d.B, n),
		Positions: tensors.FromFlatDataAndDimensions(posIDs, d.B, n),
		KeyMask:   d.keyMaskTensor(),
		Pos:       tensors.FromScalar(int32(start)),
	}
	// The cache is dead once passed in (the step returns its successor), so its device buffers are donated: the
	// step can reuse them instead of holding two caches at once. A donated buffer no longer tells its shape: the
	// counter is given the tensors' shapes.
	cacheShapes := make([]shapes.Shape, len(d.cache))
	for i, c := range d.cache {
		cacheShapes[i] = c.Shape()
		buf, err := DonateTensorBuffer(c, d.gen.backend, 0)
		if err != nil {
			return nil, fmt.Errorf("generate: donating the KV cache: %w", err)
		}
		in.Cache = append(in.Cache, buf)
	}
	outs, err := d.exec(in, cacheShapes)
	if err != nil {
		return nil, err
	}
	d.cache = outs[1:]
	return tensors.CopyFlatData[float32](outs[0])
}

// runUncached runs the whole padded sequence and returns the logits of index pos.
func (d *decoding) runUncached(pos int) ([]float32, error) {
	allPos := make([]int32, d.B*d.T)
	for b := 0; b < d.B; b++ {
		for j := 0; j < d.T; j++ {
			allPos[b*d.T+j] = int32(max(0, j-d.pad[b]))
		}
	}
	outs, err := d.exec(stepInputs[any]{
		Tokens:    tensors.FromFlatDataAndDimensions(append([]int32(nil), d.tokens...), d.B, d.T),
		Positions: tensors.FromFlatDataAndDimensions(allPos, d.B, d.T),
		KeyMask:   d.keyMaskTensor(),
		Pos:       tensors.FromScalar(int32(pos)),
	}, nil)
	if err != nil {
		return nil, err
	}
	return tensors.CopyFlatData[float32](outs[0])
}

func (d *decoding) keyMaskTensor() *tensors.Tensor {
	return tensors.FromFlatDataAndDimensions(append([]bool(nil), d.keyMask...), d.B, d.T)
}

// exec runs the step graph on named inputs (the caller's extra ones added), counted by the generator's Counter;
// cacheShapes are the shapes of in.Cache's donated buffers.
func (d *decoding) exec(in stepInputs[any], cacheShapes []shapes.Shape) ([]*tensors.Tensor, error) {
	for _, e := range d.extra {
		in.Extra = append(in.Extra, e)
	}
	args := in.pack()
	ss := make([]shapes.Shape, len(args))
	for i, a := range args {
		if t, ok := a.(*tensors.Tensor); ok {
			ss[i] = t.Shape()
		}
	}
	copy(ss[4:], cacheShapes) // the cache follows the four fixed inputs (pack)
	outs, err := d.gen.Counter.Count(d.gen.step, ss, func() ([]*tensors.Tensor, error) { return d.gen.step.Exec(args...) })
	if err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	return outs, nil
}
