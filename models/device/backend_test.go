package device

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/gomlx/compute/dtypes"
)

// isolate clears every variable the resolution reads and points the plugin cache at an empty folder.
func isolate(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Setenv(EnvVar, "")
	t.Setenv(PluginEnvVar, "")
	t.Setenv(PluginDirEnvVar, dir)
	return dir
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestResolveOrder(t *testing.T) {
	t.Run("default", func(t *testing.T) {
		isolate(t)
		info := Resolve()
		if info.Config != DefaultGoConfig || info.Source != SourceDefault || info.Name != "go" || info.Note != "" {
			t.Errorf("Resolve() = %+v, want %s from %s", info, DefaultGoConfig, SourceDefault)
		}
		if Config() != DefaultGoConfig {
			t.Errorf("Config() = %q", Config())
		}
	})
	t.Run("installed", func(t *testing.T) {
		dir := isolate(t)
		so := filepath.Join(dir, pluginFileName)
		writeFile(t, so, "not really a plugin")
		writeFile(t, filepath.Join(dir, "plugin.json"), `{"package":"lammps-jax-pjrt-cpu","version":"0.11.2","xla_commit":"abc"}`)
		if got := InstalledPlugin(); got != so {
			t.Fatalf("InstalledPlugin() = %q, want %q", got, so)
		}
		info := Resolve()
		if info.Config != "xla:"+so || info.Source != SourceInstalled || info.Name != "xla" || info.PluginPath != so {
			t.Errorf("Resolve() = %+v, want xla:%s from %s", info, so, SourceInstalled)
		}
		if info.Plugin == nil || info.Plugin.Package != "lammps-jax-pjrt-cpu" || info.Plugin.XLACommit != "abc" {
			t.Errorf("provenance = %+v", info.Plugin)
		}
	})
	t.Run("plugin env beats installed", func(t *testing.T) {
		dir := isolate(t)
		writeFile(t, filepath.Join(dir, pluginFileName), "x")
		other := filepath.Join(t.TempDir(), "libpjrt_cpu.so")
		writeFile(t, other, "x")
		t.Setenv(PluginEnvVar, other)
		info := Resolve()
		if info.Config != "xla:"+other || info.Source != SourcePluginEnv || info.Plugin != nil {
			t.Errorf("Resolve() = %+v, want xla:%s from %s without provenance", info, other, SourcePluginEnv)
		}
	})
	t.Run("GOMLX_BACKEND beats all", func(t *testing.T) {
		dir := isolate(t)
		writeFile(t, filepath.Join(dir, pluginFileName), "x")
		t.Setenv(PluginEnvVar, filepath.Join(dir, pluginFileName))
		t.Setenv(EnvVar, "go:ops_parallel")
		info := Resolve()
		if info.Config != "go:ops_parallel" || info.Source != SourceEnv || info.Name != "go" {
			t.Errorf("Resolve() = %+v", info)
		}
	})
	t.Run("bad plugin env is noted and skipped", func(t *testing.T) {
		for _, p := range []string{"relative/plugin.so", "/nonexistent/plugin.so", "/"} {
			isolate(t)
			t.Setenv(PluginEnvVar, p)
			info := Resolve()
			if info.Config != DefaultGoConfig || !strings.Contains(info.Note, PluginEnvVar) {
				t.Errorf("%s=%q: Resolve() = %+v, want the default with a note", PluginEnvVar, p, info)
			}
		}
	})
}

func TestBrokenInstalledPluginFallsBack(t *testing.T) {
	dir := isolate(t)
	writeFile(t, filepath.Join(dir, pluginFileName), "this is not an ELF file")
	b, info, err := NewWithInfo()
	if err != nil {
		t.Fatalf("NewWithInfo: %v", err)
	}
	if info.Config != DefaultGoConfig || info.Source != SourceDefault || !strings.Contains(info.Note, "failed to load") {
		t.Errorf("info = %+v, want a fallback to %s with a note", info, DefaultGoConfig)
	}
	if !strings.Contains(b.Description(), "Go") {
		t.Errorf("backend = %s, want the Go backend", b.Description())
	}
}

func TestExplicitBrokenPluginIsAnError(t *testing.T) {
	dir := isolate(t)
	so := filepath.Join(dir, "broken.so")
	writeFile(t, so, "this is not an ELF file")
	t.Setenv(EnvVar, "xla:"+so)
	if b, info, err := NewWithInfo(); err == nil || info.Error == "" {
		t.Errorf("NewWithInfo() = %v, %+v; want an error", b, info)
	}
}

func TestNewWithConfigUnknownBackend(t *testing.T) {
	b, err := NewWithConfig("nosuchbackend:x")
	if err == nil || !strings.Contains(err.Error(), "nosuchbackend") {
		t.Errorf("NewWithConfig(nosuchbackend) = %v, %v; want an error naming it", b, err)
	}
	if _, err := NewWithConfig("go:nosuchoption"); err == nil {
		t.Error("NewWithConfig(go:nosuchoption) succeeded")
	}
}

// TestVersionMatchesInstallScript keeps PluginVersion and the folder the script installs into in step.
func TestVersionMatchesInstallScript(t *testing.T) {
	path := filepath.Join("..", "..", ".ci", "install-pjrt-cpu.sh")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("reading %s: %v", path, err)
	}
	m := regexp.MustCompile(`(?m)^readonly VERSION=(\S+)$`).FindSubmatch(data)
	if m == nil {
		t.Fatalf("%s: no 'readonly VERSION=' line", path)
	}
	if string(m[1]) != PluginVersion {
		t.Errorf("%s installs %s, PluginVersion is %s", path, m[1], PluginVersion)
	}
	if !strings.Contains(string(data), "/llama-adapter/pjrt-cpu/$VERSION") || !strings.Contains(string(data), pluginFileName) {
		t.Errorf("%s no longer installs into .../llama-adapter/pjrt-cpu/$VERSION/%s", path, pluginFileName)
	}
}

