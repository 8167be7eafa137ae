package device

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/ml/model"
)

// ReleaseHostMemory collects the Go heap's garbage and returns the freed pages to the operating system now
// (debug.FreeOSMemory) instead of letting the runtime's background scavenger return them over minutes. Call it after a
// phase that dropped large host buffers (the float32 weights a loader built before they moved into the backend's
// buffers; a finished phase's batches): the resident set then holds what is live, and the next phase's peak does not
// stack on the last one's garbage. It costs one full collection (tens of milliseconds for a heap of a few hundred
// MB). On Linux with glibc it also trims the C heap (malloc_trim), where the backend's freed buffers and compiler
// memory otherwise stay resident.
func ReleaseHostMemory() {
	runtime.GC()
	debug.FreeOSMemory()
	trimCHeap()
}

// UploadVariables moves each variable's value into the backend's buffers on device 0 and drops its host copy
// (Tensor.ToDevice; with shared buffers, as XLA CPU and the pure-Go backend have, the value then lives in one
// place). A model's frozen weights are otherwise held twice from loading until a graph first reads them. For
// single-device placements: a mesh places variables itself (Placement.PlaceVariables). Variables without a value
// are skipped.
func UploadVariables(backend compute.Backend, vars []*model.Variable) error {
	for _, v := range vars {
		if !v.HasValue() {
			continue
		}
		val, err := v.Value()
		if err != nil {
			return fmt.Errorf("uploading %s: %w", v.Path(), err)
		}
		if err := val.ToDevice(backend, 0); err != nil {
			return fmt.Errorf("uploading %s: %w", v.Path(), err)
		}
	}
	return nil
}
