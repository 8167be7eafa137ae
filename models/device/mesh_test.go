package device

import (
	"strings"
	"testing"

	"github.com/gomlx/compute"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

func TestParseDevicesPureGo(t *testing.T) {
	b, err := NewWithConfig(DefaultGoConfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"", "1", "all"} {
		if n, err := ParseDevices(b, s); err != nil || n != 1 {
			t.Errorf("ParseDevices(go, %q) = %d, %v; want 1", s, n, err)
		}
	}
	_, err = ParseDevices(b, "4")
	if err == nil || !strings.Contains(err.Error(), "4 devices requested, backend go has 1") {
		t.Errorf("ParseDevices(go, 4) error = %v", err)
	}
	for _, s := range []string{"0", "-2", "two"} {
		if _, err := ParseDevices(b, s); err == nil {
			t.Errorf("ParseDevices(%q) accepted", s)
		}
	}
	if p, err := NewPlacement(b, "1", true); err != nil || p.Sharded() || p.ShardWeights || p.NumDevices() != 1 {
		t.Errorf("one-device placement = %+v, %v", p, err)
	}
}

// xlaCPU returns an XLA CPU backend with n devices, or skips.
func xlaCPU(t *testing.T, n int) compute.Backend {
	t.Helper()
	p := InstalledPlugin()
	if p == "" {
		t.Skip("the XLA CPU plugin is not installed (.ci/install-pjrt-cpu.sh): multi-device checks need it")
	}
	SetCPUDevices(n)
	defer SetCPUDevices(0)
	b, err := NewWithConfig("xla:" + p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCPUDeviceCount(t *testing.T) {
	for _, n := range []int{1, 2, 3} {
		b := xlaCPU(t, n)
		if got := b.NumDevices(); got != n {
			t.Errorf("SetCPUDevices(%d): backend has %d devices", n, got)
		}
		if info := DescribeBackend("xla", b); info.Devices != n {
			t.Errorf("Info.Devices = %d, want %d", info.Devices, n)
		}
	}
	t.Setenv(CPUDevicesEnvVar, "2")
	if n, err := CPUDevices(); err != nil || n != 2 {
		t.Errorf("CPUDevices() with $%s=2: %d, %v", CPUDevicesEnvVar, n, err)
	}
	t.Setenv(CPUDevicesEnvVar, "x")
	if _, err := CPUDevices(); err == nil {
		t.Error("a malformed $SQA_CPU_DEVICES was accepted")
	}
	b := xlaCPU(t, 2)
	if _, err := ParseDevices(b, "4"); err == nil || !strings.Contains(err.Error(), "4 devices requested, backend xla:cpu has 2") {
		t.Errorf("ParseDevices(4) on 2 CPU devices: %v", err)
	}
	m1, err := Mesh(b, 2)
	if err != nil {
		t.Fatal(err)
	}
	m2, _ := Mesh(b, 2)
	if m1 != m2 || m1.NumDevices() != 2 {
		t.Errorf("Mesh(b, 2) is not one shared 2-device mesh")
	}
}

// TestPlacementRun: a masked mean over a batch sharded on 2 devices, with rows padded (3 → 4), equals the
// single-device value, and frozen matrices split by WeightAxis give the same product.
func TestPlacementRun(t *testing.T) {
	b := xlaCPU(t, 2)
	p, err := NewPlacement(b, "2", true)
	if err != nil {
		t.Fatal(err)
	}
	store := model.NewStore()
	w, err := store.CreateVariable("/w", tensors.FromValue([][]float32{{1, 2, 3}, {4, 5, 6}}))
	if err != nil {
		t.Fatal(err)
	}
	w.SetTrainable(false)
	if split, err := p.PlaceVariables([]*model.Variable{w}, nil); err != nil || split != 1 {
		t.Fatalf("PlaceVariables: %d split, %v", split, err)
	}
	fn := func(scope *model.Scope, in []*Node) []*Node {
		x, mask, scale := in[0], in[1], in[2]
		y := DotGeneral(x, []int{1}, nil, w.NodeValue(x.Graph()), []int{1}, nil) // [B, 2]
		s := ReduceAllSum(Mul(ReduceSum(y, -1), mask))
		return []*Node{Mul(Div(s, ReduceAllSum(mask)), scale), y}
	}
	single, err := model.NewExec(b, model.NewStore(), func(scope *model.Scope, in []*Node) []*Node {
		x, mask := in[0], in[1]
		wt := Const(x.Graph(), [][]float32{{1, 2, 3}, {4, 5, 6}})
		y := DotGeneral(x, []int{1}, nil, wt, []int{1}, nil)
		return []*Node{Div(ReduceAllSum(Mul(ReduceSum(y, -1), mask)), ReduceAllSum(mask)), y}
	})
	if err != nil {
		t.Fatal(err)
	}
	x := tensors.FromValue([][]float32{{1, 0, 0}, {0, 1, 0}, {0, 0, 2}})
	mask := tensors.FromValue([]float32{1, 1, 1})
	want, err := single.Exec(x, mask)
	if err != nil {
		t.Fatal(err)
	}
	e, err := model.NewExec(b, store, fn)
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.Run(p.Place(e), x, mask, tensors.FromScalar(float32(1)))
	if err != nil {
		t.Fatal(err)
	}
	if g, w := tensors.ToScalar[float32](got[0]), tensors.ToScalar[float32](want[0]); g != w {
		t.Errorf("sharded masked mean %v, single device %v", g, w)
	}
	gy, wy := tensors.MustCopyFlatData[float32](got[1]), tensors.MustCopyFlatData[float32](want[1])
	if got[1].Shape().Dimensions[0] != 4 {
		t.Errorf("padded output has %v rows, want 4", got[1].Shape())
	}
	for i := range wy {
		if gy[i] != wy[i] {
			t.Fatalf("row values differ at %d: %v vs %v", i, gy, wy)
		}
	}
}
