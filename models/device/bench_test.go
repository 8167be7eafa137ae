package device

import (
	"os"
	"testing"
	"time"

	"github.com/gomlx/compute/dtypes"
)

// benchBlock is a small LLaMA block (dim 256, 8 heads, SwiGLU hidden 688) on 2×128 tokens, float32.
var benchBlock = blockShape{Batch: 2, Seq: 128, Dim: 256, Heads: 8, Hidden: 688}

// BenchmarkBlockTrainStep measures one forward+backward pass of benchBlock (loss and gradients of all
// weights) per backend configuration, reporting tokens/s and GFLOP/s (matmul FLOPs only). The XLA case
// runs when the plugin is installed (.ci/install-pjrt-cpu.sh) or named by $SQA_PJRT_CPU. Configurations
// that deadlock (see TestGoDefaultConfigDoesNotDeadlock) are reported as skipped after a 60 s watchdog.
//
//	go test -run '^$' -bench BlockTrainStep -benchtime 5x ./models/device
func BenchmarkBlockTrainStep(b *testing.B) {
	configs := []string{"go", "go:ops_sequential", "go:ops_parallel"}
	plugin := os.Getenv(PluginEnvVar)
	if plugin == "" {
		plugin = InstalledPlugin()
	}
	if plugin != "" {
		configs = append(configs, "xla:"+plugin)
	}
	for _, config := range configs {
		name := config
		if plugin != "" && config == "xla:"+plugin {
			name = "xla-cpu"
		}
		b.Run(name, func(b *testing.B) {
			be, err := NewWithConfig(config)
			if err != nil {
				b.Fatal(err)
			}
			exec := newBlockExec(b, be, benchBlock)
			args := blockInputs(benchBlock, dtypes.Float32, 1)
			step := func() bool {
				done := make(chan struct{})
				go func() {
					defer close(done)
					if _, err := exec.Call(args...); err != nil {
						b.Error(err)
					}
				}()
				select {
				case <-done:
					return true
				case <-time.After(60 * time.Second):
					return false
				}
			}
			if !step() { // compile + first run, untimed
				b.Skipf("%s: deadlocked (no step finished in 60 s)", config)
			}
			b.ResetTimer()
			for range b.N {
				if !step() {
					b.Skipf("%s: deadlocked (no step finished in 60 s)", config)
				}
			}
			sec := b.Elapsed().Seconds() / float64(b.N)
			b.ReportMetric(float64(benchBlock.Batch*benchBlock.Seq)/sec, "tokens/s")
			b.ReportMetric(benchBlock.flopsPerStep()/sec/1e9, "GFLOP/s")
		})
	}
}
