package llama

import (
	"errors"

	"github.com/gomlx/compute/dtypes"
)

// LoadMeta is pending the torchpth reader.
func LoadMeta(path string, dtype dtypes.DType) (*Model, error) { return nil, errors.New("pending") }
