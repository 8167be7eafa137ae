// Package backend is the one place where the toolkit picks its GoMLX compute backend.
//
// Resolution order (Resolve):
//  1. $GOMLX_BACKEND, when set (e.g. "xla:/abs/path/pjrt_c_api_cpu_plugin.so" or "go:ops_sequential").
//  2. $SQA_PJRT_CPU, when set: the absolute path of an XLA CPU PJRT plugin, used as "xla:<path>".
//  3. The XLA CPU plugin installed by .ci/install-pjrt-cpu.sh, when present at PluginCachePath().
//  4. GoMLX's pure-Go backend in the "ops_sequential" configuration (DefaultGoConfig). Its default
//     configuration (and "ops_parallel") can deadlock in compute v0.1.6 when as many parallelizable ops
//     (e.g. matmuls) are running at once as the worker pool has slots (2×GOMAXPROCS, so 4 on a 2-core
//     machine): each holds a slot while it waits for more. See TestGoDefaultConfigDoesNotDeadlock.
//
// Only backends compiled in here can be chosen: the pure-Go backend and XLA through PJRT. The XLA
// auto-installer is never imported, so no configuration can trigger a download: an XLA plugin must be named
// by absolute path (or be found in PJRT_PLUGIN_LIBRARY_PATH).
package device

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/gomlx/compute"
	_ "github.com/gomlx/compute/gobackend" // the pure-Go backend ("go")
	"github.com/gomlx/go-xla/compute/xla"  // XLA through a PJRT plugin ("xla"), without auto-install
	"github.com/gomlx/go-xla/pjrt"
)

// EnvVar is the environment variable that selects the backend (GoMLX's own).
const EnvVar = compute.ConfigEnvVar

// PluginEnvVar names an XLA CPU PJRT plugin (absolute path of the .so) to use when EnvVar is not set.
const PluginEnvVar = "SQA_PJRT_CPU"

// PluginDirEnvVar overrides the folder where .ci/install-pjrt-cpu.sh installs the plugin (and where
// PluginCachePath looks for it).
const PluginDirEnvVar = "SQA_PJRT_CPU_DIR"

// PluginVersion is the version of the PyPI package lammps-jax-pjrt-cpu that .ci/install-pjrt-cpu.sh
// installs; it names the cache folder. Keep it equal to VERSION in that script (a test checks).
const PluginVersion = "0.11.2"

// pluginFileName is the plugin's file name in the cache folder.
const pluginFileName = "pjrt_c_api_cpu_plugin.so"

// DefaultGoConfig is the pure-Go backend configuration used when no XLA plugin is chosen or found.
const DefaultGoConfig = "go:ops_sequential"

// Sources of a resolved configuration, recorded in Info.Source.
const (
	SourceEnv       = "env:" + EnvVar       // $GOMLX_BACKEND
	SourcePluginEnv = "env:" + PluginEnvVar // $SQA_PJRT_CPU
	SourceInstalled = "installed"           // the plugin at PluginCachePath()
	SourceDefault   = "default"             // DefaultGoConfig
	SourceExplicit  = "explicit"            // chosen by the caller (DescribeBackend)
)

// Info describes a backend choice; runs record it in their summary.json.
type Info struct {
	// Name is the backend's short name: "go" or "xla".
	Name string `json:"name"`
	// Config is the configuration string given to compute.NewWithConfig.
	Config string `json:"config"`
	// Source says how Config was chosen: one of the Source* constants.
	Source string `json:"source"`
	// Description is the created backend's own description (empty until a backend was created).
	Description string `json:"description,omitempty"`
	// PluginPath is the PJRT plugin's path, for XLA backends.
	PluginPath string `json:"plugin_path,omitempty"`
	// PJRTAPIVersion is the PJRT C API version the loaded plugin reports, e.g. "0.115".
	PJRTAPIVersion string `json:"pjrt_api_version,omitempty"`
	// Plugin holds the provenance that .ci/install-pjrt-cpu.sh wrote next to the plugin (plugin.json), if any.
	Plugin *PluginProvenance `json:"plugin,omitempty"`
	// Note explains a fallback, e.g. an installed plugin that failed to load.
	Note string `json:"note,omitempty"`
	// Devices is the number of devices the created backend exposes (see CPUDevicesEnvVar for XLA CPU).
	Devices int `json:"devices,omitempty"`
	// Error is set when the backend could not be created.
	Error string `json:"error,omitempty"`
}

