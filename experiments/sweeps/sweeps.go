// Package sweeps holds the ablations' sweep sets as data files, <name>.json, embedded so that a built command
// finds them wherever it runs. Their form and how they are read: experiments/ablations (loadPreset).
package sweeps

import "embed"

// Files are the sweep set files (<name>.json).
//
//go:embed *.json
var Files embed.FS