func TestSharedAndDescribe(t *testing.T) {
	b := MustShared()
	info := Describe()
	if info.Error != "" || info.Description != b.Description() || info.Config == "" || info.Source == "" {
		t.Errorf("Describe() = %+v for shared backend %s", info, b.Description())
	}
	if info.Name == "xla" && info.PJRTAPIVersion == "" {
		t.Errorf("Describe() of an XLA backend has no PJRT API version: %+v", info)
	}
	t.Logf("shared backend: %s", info)
}

// TestXLAPlugin checks the installed plugin (skipped when .ci/install-pjrt-cpu.sh has not run): it loads,
// reports its PJRT API version and provenance, and computes the block's loss and gradients like the Go backend.
func TestXLAPlugin(t *testing.T) {
	so := InstalledPlugin()
	if so == "" {
		t.Skip("XLA CPU plugin not installed; run .ci/install-pjrt-cpu.sh")
	}
	config := "xla:" + so
	xb, err := NewWithConfig(config)
	if err != nil {
		t.Fatal(err)
	}
	info := DescribeBackend(config, xb)
	if info.Name != "xla" || info.PluginPath != so || !regexp.MustCompile(`^0\.\d+$`).MatchString(info.PJRTAPIVersion) {
		t.Errorf("DescribeBackend = %+v", info)
	}
	if info.Plugin == nil || info.Plugin.Version != PluginVersion {
		t.Errorf("plugin provenance = %+v, want version %s", info.Plugin, PluginVersion)
	}
	t.Logf("%s", info)

	gb, err := NewWithConfig(DefaultGoConfig)
	if err != nil {
		t.Fatal(err)
	}
	s := blockShape{Batch: 2, Seq: 8, Dim: 16, Heads: 2, Hidden: 32}
	// Separate inputs per backend: a tensor sent to one backend's device can't be passed to another's.
	want := runBlockStep(t, gb, s, blockInputs(s, dtypes.Float32, 7))
	got := runBlockStep(t, xb, s, blockInputs(s, dtypes.Float32, 7))
	for i := range want {
		compareClose(t, i, got[i], want[i], 1e-4)
	}
}

