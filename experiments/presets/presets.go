// Package presets holds the named run configurations as data files, <name>.json, embedded so that a built
// command finds them wherever it runs. Their form and how they are read: experiments/lib/pipeline (Preset,
// LoadConfigFile).
package presets

import "embed"

// Files are the preset files (<name>.json).
//
//go:embed *.json
var Files embed.FS
