// Package backend is the one place where the toolkit picks its GoMLX compute backend.
//
// Resolution order:
//  1. $GOMLX_BACKEND, when set (e.g. "xla:/abs/path/pjrt_c_api_cpu_plugin.so" or "go:ops_sequential").
//  2. Otherwise GoMLX's pure-Go backend in the "ops_sequential" configuration (DefaultGoConfig), which
//     cannot deadlock on small machines (see README, "Backends").
//
// Only backends compiled in here can be chosen: the pure-Go backend and XLA through PJRT. The XLA
// auto-installer is never imported, so no configuration can trigger a download: an XLA plugin must be named
// by absolute path (or be found in PJRT_PLUGIN_LIBRARY_PATH).
package backend

import (
	"fmt"
	"os"
	"sync"

	"github.com/gomlx/compute"
	_ "github.com/gomlx/compute/gobackend" // the pure-Go backend ("go")
	_ "github.com/gomlx/go-xla/compute/xla" // XLA through a PJRT plugin ("xla"), without auto-install
)

// EnvVar is the environment variable that selects the backend (GoMLX's own).
const EnvVar = compute.ConfigEnvVar

// DefaultGoConfig is the pure-Go backend configuration used when nothing else is chosen.
const DefaultGoConfig = "go:ops_sequential"

// Config returns the backend configuration string that New would use.
func Config() string {
	if c, ok := os.LookupEnv(EnvVar); ok && c != "" {
		return c
	}
	return DefaultGoConfig
}

// New creates the backend chosen by Config.
func New() (compute.Backend, error) {
	return NewWithConfig(Config())
}

// NewWithConfig creates a backend from an explicit configuration string ("<name>:<options>").
func NewWithConfig(config string) (b compute.Backend, err error) {
	defer func() {
		// compute.NewWithConfig panics on an unknown backend name: turn that into an error.
		if r := recover(); r != nil {
			err = fmt.Errorf("backend %q: %v", config, r)
		}
	}()
	b, err = compute.NewWithConfig(config)
	if err != nil {
		return nil, fmt.Errorf("creating backend %q: %w", config, err)
	}
	return b, nil
}

var (
	sharedOnce    sync.Once
	sharedBackend compute.Backend
	sharedErr     error
)

// Shared returns one process-wide backend created by New on first use. Tests and commands that run many
// graphs share it rather than starting a PJRT client per graph.
func Shared() (compute.Backend, error) {
	sharedOnce.Do(func() { sharedBackend, sharedErr = New() })
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
