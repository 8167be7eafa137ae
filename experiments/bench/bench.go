// Command bench measures adapter training, letter-scoring evaluation and KV-cache generation throughput for a
// LLaMA shape with random weights (no checkpoint needed) and the real adapter:
//
//	go run ./experiments/bench -preset 7b [-batch 4 -seq 512 -K 10 -L 30 -gate head-tanh -visual] [-json FILE]
//
// Training: forward + backward + AdamW on the adapter only, median step time of -steps timed steps after -warmup
// (the first step's extra time is reported as compile time). Evaluation: letter scoring (one forward pass with
// logits at the last position only). Generation: greedy decoding with the KV cache. Memory: the process's peak
// resident set, and on NVIDIA machines the peak used device memory sampled with nvidia-smi.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/adapterlab/llama-adapter/adapter"
	"github.com/adapterlab/llama-adapter/experiments/lib/evaluate"
	"github.com/adapterlab/llama-adapter/experiments/lib/train"
	"github.com/adapterlab/llama-adapter/models/atomicfile"
	"github.com/adapterlab/llama-adapter/models/device"
	"github.com/adapterlab/llama-adapter/models/llama"
	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/olekukonko/tablewriter"
	"k8s.io/klog/v2"
)

// Options are the bench settings.
type Options struct {
	Preset      string       `json:"preset"`
	Layers      int          `json:"layers,omitempty"`
	DType       device.DType `json:"dtype"`
	Batch       int          `json:"batch"`
	Seq         int          `json:"seq"`
	K           int          `json:"K"`
	L           int          `json:"L"`
	Gate        string       `json:"gate"`
	Visual      bool         `json:"visual"`
	Steps       int          `json:"steps"`
	Warmup      int          `json:"warmup"`
	EvalBatches int          `json:"eval_batches"`
	GenBatch    int          `json:"gen_batch"`
	GenPrompt   int          `json:"gen_prompt"`
	GenTokens   int          `json:"gen_tokens"`
	Only        string       `json:"only"`
	Attention   string       `json:"attention"`
	Seed        uint64       `json:"seed"`
	PeakTFLOPS  float64      `json:"peak_tflops,omitempty"`
	// Devices is the -devices value: N or "all" ("" or "1": one device). Training and letter scoring shard the
	// batch over them; generation stays on one device.
	Devices string `json:"devices,omitempty"`
	// ShardWeights splits the frozen base matrices over the devices instead of replicating them.
	ShardWeights bool `json:"shard_weights,omitempty"`
	// AnswerHead and Remat set the trainer's options of those names (train.Config).
	AnswerHead bool `json:"answer_head,omitempty"`
	Remat      bool `json:"remat,omitempty"`
}

// Result is what one bench run measured.
type Result struct {
	Options        Options `json:"options"`
	Backend        string  `json:"backend"`
	BackendName    string  `json:"backend_name"`
	Params         int64   `json:"base_params"`
	AdapterParams  int     `json:"adapter_params"`
	TrainStepSec   float64 `json:"train_step_seconds,omitempty"`
	TrainTokensSec float64 `json:"train_tokens_per_second,omitempty"`
	TrainCompile   float64 `json:"train_compile_seconds,omitempty"`
	TrainFLOPsTok  float64 `json:"train_flops_per_token,omitempty"`
	TrainTFLOPS    float64 `json:"train_tflops,omitempty"`
	PeakFraction   float64 `json:"fraction_of_peak,omitempty"`
	Device         string  `json:"device,omitempty"`
	FusedAttention bool    `json:"fused_attention"`
	EvalExamplesS  float64 `json:"eval_examples_per_second,omitempty"`
	EvalCompile    float64 `json:"eval_compile_seconds,omitempty"`
	GenTokensSec   float64 `json:"gen_tokens_per_second,omitempty"`
	GenCompile     float64 `json:"gen_compile_seconds,omitempty"`
	PeakRSSGiB     float64 `json:"peak_host_rss_gib"`
	PeakDeviceGiB  float64 `json:"peak_device_gib,omitempty"`
	LoadSeconds    float64 `json:"weights_seconds"`
	// NumDevices is the number of devices the training and scoring graphs ran on; SplitWeights how many frozen
	// matrices were split across them.
	NumDevices   int `json:"num_devices"`
	SplitWeights int `json:"split_weights,omitempty"`
	// XLAMem is XLA's compiled memory statistics (per device, from -xla-memstats) of the compiled graph with the
	// largest footprint (arguments + outputs − aliased + temporaries), usually the training step.
	XLAMem *XLAMemStats `json:"xla_memory_per_device,omitempty"`
}

