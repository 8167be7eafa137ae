package device

import (
	"errors"
	"fmt"
	"slices"

	"github.com/gomlx/compute/distributed"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/core/tensors/dtensor"
	"github.com/gomlx/gomlx/ml/model"
)

// Placement is where a model's graphs run: on one device (the zero value), or data-parallel over a mesh through
// XLA's SPMD partitioner (GoMLX AutoSharding): every batch input's first axis is sharded along DataAxis, scalars
// and the adapter and optimizer variables are replicated, and XLA inserts the collectives (the reductions of the
// masked loss over the global batch, hence the gradient mean). With ShardWeights, each frozen base matrix is also
// split across the mesh (FSDP-style) and XLA gathers it where a layer needs it.
//
// GoMLX ties each variable's sharding to one mesh: graphs of one model store should share one Placement (Mesh
// returns the same mesh for the same backend and count).
type Placement struct {
	// Mesh is nil for single-device execution.
	Mesh *distributed.DeviceMesh
	// ShardWeights shards frozen base matrices over Mesh instead of replicating them.
	ShardWeights bool
}

// NumDevices is the number of devices a placed graph runs on (1 without a mesh).
func (p Placement) NumDevices() int {
	if p.Mesh == nil {
		return 1
	}
	return p.Mesh.NumDevices()
}

// Sharded reports whether graphs run on more than one device.
func (p Placement) Sharded() bool { return p.NumDevices() > 1 }

// String describes the placement, e.g. "1 device" or "4 devices (data), frozen weights sharded".
func (p Placement) String() string {
	if !p.Sharded() {
		return "1 device"
	}
	s := fmt.Sprintf("%d devices (%s)", p.NumDevices(), DataAxis)
	if p.ShardWeights {
		s += ", frozen weights sharded"
	}
	return s
}

// PadRows rounds a batch's row count up to a multiple of the device count: the partitioner splits the batch axis
// evenly, so callers fill the extra rows with padding that carries no loss weight.
func (p Placement) PadRows(rows int) int {
	n := p.NumDevices()
	return (rows + n - 1) / n * n
}

// Place configures exec for this placement (nothing on one device) and returns it. Call it before exec's first
// run. Outputs are replicated, so every device returns the whole result.
func (p Placement) Place(exec *model.Exec) *model.Exec {
	if !p.Sharded() {
		return exec
	}
	return exec.AutoSharding(p.Mesh).WithOutputShardingSpecs(distributed.NewReplicatedShardingSpec(p.Mesh))
}

// batchSpec shards a tensor of the given rank along its first axis (scalars are replicated).
func (p Placement) batchSpec(rank int) *distributed.ShardingSpec {
	if rank == 0 {
		return distributed.NewReplicatedShardingSpec(p.Mesh)
	}
	axes := make([]distributed.AxisSpec, rank)
	axes[0] = distributed.AxisSpec{DataAxis}
	return &distributed.ShardingSpec{Mesh: p.Mesh, Axes: axes}
}

// Run executes a placed exec. On one device it is exec.Exec(args...). On a mesh, every argument of rank ≥ 1 is a
// batch whose first axis (the same size for all) is padded with zero rows to a multiple of the device count and
// sharded along DataAxis; scalars are replicated. It returns one device's outputs (all are replicated); outputs
// with a batch axis keep the padding rows at its end.
func (p Placement) Run(exec *model.Exec, args ...*tensors.Tensor) ([]*tensors.Tensor, error) {
	if !p.Sharded() {
		anyArgs := make([]any, len(args))
		for i, a := range args {
			anyArgs[i] = a
		}
		return exec.Exec(anyArgs...)
	}
	rows := -1
	for i, a := range args {
		if a.Shape().Rank() == 0 {
			continue
		}
		if d := a.Shape().Dimensions[0]; rows < 0 {
			rows = d
		} else if d != rows {
			return nil, fmt.Errorf("sharded run: argument %d has %d rows, argument 0..%d have %d", i, d, i-1, rows)
		}
	}
	padded := p.PadRows(max(rows, 0))
	specs := make([]*distributed.ShardingSpec, len(args))
	dargs := make([]any, len(args))
	for i, a := range args {
		specs[i] = p.batchSpec(a.Shape().Rank())
		if a.Shape().Rank() > 0 && padded != rows {
			var err error
			if a, err = PadAxis0(a, padded); err != nil {
				return nil, fmt.Errorf("sharded run: argument %d: %w", i, err)
			}
		}
		d, err := dtensor.ShardTensor(specs[i], a)
		if err != nil {
			return nil, fmt.Errorf("sharded run: argument %d %s over %s: %w", i, a.Shape(), p, err)
		}
		dargs[i] = d
	}
	exec.WithInputShardingSpecs(specs...)
	outs, err := exec.Exec(dargs...)
	if err != nil {
		return nil, err
	}
	per := len(outs) / p.NumDevices()
	for _, t := range outs[per:] {
		_ = t.FinalizeAll() // the other devices' copies of replicated outputs
	}
	return outs[:per], nil
}