// compareClose checks |got-want| <= tol·(max|want| over the output) element-wise.
func compareClose(t *testing.T, output int, got, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("output %d: %d values, want %d", output, len(got), len(want))
	}
	scale := 0.0
	for _, w := range want {
		scale = math.Max(scale, math.Abs(w))
	}
	for j := range want {
		if d := math.Abs(got[j] - want[j]); !(d <= tol*scale) {
			t.Errorf("output %d[%d] = %g, want %g (scale %g)", output, j, got[j], want[j], scale)
			return
		}
	}
}

// TestBlockGradientsFiniteDifferences checks the benchmark block's autodiff gradients (float64, pure-Go
// backend) against central differences of its loss, so the benchmark measures a correct computation.
func TestBlockGradientsFiniteDifferences(t *testing.T) {
	gb, err := NewWithConfig(DefaultGoConfig)
	if err != nil {
		t.Fatal(err)
	}
	s := blockShape{Batch: 2, Seq: 4, Dim: 8, Heads: 2, Hidden: 16}
	args := blockInputs(s, dtypes.Float64, 3)
	outs := runBlockStep(t, gb, s, args)
	if loss := outs[0][0]; !(loss > 0) {
		t.Fatalf("loss = %g, want > 0", loss)
	}
	exec := newBlockExec(t, gb, s)
	const eps = 1e-5
	for w := range s.blockWeightDims() {
		grad := outs[1+w]
		for _, j := range []int{0, len(grad) / 2, len(grad) - 1} {
			plus := perturbedLoss(t, exec, args, w, j, eps)
			minus := perturbedLoss(t, exec, args, w, j, -eps)
			fd := (plus - minus) / (2 * eps)
			if d := math.Abs(fd - grad[j]); d > 1e-8+1e-6*math.Abs(fd) {
				t.Errorf("weight %d[%d]: autodiff %g, finite differences %g", w, j, grad[j], fd)
			}
		}
	}
}

// UseHugePages re-executes a program once, with the tunable added to what GLIBC_TUNABLES already held, and keeps
// the arguments; with the tunable present or SQA_HUGEPAGES=0 it returns.
func TestUseHugePages(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("Linux only")
	}
	if os.Getenv("SQA_HUGEPAGES_CHILD") == "1" {
		UseHugePages()
		fmt.Printf("GLIBC_TUNABLES=%s\n", os.Getenv("GLIBC_TUNABLES"))
		return
	}
	for _, c := range []struct{ env, want string }{
		{"", "GLIBC_TUNABLES=" + HugePageTunable},
		{"GLIBC_TUNABLES=glibc.malloc.arena_max=2", "GLIBC_TUNABLES=glibc.malloc.arena_max=2:" + HugePageTunable},
		{"GLIBC_TUNABLES=glibc.malloc.hugetlb=0", "GLIBC_TUNABLES=glibc.malloc.hugetlb=0"},
		{HugePagesEnvVar + "=0", "GLIBC_TUNABLES="},
	} {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestUseHugePages$", "-test.v")
		cmd.Env = append(os.Environ(), "SQA_HUGEPAGES_CHILD=1", "GLIBC_TUNABLES=")
		if c.env != "" {
			cmd.Env = append(cmd.Env, c.env)
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", c.env, err, out)
		}
		if !strings.Contains(string(out), c.want+"\n") || !strings.Contains(string(out), "--- PASS: TestUseHugePages") {
			t.Errorf("with %q: want %q in\n%s", c.env, c.want, out)
		}
	}
}