// PluginProvenance is the content of the plugin.json written by .ci/install-pjrt-cpu.sh.
type PluginProvenance struct {
	Package      string `json:"package"`
	Version      string `json:"version"`
	Wheel        string `json:"wheel,omitempty"`
	WheelSHA256  string `json:"wheel_sha256,omitempty"`
	PluginSHA256 string `json:"plugin_sha256,omitempty"`
	XLACommit    string `json:"xla_commit,omitempty"`
	License      string `json:"license,omitempty"`
}

// String returns a one-line summary, e.g. "xla (xla:/…/pjrt_c_api_cpu_plugin.so, installed, PJRT 0.115)".
func (info Info) String() string {
	parts := []string{info.Config, info.Source}
	if info.PJRTAPIVersion != "" {
		parts = append(parts, "PJRT "+info.PJRTAPIVersion)
	}
	if info.Plugin != nil {
		parts = append(parts, info.Plugin.Package+" "+info.Plugin.Version)
	}
	s := fmt.Sprintf("%s (%s)", info.Name, strings.Join(parts, ", "))
	if info.Note != "" {
		s += "; " + info.Note
	}
	if info.Error != "" {
		s += "; error: " + info.Error
	}
	return s
}

// PluginCacheDir returns the folder where .ci/install-pjrt-cpu.sh installs the XLA CPU plugin:
// $SQA_PJRT_CPU_DIR, or ${XDG_CACHE_HOME:-$HOME/.cache}/llama-adapter/pjrt-cpu/<PluginVersion>.
func PluginCacheDir() (string, error) {
	if dir := os.Getenv(PluginDirEnvVar); dir != "" {
		return dir, nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("locating the user cache folder for the PJRT CPU plugin: %w", err)
	}
	return filepath.Join(cache, "llama-adapter", "pjrt-cpu", PluginVersion), nil
}

// PluginCachePath returns where the installed XLA CPU plugin would be; it does not check that it exists.
func PluginCachePath() (string, error) {
	dir, err := PluginCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, pluginFileName), nil
}

// InstalledPlugin returns the path of the installed XLA CPU plugin, or "" when it is not installed.
func InstalledPlugin() string {
	p, err := PluginCachePath()
	if err != nil {
		return ""
	}
	if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() {
		return ""
	}
	return p
}

// Resolve returns the configuration New would use, following the package's resolution order. It creates
// nothing: Description and PJRTAPIVersion are left empty.
func Resolve() Info {
	if c, ok := os.LookupEnv(EnvVar); ok && c != "" {
		return newInfo(c, SourceEnv)
	}
	var note string
	if p := os.Getenv(PluginEnvVar); p != "" {
		switch st, err := os.Stat(p); {
		case !filepath.IsAbs(p):
			note = fmt.Sprintf("$%s=%q is not an absolute path; ignored", PluginEnvVar, p)
		case err != nil:
			note = fmt.Sprintf("$%s=%q: %v; ignored", PluginEnvVar, p, err)
		case !st.Mode().IsRegular():
			note = fmt.Sprintf("$%s=%q is not a file; ignored", PluginEnvVar, p)
		default:
			return newInfo("xla:"+p, SourcePluginEnv)
		}
	}
	if p := InstalledPlugin(); p != "" {
		info := newInfo("xla:"+p, SourceInstalled)
		info.Note = note
		return info
	}
	info := newInfo(DefaultGoConfig, SourceDefault)
	info.Note = note
	return info
}

// newInfo fills the fields that follow from the configuration string alone.
func newInfo(config, source string) Info {
	info := Info{Config: config, Source: source}
	name, opts, _ := strings.Cut(config, ":")
	info.Name = name
	switch name {
	case "xla", "stablehlo", "hlo", "shlo":
		info.Name = "xla"
		plugin, _, _ := strings.Cut(opts, ",")
		if filepath.IsAbs(plugin) {
			info.PluginPath = plugin
			info.Plugin = readProvenance(filepath.Join(filepath.Dir(plugin), "plugin.json"))
		}
	}
	return info
}

// readProvenance reads plugin.json; a missing or unreadable file just means "unknown provenance".
func readProvenance(path string) *PluginProvenance {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var p PluginProvenance
	if err := json.Unmarshal(data, &p); err != nil || p.Package == "" {
		return nil
	}
	return &p
}