// XLAMemStats is one compiled program's per-device memory, as XLA reports it (MiB, rounded to 4 digits by go-xla's log).
type XLAMemStats struct {
	Graph        string  `json:"graph"`
	ArgumentsMiB float64 `json:"arguments_mib"`
	OutputsMiB   float64 `json:"outputs_mib"`
	AliasesMiB   float64 `json:"aliases_mib"`
	TemporaryMiB float64 `json:"temporary_mib"`
	TotalMiB     float64 `json:"total_mib"`
}

func main() {
	device.UseHugePages() // before anything else: glibc reads its tunables only at start-up
	os.Exit(exitCode(run(os.Args[1:]), os.Stderr))
}

// exitCode is the process status of run's error: 0 on success and when help was asked for (-h), 1 otherwise.
func exitCode(err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintln(stderr, "bench:", err)
	return 1
}

func run(args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var o Options
	fs.StringVar(&o.Preset, "preset", "stories260K", "model shape: "+strings.Join(PresetNames(), ", "))
	fs.IntVar(&o.Layers, "layers", 0, "override the preset's depth (a quick check of a big model's layer shapes)")
	fs.Float64Var(&o.PeakTFLOPS, "peak-tflops", 0, "the device's dense peak TFLOP/s for the weight dtype (0: known NVIDIA cards' bf16 peak from nvidia-smi's name)")
	fs.Var(&o.DType, "dtype", "weight dtype: bfloat16 (default for 7b/13b) or float32 (default for small presets)")
	fs.IntVar(&o.Batch, "batch", 4, "training batch size")
	fs.IntVar(&o.Seq, "seq", 512, "tokens per training sequence")
	fs.IntVar(&o.K, "K", 10, "adapter prompt length")
	fs.IntVar(&o.L, "L", 30, "adapted layers (capped at the model's depth)")
	fs.StringVar(&o.Gate, "gate", "head-tanh", "gate formula: head-tanh, head or layer")
	fs.BoolVar(&o.Visual, "visual", false, "add the visual token (3 scales × 1024 features, random)")
	fs.IntVar(&o.Steps, "steps", 10, "timed training steps")
	fs.IntVar(&o.Warmup, "warmup", 2, "untimed training steps (compilation, allocator warm-up)")
	fs.IntVar(&o.EvalBatches, "eval-batches", 4, "letter-scoring batches (of -batch examples of -seq tokens)")
	fs.IntVar(&o.GenBatch, "gen-batch", 1, "generation batch size")
	fs.IntVar(&o.GenPrompt, "gen-prompt", 64, "generation prompt length")
	fs.IntVar(&o.GenTokens, "gen-tokens", 64, "generated tokens per row")
	fs.StringVar(&o.Only, "only", "all", "what to measure: all, train, eval or gen")
	fs.StringVar(&o.Attention, "attention", "auto", "auto: the backend's fused attention where offered; decomposed: plain ops")
	fs.Uint64Var(&o.Seed, "seed", 1, "random seed")
	fs.StringVar(&o.Devices, "devices", "1", "devices to shard training and letter scoring over: N or all (XLA CPU gets N devices unless $"+device.CPUDevicesEnvVar+" is set)")
	fs.BoolVar(&o.ShardWeights, "shard-weights", false, "split the frozen base matrices over the devices (FSDP-style) instead of replicating them")
	fs.BoolVar(&o.AnswerHead, "answer-head", false, "training: the LM head only at the target positions (train.Config.AnswerHead)")
	fs.BoolVar(&o.Remat, "remat", false, "training: recompute each layer's activations in the backward pass (train.Config.Remat)")
	jsonPath := fs.String("json", "", "also write the result as JSON to this file")
	memStats := fs.Bool("xla-memstats", false, "log XLA's compiled memory statistics (arguments, outputs, temporaries) of each graph")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *memStats {
		// go-xla logs each compiled executable's memory statistics at klog verbosity 1.
		kfs := flag.NewFlagSet("klog", flag.ContinueOnError)
		klog.InitFlags(kfs)
		for k, v := range map[string]string{"v": "1", "logtostderr": "false", "stderrthreshold": "FATAL"} {
			if err := kfs.Set(k, v); err != nil {
				return err
			}
		}
		klog.SetOutput(compileLogFilter{})
	}
	res, err := Bench(o)
	if err != nil {
		return err
	}
	if *memStats {
		res.XLAMem = memLog.largest()
	}
	printTable(res)
	if *jsonPath != "" {
		data, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return fmt.Errorf("bench: encode %s: %w", *jsonPath, err)
		}
		if err := atomicfile.Write(*jsonPath, append(data, '\n'), 0o644); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
	}
	return nil
}

