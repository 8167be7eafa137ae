package train

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"

	"github.com/adapterlab/llama-adapter/models/safetensors"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// checkpointFormat tags the project's training checkpoints.
const checkpointFormat = "llama-adapter-go/checkpoint/v1"

// checkpointVars lists (file name, variable) for everything a resume needs: adapter variables, their AdamW moments
// and the step counter. Accumulators are zero at a step boundary and are not saved.
func (t *Trainer) checkpointVars() []struct {
	name string
	v    *model.Variable
} {
	var out []struct {
		name string
		v    *model.Variable
	}
	add := func(name string, v *model.Variable) {
		out = append(out, struct {
			name string
			v    *model.Variable
		}{name, v})
	}
	for _, ov := range t.opt {
		add("param/"+ov.checkpointID, ov.param)
		add("m/"+ov.checkpointID, ov.m)
		add("v/"+ov.checkpointID, ov.v)
	}
	add("step", t.stepVar)
	return out
}

// SaveCheckpoint writes the adapter, optimizer state and position to path atomically (float32 safetensors with
// the position and recipe in the metadata).
func (t *Trainer) SaveCheckpoint(path string, pos Position) error {
	posJSON, _ := json.Marshal(pos)
	cfgJSON, _ := json.Marshal(t.Config)
	adapterJSON, _ := json.Marshal(t.Adapter.Config)
	meta := map[string]string{"format": checkpointFormat, "position": string(posJSON), "train_config": string(cfgJSON),
		"adapter_config": string(adapterJSON)}
	var ts []safetensors.Tensor
	for _, cv := range t.checkpointVars() {
		val, err := cv.v.Value()
		if err != nil {
			return fmt.Errorf("checkpoint %s: %s: %w", path, cv.name, err)
		}
		data, err := tensors.CopyFlatData[float32](val)
		if err != nil {
			return fmt.Errorf("checkpoint %s: %s: %w", path, cv.name, err)
		}
		ts = append(ts, safetensors.Float32Tensor(cv.name, val.Shape().Dimensions, data, safetensors.F32))
	}
	return safetensors.Write(path, ts, meta)
}

// LoadCheckpoint restores a checkpoint written by SaveCheckpoint and returns its position. It verifies the file's
// checksum (safetensors.ChecksumKey: a SHA-256 of the header and every tensor's bytes, which SaveCheckpoint always
// writes), so same-size corruption is an error naming the file rather than different values, or a NaN that would
// surface later as a training failure. It checks the adapter's shapes and that the recipe is the same (a changed
// recipe would not continue the same run). The device count is not recorded: checkpoints hold whole (merged)
// values and resume on any placement.
func (t *Trainer) LoadCheckpoint(path string) (Position, error) {
	var pos Position
	f, err := safetensors.Open(path) // verifies the checksum when present
	if err != nil {
		return pos, fmt.Errorf("checkpoint: %w", err)
	}
	defer f.Close()
	if f.Metadata["format"] != checkpointFormat {
		return pos, fmt.Errorf("checkpoint %s: not a training checkpoint (format %q)", path, f.Metadata["format"])
	}
	if !f.Checksummed {
		return pos, fmt.Errorf("checkpoint %s: no %s checksum, so its content cannot be verified (written by an older version?); delete it to restart the run", path, safetensors.ChecksumKey)
	}
	if err := json.Unmarshal([]byte(f.Metadata["position"]), &pos); err != nil {
		return pos, fmt.Errorf("checkpoint %s: malformed position: %w", path, err)
	}
	var saved Config
	if err := json.Unmarshal([]byte(f.Metadata["train_config"]), &saved); err != nil {
		return pos, fmt.Errorf("checkpoint %s: malformed train config: %w", path, err)
	}
	// The answer head, the length buckets (padding) and remat change how the loss is computed, not what it is (up to
	// float rounding), as the placement does: a run may resume with any of them switched either way.
	saved.AnswerHead, saved.LengthBuckets, saved.Remat = t.Config.AnswerHead, t.Config.LengthBuckets, t.Config.Remat
	if saved != t.Config {
		return pos, fmt.Errorf("checkpoint %s: written with recipe %+v, this run uses %+v: use a new run folder", path, saved, t.Config)
	}
	for _, cv := range t.checkpointVars() {
		vals, shape, err := f.ReadFloat32(cv.name)
		if err != nil {
			return pos, fmt.Errorf("checkpoint %s: %w", path, err)
		}
		if !slices.Equal(shape, cv.v.Shape().Dimensions) {
			return pos, fmt.Errorf("checkpoint %s: %s has shape %v, the run's adapter needs %v", path, cv.name, shape, cv.v.Shape().Dimensions)
		}
		if err := cv.v.SetValue(tensors.FromFlatDataAndDimensions(vals, cv.v.Shape().Dimensions...)); err != nil {
			return pos, fmt.Errorf("checkpoint %s: %s: %w", path, cv.name, err)
		}
	}
	return pos, nil
}

// CheckpointExists reports whether a checkpoint file is present.
func CheckpointExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