// Config returns the backend configuration string that New would use.
func Config() string {
	return Resolve().Config
}

// New creates the backend chosen by Resolve (see NewWithInfo).
func New() (compute.Backend, error) {
	b, _, err := NewWithInfo()
	return b, err
}

// NewWithInfo creates the backend chosen by Resolve and describes it; runs record the Info in their
// summary. A plugin found in the cache (not asked for explicitly) that fails to load falls back to the
// pure-Go backend, with the reason in Info.Note, so a broken download never stops a run; an explicitly
// chosen backend that fails is an error (also recorded in Info.Error).
func NewWithInfo() (compute.Backend, Info, error) {
	info := Resolve()
	b, err := NewWithConfig(info.Config)
	if err != nil && info.Source == SourceInstalled {
		fmt.Fprintf(os.Stderr, "backend: WARNING: installed XLA CPU plugin failed (%v); using %s\n", err, DefaultGoConfig)
		note := fmt.Sprintf("installed plugin %s failed to load (%v); fell back to %s", info.PluginPath, err, DefaultGoConfig)
		info = newInfo(DefaultGoConfig, SourceDefault)
		info.Note = note
		b, err = NewWithConfig(info.Config)
	}
	if err != nil {
		info.Error = err.Error()
		return nil, info, err
	}
	return b, describeCreated(info, b), nil
}

// NewWithConfig creates a backend from an explicit configuration string ("<name>:<options>"). An XLA CPU plugin
// gets the device count of CPUDevices, when set. A plugin named by absolute path is verified first (verifyPlugin:
// its pinned sha256, or that it is not truncated), so a damaged one is an error rather than a crash in dlopen.
func NewWithConfig(config string) (b compute.Backend, err error) {
	defer func() {
		// compute.NewWithConfig panics on an unknown backend name: turn that into an error.
		if r := recover(); r != nil {
			b, err = nil, fmt.Errorf("backend %q: %v", config, r)
		}
	}()
	if plugin := pluginOf(config); plugin != "" {
		if err := verifyPlugin(plugin); err != nil {
			return nil, err
		}
	}
	name, opts, _ := strings.Cut(config, ":")
	if name == "xla" && isCPUPlugin(opts) {
		n, err := CPUDevices()
		if err != nil {
			return nil, err
		}
		if n > 0 {
			return newXLACPU(opts, n)
		}
	}
	b, err = compute.NewWithConfig(config)
	if err != nil {
		return nil, fmt.Errorf("creating backend %q: %w", config, err)
	}
	return b, nil
}

// DescribeBackend describes a backend created from config (by NewWithConfig or otherwise), with Source
// SourceExplicit.
func DescribeBackend(config string, b compute.Backend) Info {
	return describeCreated(newInfo(config, SourceExplicit), b)
}

// describeCreated adds what only the created backend knows.
func describeCreated(info Info, b compute.Backend) Info {
	if b == nil {
		return info
	}
	info.Description = b.Description()
	info.Devices = b.NumDevices()
	if xb, ok := b.(*xla.Backend); ok && !xb.IsFinalized() {
		// GetPlugin returns the plugin the backend already loaded (plugins are cached by name).
		if p, err := pjrt.GetPlugin(xb.PluginName()); err == nil {
			major, minor := p.Version()
			info.PJRTAPIVersion = fmt.Sprintf("%d.%d", major, minor)
			info.PluginPath = p.Path()
		}
	}
	return info
}

var (
	sharedOnce    sync.Once
	sharedBackend compute.Backend
	sharedInfo    Info
	sharedErr     error
)

// Shared returns one process-wide backend created by New on first use. Tests and commands that run many
// graphs share it rather than starting a PJRT client per graph.
func Shared() (compute.Backend, error) {
	sharedOnce.Do(func() { sharedBackend, sharedInfo, sharedErr = NewWithInfo() })
	return sharedBackend, sharedErr
}

// MustShared is Shared for tests and mains: it panics on error.
func MustShared() compute.Backend {
	b, err := Shared()
	if err != nil {
		panic(err)
	}
	return b
}

// Describe returns the Info of the Shared backend, creating it if needed; when creation failed, Info.Error
// says why. Runs record it in their summary.json.
func Describe() Info {
	_, _ = Shared()
	return sharedInfo
}