// PadAxis0 returns t with its first axis grown to rows, the new rows zero (t itself when it already has rows).
func PadAxis0(t *tensors.Tensor, rows int) (*tensors.Tensor, error) {
	sh := t.Shape()
	if sh.Rank() == 0 || sh.Dimensions[0] > rows {
		return nil, fmt.Errorf("cannot pad %s to %d rows", sh, rows)
	}
	if sh.Dimensions[0] == rows {
		return t, nil
	}
	dims := slices.Clone(sh.Dimensions)
	dims[0] = rows
	out := tensors.FromShape(shapes.Make(sh.DType, dims...))
	var inner error
	err := out.MutableBytes(func(dst []byte) {
		inner = t.ConstBytes(func(src []byte) { copy(dst, src) })
	})
	if err = errors.Join(err, inner); err != nil {
		return nil, fmt.Errorf("padding %s to %d rows: %w", sh, rows, err)
	}
	return out, nil
}

// WeightAxis returns the axis of a frozen weight that ShardWeights splits over n devices: the first axis (a
// PyTorch-layout [out, in] matrix's output dimension, the embedding's vocabulary) when n divides it, else the
// second, else -1 (replicated: vectors such as norms, and matrices n divides neither way).
func WeightAxis(dims []int, n int) int {
	if len(dims) != 2 || n < 2 {
		return -1
	}
	for axis, d := range dims {
		if d%n == 0 {
			return axis
		}
	}
	return -1
}

// PlaceVariables gives every variable its sharding for this placement before a placed graph uses them: frozen
// ones split along WeightAxis when ShardWeights is set (replicated otherwise), the others replicated. It returns
// how many frozen variables are split. On one device it does nothing. A variable placed on another mesh before
// is gathered to the host first.
func (p Placement) PlaceVariables(frozen, replicated []*model.Variable) (split int, err error) {
	if !p.Sharded() {
		return 0, nil
	}
	n := p.NumDevices()
	set := func(v *model.Variable, spec *distributed.ShardingSpec) error {
		if sameSpec(v.ShardingSpec(), spec) {
			return nil
		}
		if v.HasValue() {
			val, err := v.Value()
			if err != nil {
				return fmt.Errorf("placing %s: %w", v.Path(), err)
			}
			// Drop the shards of the old placement; the host value is resharded on first use.
			if err := v.SetValuePreservingOld(val); err != nil {
				return fmt.Errorf("placing %s: %w", v.Path(), err)
			}
		}
		if err := v.SetShardingSpec(spec); err != nil {
			return fmt.Errorf("placing %s: %w", v.Path(), err)
		}
		return nil
	}
	rep := distributed.NewReplicatedShardingSpec(p.Mesh)
	for _, v := range frozen {
		spec := rep
		if p.ShardWeights {
			if axis := WeightAxis(v.Shape().Dimensions, n); axis >= 0 {
				axes := make([]distributed.AxisSpec, 2)
				axes[axis] = distributed.AxisSpec{DataAxis}
				spec = &distributed.ShardingSpec{Mesh: p.Mesh, Axes: axes}
				split++
			}
		}
		if err := set(v, spec); err != nil {
			return 0, err
		}
	}
	for _, v := range replicated {
		if err := set(v, rep); err != nil {
			return 0, err
		}
	}
	return split, nil
}

// sameSpec compares two sharding specs (same mesh by identity, same axes; nil axes and empty axes agree).
func sameSpec(a, b *distributed.ShardingSpec) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.Mesh != b.Mesh {
		return false
	}
	n := max(len(a.Axes), len(b.Axes))
	for i := 0; i < n; i++ {
		var x, y distributed.AxisSpec
		if i < len(a.Axes) {
			x = a.Axes[i]
		}
		if i < len(b.Axes) {
			y = b.Axes[i]
		}
		if !slices.Equal(x, y) {
			return false
		}
	}
	return true
}