// SmolLM2Shape is SmolLM2-135M(-Instruct)'s shape, the default run's model (the GGUF's metadata; a test compares
// them when the model is installed): 30 layers, C=576, 9 query and 3 key/value heads of 64, SwiGLU 1536, a
// 49,152-token vocabulary with tied embeddings, rotary base 100,000.
var SmolLM2Shape = llama.Config{VocabSize: 49152, Dim: 576, HiddenDim: 1536, NumLayers: 30, NumHeads: 9, NumKVHeads: 3,
	HeadDim: 64, MaxSeqLen: 8192, NormEps: 1e-5, RopeTheta: 100000, TieEmbeddings: true}

// Preset is a named shape: llama.Presets, or "smollm2" (SmolLM2Shape).
func Preset(name string) (llama.Config, bool) {
	if name == "smollm2" {
		return SmolLM2Shape, true
	}
	c, ok := llama.Presets[name]
	return c, ok
}

// PresetNames lists the presets Preset knows, sorted.
func PresetNames() []string {
	names := []string{"smollm2"}
	for n := range llama.Presets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// benchEval measures letter scoring: a first batch (compiling) and o.EvalBatches batches.
func benchEval(res *Result, m *llama.Model, a *adapter.Adapter, b compute.Backend, place device.Placement, o Options, randomTokens func(int) []int32, features func() []float32) error {
	r := &evaluate.Runner{Model: m, Adapter: a, Backend: b, BatchSize: o.Batch, PadMultiple: 64, MaxLen: o.Seq, Placement: place}
	mk := func(n int) []evaluate.LetterExample {
		var ex []evaluate.LetterExample
		for i := 0; i < n; i++ {
			ex = append(ex, evaluate.LetterExample{ID: strconv.Itoa(i), Prompt: randomTokens(o.Seq), Options: [][]int32{{3}, {4}, {5}, {6}}, Features: features()})
		}
		return ex
	}
	t0 := time.Now()
	if _, err := r.ScoreLetters(context.Background(), mk(o.Batch)); err != nil {
		return err
	}
	first := time.Since(t0).Seconds()
	ex := mk(o.Batch * o.EvalBatches)
	t0 = time.Now()
	if _, err := r.ScoreLetters(context.Background(), ex); err != nil {
		return err
	}
	el := time.Since(t0).Seconds()
	res.EvalExamplesS = float64(len(ex)) / el
	res.EvalCompile = max(0, first-el/float64(o.EvalBatches))
	return nil
}

// benchGen measures greedy generation: a first batch (compiling) and a second one.
func benchGen(res *Result, m *llama.Model, a *adapter.Adapter, b compute.Backend, o Options, randomTokens func(int) []int32, features func() []float32) error {
	cfg := m.Config
	r := &evaluate.Runner{Model: m, Adapter: a, Backend: b, BatchSize: o.GenBatch, PadMultiple: 64, MaxLen: min(cfg.MaxSeqLen, o.GenPrompt+o.GenTokens+64)}
	mk := func() []evaluate.GenExample {
		var ex []evaluate.GenExample
		for i := 0; i < o.GenBatch; i++ {
			p := randomTokens(o.GenPrompt)
			ids := make([]int, len(p))
			for j, v := range p {
				ids[j] = int(v)
			}
			ex = append(ex, evaluate.GenExample{ID: strconv.Itoa(i), Prompt: ids, Features: features()})
		}
		return ex
	}
	t0 := time.Now()
	if _, err := r.Generate(context.Background(), mk(), o.GenTokens, nil); err != nil {
		return err
	}
	first := time.Since(t0).Seconds()
	t0 = time.Now()
	out, err := r.Generate(context.Background(), mk(), o.GenTokens, nil)
	if err != nil {
		return err
	}
	el := time.Since(t0).Seconds()
	n := 0
	for _, g := range out {
		n += len(g)
	}
	res.GenTokensSec = float64(n) / el
	res.GenCompile = max(0, first-el)
	return nil
}

// resolve checks o and fills its defaults (dtype by model size, layers from the preset); it returns the model
// configuration.
func resolve(o *Options) (llama.Config, error) {
	cfg, ok := Preset(o.Preset)
	if !ok {
		return cfg, fmt.Errorf("unknown preset %q (want %s)", o.Preset, strings.Join(PresetNames(), ", "))
	}
	if o.DType == "" {
		o.DType = device.Float32
		if cfg.Dim >= 2048 {
			o.DType = device.BFloat16
		}
	}
	if _, err := device.ParseDType(string(o.DType)); err != nil {
		return cfg, fmt.Errorf("dtype %w", err)
	}
	if o.Attention != "auto" && o.Attention != "" && o.Attention != "decomposed" {
		return cfg, fmt.Errorf("unknown -attention %q (want auto or decomposed)", o.Attention)
	}
	if o.Layers > 0 {
		cfg.NumLayers = o.Layers
	}
	o.Layers = cfg.NumLayers
	o.L = min(o.L, cfg.NumLayers)
	if o.Seq > cfg.MaxSeqLen {
		return cfg, fmt.Errorf("-seq %d exceeds the preset's max length %d", o.Seq, cfg.MaxSeqLen)
	}
	return cfg, nil
}

// Bench runs the measurements.
func Bench(o Options) (*Result, error) {
	cfg, err := resolve(&o)
	if err != nil {
		return nil, err
	}
	dtype := o.DType.GoMLX()
	if n, err := strconv.Atoi(o.Devices); err == nil && n > 1 && os.Getenv(device.CPUDevicesEnvVar) == "" {
		device.SetCPUDevices(n) // XLA CPU: expose exactly n devices (no effect on other backends)
		defer device.SetCPUDevices(0)
	}
	b, err := device.New()
	if err != nil {
		return nil, err
	}
	place, err := device.NewPlacement(b, o.Devices, o.ShardWeights)
	if err != nil {
		return nil, err
	}
	res := &Result{Options: o, Backend: device.Config(), BackendName: b.Name(), Params: cfg.NumParams(), Device: gpuName(), NumDevices: place.NumDevices()}
	if res.Options.PeakTFLOPS == 0 && dtype == dtypes.BFloat16 {
		res.Options.PeakTFLOPS = knownBF16Peak(res.Device)
	}
	gpu := startGPUSampler()
	defer gpu.stop()

	start := time.Now()
	m, err := llama.RandomModel(cfg, dtype, o.Seed)
	if err != nil {
		return nil, err
	}
	m.DecomposedAttention = o.Attention == "decomposed"
	res.FusedAttention = m.FusedAttention(b)
	acfg := adapter.Config{Layers: o.L, PromptLen: o.K, Gate: adapter.GateMode(o.Gate), Init: adapter.InitRandom, Seed: o.Seed}
	if o.Visual {
		acfg.Visual = &adapter.VisualConfig{Scales: 3, FeatureDim: 1024}
	}
	a, err := adapter.New(m.Store, acfg, m.Config)
	if err != nil {
		return nil, err
	}
	res.AdapterParams = adapter.Count(acfg, m.Config).Total()
	res.LoadSeconds = time.Since(start).Seconds()
	rng := rand.New(rand.NewPCG(o.Seed, 2))
	features := func() []float32 {
		if !o.Visual {
			return nil
		}
		f := make([]float32, 3*1024)
		for i := range f {
			f[i] = float32(rng.NormFloat64())
		}
		return f
	}
	randomTokens := func(n int) []int32 {
		t := make([]int32, n)
		t[0] = 1
		for i := 1; i < n; i++ {
			t[i] = int32(3 + rng.IntN(cfg.VocabSize-3))
		}
		return t
	}
	if o.Only == "all" || o.Only == "train" {
		if err := benchTrain(res, m, a, b, place, o, randomTokens, features); err != nil {
			return nil, err
		}
	}
	if o.Only == "all" || o.Only == "eval" {
		if err := benchEval(res, m, a, b, place, o, randomTokens, features); err != nil {
			return nil, err
		}
	}
	if o.Only == "all" || o.Only == "gen" {
		if err := benchGen(res, m, a, b, o, randomTokens, features); err != nil {
			return nil, err
		}
	}
	res.PeakRSSGiB = float64(peakRSS()) / (1 << 30)
	res.PeakDeviceGiB = gpu.stop()
	return res, nil
}

func benchTrain(res *Result, m *llama.Model, a *adapter.Adapter, b compute.Backend, place device.Placement, o Options, randomTokens func(int) []int32, features func() []float32) error {
	tc := train.PaperConfig()
	tc.Epochs, tc.WarmupEpochs, tc.BatchSize, tc.AccumSteps, tc.MaxLen, tc.PadMultiple = 1, 0, o.Batch, 1, o.Seq, 64
	tc.AnswerHead, tc.Remat = o.AnswerHead, o.Remat
	tr, err := train.NewPlaced(m, a, b, tc, place)
	if err != nil {
		return err
	}
	res.SplitWeights = tr.SplitWeights
	var ex []train.Example
	for i := 0; i < o.Batch*(o.Warmup+o.Steps); i++ {
		tok := randomTokens(o.Seq)
		mask := make([]bool, len(tok))
		for j := len(tok) - 8; j < len(tok); j++ {
			mask[j] = true // the answer tokens at the end, as in ScienceQA
		}
		ex = append(ex, train.Example{ID: strconv.Itoa(i), Tokens: tok, LossMask: mask, Features: features()})
	}
	var times []float64
	err = tr.Train(context.Background(), ex, train.Position{}, train.Hooks{OnStep: func(s train.StepInfo) { times = append(times, s.Seconds) }})
	if err != nil {
		return err
	}
	timed := append([]float64(nil), times[min(o.Warmup, len(times)-1):]...)
	sort.Float64s(timed)
	med := timed[len(timed)/2]
	res.TrainStepSec = med
	res.TrainTokensSec = float64(o.Batch*o.Seq) / med
	res.TrainCompile = max(0, times[0]-med)
	res.TrainFLOPsTok = TrainFLOPsPerToken(m.Config, o.L, o.K, o.Seq)
	res.TrainTFLOPS = res.TrainFLOPsTok * res.TrainTokensSec / 1e12
	if res.Options.PeakTFLOPS > 0 {
		res.PeakFraction = res.TrainTFLOPS / res.Options.PeakTFLOPS
	}
	return nil
}

// TrainFLOPsPerToken counts the matmul FLOPs per token of one adapter training step on sequences of seq tokens:
// the forward pass through every layer and the LM head; the backward pass for activation gradients only (frozen
// weights get no gradient) from the LM head down to the lowest adapted layer; attention scores and values over
// the full causal window counted as the full seq×seq product (as materialized attention computes them, and as
// PaLM's MFU convention does), plus the K prompt keys/values in adapted layers. The adapter's own projections
// (K rows per layer per step) are negligible and left out. Recomputation is not counted: it is overhead, not model
// work.
func TrainFLOPsPerToken(cfg llama.Config, L, K, seq int) float64 {
	C, F, V, Q, KV := float64(cfg.Dim), float64(cfg.HiddenDim), float64(cfg.VocabSize), float64(cfg.QDim()), float64(cfg.KVDim())
	layer := 2 * (C*Q + 2*C*KV + Q*C + 3*C*F) // one pass of the layer's weight matmuls
	attn := 2 * 2 * float64(seq) * Q          // QKᵀ and PV
	prompt := 2 * 2 * float64(K) * Q
	N := cfg.NumLayers
	fwd := float64(N)*(layer+attn) + float64(L)*prompt + 2*V*C
	// Backward: activation gradients are one matmul per weight matmul; attention needs two per forward one.
	if L == 0 {
		return fwd
	}
	// Nothing below the lowest adapted layer needs a gradient, so its input gradients (through the q/k/v and
	// gate/up projections) are not formed.
	bwd := float64(L)*(layer+2*attn+2*prompt) + 2*V*C - 2*(C*Q+2*C*KV+2*C*F)
	return fwd + bwd
}

// knownBF16Peak is the dense bf16 tensor-core peak (TFLOP/s) of cards recognized by nvidia-smi's name.
func knownBF16Peak(name string) float64 {
	switch n := strings.ToUpper(name); {
	case strings.Contains(n, "H100") && strings.Contains(n, "PCIE"):
		return 756
	case strings.Contains(n, "H100"), strings.Contains(n, "H200"):
		return 989
	case strings.Contains(n, "A100"):
		return 312
	}
	return 0
}

// gpuName is nvidia-smi's name of the first GPU ("" without one).
func gpuName() string {
	if _, err := exec.LookPath("nvidia-smi"); err != nil {
		return ""
	}
	out, err := exec.Command("nvidia-smi", "--query-gpu=name", "--format=csv,noheader").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(strings.Split(string(out), "\n")[0])
}

func printTable(r *Result) {
	t := tablewriter.NewWriter(os.Stdout)
	t.Header("measure", "value")
	row := func(k string, v string) { t.Append(k, v) }
	row("preset / dtype", fmt.Sprintf("%s / %s (%.3g B params, %d layers)", r.Options.Preset, r.Options.DType, float64(r.Params)/1e9, r.Options.Layers))
	row("adapter", fmt.Sprintf("K=%d L=%d %s visual=%v: %d params", r.Options.K, r.Options.L, r.Options.Gate, r.Options.Visual, r.AdapterParams))
	row("backend", r.Backend)
	if r.NumDevices > 1 {
		row("devices (training, scoring)", fmt.Sprintf("%d, frozen weights %s", r.NumDevices, map[bool]string{true: fmt.Sprintf("split (%d matrices)", r.SplitWeights), false: "replicated"}[r.Options.ShardWeights]))
	}
	row("attention (training, scoring)", map[bool]string{true: "fused (backend's)", false: "decomposed"}[r.FusedAttention])
	if r.Device != "" {
		row("device", r.Device)
	}
	if r.TrainTokensSec > 0 {
		row("train step (median)", fmt.Sprintf("%.4f s for %d×%d tokens", r.TrainStepSec, r.Options.Batch, r.Options.Seq))
		row("train tokens/s", fmt.Sprintf("%.0f", r.TrainTokensSec))
		row("train compile", fmt.Sprintf("%.1f s", r.TrainCompile))
		tf := fmt.Sprintf("%.3g (%.3g GFLOP/token)", r.TrainTFLOPS, r.TrainFLOPsTok/1e9)
		if r.PeakFraction > 0 {
			tf += fmt.Sprintf(", %.1f%% of %.0f peak", 100*r.PeakFraction, r.Options.PeakTFLOPS)
		}
		row("train model TFLOP/s", tf)
	}
	if r.EvalExamplesS > 0 {
		row("letter-scoring examples/s", fmt.Sprintf("%.1f (%d tokens each)", r.EvalExamplesS, r.Options.Seq))
	}
	if r.GenTokensSec > 0 {
		row("generation tokens/s", fmt.Sprintf("%.1f (batch %d, KV cache)", r.GenTokensSec, r.Options.GenBatch))
	}
	row("peak host RSS", fmt.Sprintf("%.2f GiB", r.PeakRSSGiB))
	if r.PeakDeviceGiB > 0 {
		row("peak device memory (nvidia-smi)", fmt.Sprintf("%.2f GiB", r.PeakDeviceGiB))
	}
	if m := r.XLAMem; m != nil {
		row("XLA memory per device (largest graph)", fmt.Sprintf("%.4g MiB: arguments %.4g + outputs %.4g − aliased %.4g + temporaries %.4g",
			m.TotalMiB, m.ArgumentsMiB, m.OutputsMiB, m.AliasesMiB, m.TemporaryMiB))
	}
	t.Render()
}

// peakRSS reads VmHWM from /proc/self/status (0 where unavailable).
func peakRSS() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			f := strings.Fields(line)
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// gpuSampler polls nvidia-smi for used device memory (MiB) and keeps the peak.
type gpuSampler struct {
	mu   sync.Mutex
	peak float64
	done chan struct{}
	once sync.Once
}

func startGPUSampler() *gpuSampler {
	s := &gpuSampler{done: make(chan struct{})}
	if _, err := exec.LookPath("nvidia-smi"); err != nil || runtime.GOOS != "linux" {
		close(s.done)
		return s
	}
	go func() {
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			out, err := exec.Command("nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits").Output()
			if err == nil {
				if v, err := strconv.ParseFloat(strings.TrimSpace(strings.Split(string(out), "\n")[0]), 64); err == nil {
					s.mu.Lock()
					s.peak = max(s.peak, v)
					s.mu.Unlock()
				}
			}
			select {
			case <-s.done:
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

// stop ends sampling and returns the peak in GiB.
func (s *gpuSampler) stop() float64 {
	s.once.Do(func() {
		select {
		case <-s.done:
		default:
			close(s.done)
		}
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak / 1024
}

// compileLogFilter passes go-xla's per-compilation log lines (compile time, memory statistics) to stderr, records
// the memory statistics (memLog), and drops the per-execution lines that verbosity 1 also enables.
type compileLogFilter struct{}

func (compileLogFilter) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte("Compiling")) {
		memLog.compiling(string(p))
	}
	if bytes.Contains(p, []byte("Memory usage")) {
		memLog.add(string(p))
	}
	if bytes.Contains(p, []byte("Compiled in")) || bytes.Contains(p, []byte("Memory usage")) {
		return os.Stderr.Write(p)
	}
	return len(p), nil
}

// memLog collects the memory statistics of compiled graphs from go-xla's log.
var memLog memStatsLog

type memStatsLog struct {
	mu    sync.Mutex
	graph string
	stats []XLAMemStats
}

var (
	compilingRe = regexp.MustCompile(`Compiling "([^"]*)"`)
	memFieldRe  = regexp.MustCompile(`(Inputs|Outputs|Aliases|Temporary):([0-9.]+) ?([kKMGT]?i?B)`)
)

func (l *memStatsLog) compiling(line string) {
	if m := compilingRe.FindStringSubmatch(line); m != nil {
		l.mu.Lock()
		l.graph = m[1]
		l.mu.Unlock()
	}
}

// add parses "Memory usage: On Device: [Code:…, Inputs:1.2 MB, Outputs:…, Aliases:…, Temporary:…]; On Host: […]"
// (go-xla renders sizes with binary units, KiB/MiB/GiB); only the device part is kept.
func (l *memStatsLog) add(line string) {
	dev, _, _ := strings.Cut(line, "On Host")
	st := XLAMemStats{}
	for _, m := range memFieldRe.FindAllStringSubmatch(dev, -1) {
		v, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			continue
		}
		mib := v * map[string]float64{"B": 1.0 / (1 << 20), "KiB": 1.0 / (1 << 10), "MiB": 1, "GiB": 1 << 10, "TiB": 1 << 20,
			"kB": 1e3 / (1 << 20), "MB": 1e6 / (1 << 20), "GB": 1e9 / (1 << 20), "TB": 1e12 / (1 << 20)}[m[3]]
		switch m[1] {
		case "Inputs":
			st.ArgumentsMiB = mib
		case "Outputs":
			st.OutputsMiB = mib
		case "Aliases":
			st.AliasesMiB = mib
		case "Temporary":
			st.TemporaryMiB = mib
		}
	}
	st.TotalMiB = st.ArgumentsMiB + st.OutputsMiB - st.AliasesMiB + st.TemporaryMiB
	l.mu.Lock()
	st.Graph = l.graph
	l.stats = append(l.stats, st)
	l.mu.Unlock()
}

// largest returns the recorded graph with the largest total (nil when none was recorded).
func (l *memStatsLog) largest() *XLAMemStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	var best *XLAMemStats
	for i := range l.stats {
		if best == nil || l.stats[i].TotalMiB > best.TotalMiB {
			best = &l.stats[i]
		}
	}
	return best
}
