package llama

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/adapterlab/llama-adapter/models/safetensors"
	"github.com/gomlx/compute/dtypes"
)

// peakRSS reads the process's peak resident set (VmHWM) in bytes.
func peakRSS(tb testing.TB) int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		tb.Skipf("no /proc/self/status: %v", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			f := strings.Fields(line)
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024
		}
	}
	tb.Skip("no VmHWM in /proc/self/status")
	return 0
}

// resetPeakRSS resets VmHWM (Linux: writing 5 to clear_refs).
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// BenchmarkLoadPeakMemory generates a bfloat16 safetensors checkpoint of about $SQA_LOAD_BENCH_GB GB (default: skip)
// in 2 shards, then loads it as bfloat16 and reports peak memory over checkpoint size. Not run in CI:
//
//	SQA_LOAD_BENCH_GB=4 go test -run '^$' -bench LoadPeakMemory -benchtime 1x ./models/llama
func BenchmarkLoadPeakMemory(b *testing.B) {
	gb, _ := strconv.ParseFloat(os.Getenv("SQA_LOAD_BENCH_GB"), 64)
	if gb <= 0 {
		b.Skip("set SQA_LOAD_BENCH_GB (e.g. 4) to run; it writes that many GB to a temp folder")
	}
	// A LLaMA-shaped model: C=2048, F=5632, V=32000, layers chosen for the size (bf16: 2 bytes per weight).
	cfg := Config{VocabSize: 32000, Dim: 2048, HiddenDim: 5632, NumHeads: 16, NumKVHeads: 16, HeadDim: 128,
		MaxSeqLen: 2048, NormEps: 1e-5, RopeTheta: 10000}
	perLayer := int64(4*cfg.Dim*cfg.Dim + 3*cfg.Dim*cfg.HiddenDim + 2*cfg.Dim)
	cfg.NumLayers = max(1, int((gb*1e9/2-float64(2*cfg.VocabSize*cfg.Dim))/float64(perLayer)))
	dir := b.TempDir()
	hf := map[string]any{"vocab_size": cfg.VocabSize, "hidden_size": cfg.Dim, "intermediate_size": cfg.HiddenDim,
		"num_hidden_layers": cfg.NumLayers, "num_attention_heads": cfg.NumHeads, "num_key_value_heads": cfg.NumKVHeads,
		"max_position_embeddings": cfg.MaxSeqLen, "rms_norm_eps": cfg.NormEps, "rope_theta": cfg.RopeTheta, "model_type": "llama"}
	data, _ := json.Marshal(hf)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644); err != nil {
		b.Fatal(err)
	}
	// Write each shard tensor by tensor through a small buffer so generation itself stays small.
	names := cfg.canonicalNames()
	weightMap := map[string]string{}
	var total int64
	for s, half := range [][]string{names[:len(names)/2], names[len(names)/2:]} {
		file := fmt.Sprintf("model-%05d-of-00002.safetensors", s+1)
		var ts []safetensors.Tensor
		for _, n := range half {
			shape := cfg.expectedShape(n)
			numel := 1
			for _, d := range shape {
				numel *= d
			}
			raw := make([]byte, 2*numel)
			for i := 0; i < len(raw); i += 2 {
				raw[i+1] = 0x3c // bf16 ≈ 0.0078: any finite value will do
			}
			ts = append(ts, safetensors.Tensor{Name: hfName(n), DType: safetensors.BF16, Shape: shape, Data: raw})
			weightMap[hfName(n)] = file
			total += int64(len(raw))
		}
		if err := safetensors.Write(filepath.Join(dir, file), ts, nil); err != nil {
			b.Fatal(err)
		}
		ts = nil
		runtime.GC()
		debug.FreeOSMemory()
	}
	idx, _ := json.Marshal(map[string]any{"weight_map": weightMap})
	if err := os.WriteFile(filepath.Join(dir, safetensors.IndexFile), idx, 0o644); err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	debug.FreeOSMemory()
	resetPeakRSS()
	base := peakRSS(b)
	b.ResetTimer()
	m, err := LoadHF(dir, dtypes.BFloat16)
	if err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	peak := peakRSS(b) - base
	b.ReportMetric(float64(total)/1e9, "checkpoint_GB")
	b.ReportMetric(float64(peak)/1e9, "peak_GB")
	b.ReportMetric(float64(peak)/float64(total), "peak/size")
	runtime.KeepAlive(m)
}
