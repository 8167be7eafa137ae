package device

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/distributed"
	"github.com/gomlx/go-xla/compute/xla"
	"github.com/gomlx/go-xla/pjrt"
)

// CPUDevicesEnvVar sets how many devices the XLA CPU plugin exposes (its "cpu_device_count" client option).
// Unset, the plugin installed by .ci/install-pjrt-cpu.sh (lammps-jax-pjrt-cpu 0.11.2) exposes 4 devices whatever
// the number of cores; $XLA_FLAGS=--xla_force_host_platform_device_count has no effect on it (both measured). The
// devices share the machine's cores: they are for testing and sharding, not for more compute.
const CPUDevicesEnvVar = "SQA_CPU_DEVICES"

// cpuDeviceCountOption is the PJRT CPU client's create option that sets its number of devices.
const cpuDeviceCountOption = "cpu_device_count"

var (
	cpuDevicesMu  sync.Mutex
	cpuDevicesSet int // SetCPUDevices; 0: not set
)

// SetCPUDevices sets the number of XLA CPU devices for backends created after the call (it overrides
// $SQA_CPU_DEVICES); n ≤ 0 clears it. Mains call it from their -devices flag before creating the backend. It has
// no effect on the pure-Go backend (one device) nor on non-CPU plugins.
func SetCPUDevices(n int) {
	cpuDevicesMu.Lock()
	defer cpuDevicesMu.Unlock()
	cpuDevicesSet = max(n, 0)
}

// CPUDevices returns the XLA CPU device count that new backends will ask for: SetCPUDevices, else
// $SQA_CPU_DEVICES, else 0 (the plugin's default).
func CPUDevices() (int, error) {
	cpuDevicesMu.Lock()
	n := cpuDevicesSet
	cpuDevicesMu.Unlock()
	if n > 0 {
		return n, nil
	}
	s := strings.TrimSpace(os.Getenv(CPUDevicesEnvVar))
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("$%s=%q: want a positive number of devices", CPUDevicesEnvVar, s)
	}
	return n, nil
}

// isCPUPlugin reports whether an "xla:" configuration's plugin is a CPU one (by name: "cpu" or a path whose file
// name mentions cpu), the only kind that takes cpu_device_count.
func isCPUPlugin(opts string) bool {
	plugin, _, _ := strings.Cut(opts, ",")
	return strings.Contains(strings.ToLower(filepath.Base(plugin)), "cpu")
}

// newXLACPU creates an XLA CPU backend with n devices.
func newXLACPU(opts string, n int) (compute.Backend, error) {
	b, err := xla.NewWithOptions(opts, pjrt.NamedValuesMap{cpuDeviceCountOption: int64(n)})
	if err != nil {
		return nil, fmt.Errorf("creating backend %q with %d CPU devices: %w", "xla:"+opts, n, err)
	}
	return b, nil
}

// DataAxis is the mesh axis that batches are sharded along.
const DataAxis = "data"

// AllDevices is the -devices value that asks for every device of the backend.
const AllDevices = "all"

// ParseDeviceCount reads a -devices value where no backend is at hand (checking a configuration): "" or "1" is 1,
// "all" is 0 (every device of the backend, counted when there is one), N is N.
func ParseDeviceCount(s string) (int, error) {
	s = strings.TrimSpace(s)
	switch s {
	case "", "1":
		return 1, nil
	case AllDevices:
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("-devices %q: want a positive number or %q", s, AllDevices)
	}
	return n, nil
}

// ParseDevices parses a -devices value for backend b: "" or "1" is one device, "all" every device of b, N exactly
// N devices. Any N from 1 to b's count is allowed: batches are padded with empty rows to a multiple of N, and
// frozen matrices that N does not divide stay replicated.
func ParseDevices(b compute.Backend, s string) (int, error) {
	n, err := ParseDeviceCount(s)
	if err != nil {
		return 0, err
	}
	have := b.NumDevices()
	if n == 0 {
		return have, nil
	}
	if n > have {
		hint := ""
		switch label := backendLabel(b); label {
		case "go":
			hint = " (the pure-Go backend runs on one device; the XLA CPU plugin exposes several, see $" + CPUDevicesEnvVar + ")"
		case "xla:cpu":
			hint = fmt.Sprintf(" (set $%s=%d or pass -devices before the backend is created)", CPUDevicesEnvVar, n)
		}
		return 0, fmt.Errorf("%d devices requested, backend %s has %d%s", n, backendLabel(b), have, hint)
	}
	return n, nil
}

// backendLabel names a backend briefly in messages, e.g. "xla:cpu" or "go".
func backendLabel(b compute.Backend) string {
	if xb, ok := b.(*xla.Backend); ok {
		if isCPUPlugin(xb.PluginName()) {
			return "xla:cpu"
		}
		return "xla:" + filepath.Base(xb.PluginName())
	}
	if f := strings.Fields(b.Name()); len(f) > 0 {
		return strings.ToLower(f[0])
	}
	return b.Name()
}

type meshKey struct {
	b compute.Backend
	n int
}

var (
	meshesMu sync.Mutex
	meshes   = map[meshKey]*distributed.DeviceMesh{}
)

// Mesh returns the 1-D mesh of b's first n devices along DataAxis (nil for n = 1: single-device execution). The
// same (backend, n) always gives the same mesh: GoMLX ties each variable's sharding to a mesh by identity, so the
// trainer and the evaluators of one model must share it.
func Mesh(b compute.Backend, n int) (*distributed.DeviceMesh, error) {
	if n == 1 {
		return nil, nil
	}
	if n < 1 || n > b.NumDevices() {
		return nil, fmt.Errorf("%d devices requested, backend %s has %d", n, backendLabel(b), b.NumDevices())
	}
	meshesMu.Lock()
	defer meshesMu.Unlock()
	if m, ok := meshes[meshKey{b, n}]; ok {
		return m, nil
	}
	m, err := distributed.NewDeviceMesh([]int{n}, []string{DataAxis})
	if err != nil {
		return nil, fmt.Errorf("device mesh of %d devices: %w", n, err)
	}
	m.SetName(fmt.Sprintf("data%d", n))
	meshes[meshKey{b, n}] = m
	return m, nil
}

// NewPlacement parses a -devices value (see ParseDevices) and returns the placement on that many devices of b.
func NewPlacement(b compute.Backend, devices string, shardWeights bool) (Placement, error) {
	n, err := ParseDevices(b, devices)
	if err != nil {
		return Placement{}, err
	}
	m, err := Mesh(b, n)
	if err != nil {
		return Placement{}, err
	}
	if m == nil && shardWeights {
		shardWeights = false // nothing to shard over
	}
	return Placement{Mesh: m, ShardWeights: shardWeights}, nil
}
