package evaluate

import (
	"fmt"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// placedExec creates an executor of graphFn over the runner's model store, placed per r.Placement: on a mesh the
// frozen weights are replicated (or split with ShardWeights) and the adapter replicated, and every batch input is
// sharded along the mesh's data axis when run through runBatch. Letter and cloze scoring share it; generation
// stays on one device.
func (r *Runner) placedExec(name string, graphFn func(scope *model.Scope, inputs []*Node) *Node) (*model.Exec, error) {
	p := r.Placement
	if p.NumDevices() > r.Backend.NumDevices() {
		return nil, fmt.Errorf("evaluate: placement on %d devices, backend %s has %d", p.NumDevices(), r.Backend.Name(), r.Backend.NumDevices())
	}
	var replicated []*model.Variable
	if r.Adapter != nil {
		replicated = r.Adapter.Variables()
	}
	if _, err := p.PlaceVariables(r.Model.Variables(), replicated); err != nil {
		return nil, fmt.Errorf("evaluate: %w", err)
	}
	exec, err := model.NewExec(r.Backend, r.Model.Store, graphFn)
	if err != nil {
		return nil, fmt.Errorf("evaluate: %w", err)
	}
	p.Place(exec.WithName(name)).SetMaxCache(64) // one graph per padded shape
	return exec, nil
}

// runBatch runs a placedExec executor, counted by r.Counter. Every argument of rank ≥ 1 is a batch of rows (the same count for all);
// on a mesh the rows are padded with zero rows to a multiple of the device count, and outputs with a batch axis
// carry those rows at their end (callers read only their own rows; rows do not interact in a forward pass).
func (r *Runner) runBatch(exec *model.Exec, args ...*tensors.Tensor) ([]*tensors.Tensor, error) {
	outs, err := r.Counter.Run(r.Placement, exec, args...)
	if err != nil {
		return nil, fmt.Errorf("evaluate: %w", err)
	}
	return outs, nil
}
