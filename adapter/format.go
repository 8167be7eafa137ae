package adapter

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/adapterlab/llama-adapter/models/llama"
	"github.com/adapterlab/llama-adapter/models/torchpth"
	"github.com/gomlx/gomlx/ml/model"
)

// Format names an adapter file layout.
type Format string

// Adapter file formats. Each foreign format stores one gate formula and no visual projection.
const (
	FormatToolkit  Format = "toolkit"  // this toolkit's .safetensors (Save): any gate formula, visual projection
	FormatOfficial Format = "official" // the official LLaMA-Adapter v1 release .pth: head-tanh, text only
	FormatPeft     Format = "peft"     // a peft AdaptionPrompt folder (save_pretrained): layer, text only
	FormatLitGPT   Format = "litgpt"   // litgpt's lit_model.pth.adapter: head, text only
)

// Formats lists the formats.
var Formats = []Format{FormatToolkit, FormatOfficial, FormatPeft, FormatLitGPT}

// ParseFormat checks a format's name.
func ParseFormat(s string) (Format, error) {
	for _, f := range Formats {
		if string(f) == s {
			return f, nil
		}
	}
	return "", fmt.Errorf("unknown adapter format %q (want %s, %s, %s or %s)", s, FormatToolkit, FormatOfficial, FormatPeft, FormatLitGPT)
}

// Gate returns the one gate formula a format stores, or "" for the toolkit's, which stores any.
func (f Format) Gate() GateMode {
	switch f {
	case FormatOfficial:
		return GateHeadTanh
	case FormatPeft:
		return GateLayer
	case FormatLitGPT:
		return GateHead
	}
	return ""
}

// RunFolderFile is the adapter file inside a run folder (the pipeline's AdapterFile).
const RunFolderFile = "adapter.safetensors"

// peftConfigFile and peftWeightsFile are the two files of a peft adapter folder.
const (
	peftConfigFile  = "adapter_config.json"
	peftWeightsFile = "adapter_model.safetensors"
)

// DetectFormat tells an adapter's format from its path and returns the path to read:
//
//   - a folder holding adapter_config.json is a peft folder (so is its adapter_model.safetensors given alone);
//   - a folder holding adapter.safetensors is a run folder: that file, in the toolkit's format;
//   - a *.safetensors file is the toolkit's;
//   - a torch zip checkpoint (.pth, .pth.adapter, ...) is litgpt's when its tensors are transformer.h.* (nested
//     under "model" or not) and the official release's when it has adapter_query.weight.
func DetectFormat(path string) (Format, string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", "", fmt.Errorf("adapter: %w", err)
	}
	if st.IsDir() {
		if exists(filepath.Join(path, peftConfigFile)) {
			return FormatPeft, path, nil
		}
		if f := filepath.Join(path, RunFolderFile); exists(f) {
			return FormatToolkit, f, nil
		}
		return "", "", fmt.Errorf("adapter %s: a folder without %s (peft) or %s (a run folder)", path, peftConfigFile, RunFolderFile)
	}
	if strings.HasSuffix(strings.ToLower(path), ".safetensors") {
		if filepath.Base(path) == peftWeightsFile && exists(filepath.Join(filepath.Dir(path), peftConfigFile)) {
			return FormatPeft, filepath.Dir(path), nil
		}
		return FormatToolkit, path, nil
	}
	f, err := torchpth.Open(path)
	if err != nil {
		return "", "", fmt.Errorf("adapter %s: neither a .safetensors file, a peft or run folder, nor a readable torch checkpoint: %w", path, err)
	}
	defer f.Close()
	for _, n := range f.Names() {
		switch {
		case strings.HasPrefix(n, "transformer.h.") || strings.HasPrefix(n, litgptWrap+".transformer.h."):
			return FormatLitGPT, path, nil
		case n == officialQuery:
			return FormatOfficial, path, nil
		}
	}
	return "", "", fmt.Errorf("adapter %s: a torch checkpoint with neither transformer.h.* tensors (litgpt) nor %s (official LLaMA-Adapter v1)", path, officialQuery)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// Read reads an adapter in any format (see DetectFormat) and returns its weights and format.
func Read(path string) (*Weights, Format, error) {
	f, p, err := DetectFormat(path)
	if err != nil {
		return nil, "", err
	}
	var w *Weights
	switch f {
	case FormatToolkit:
		w, err = readToolkit(p)
	case FormatOfficial:
		w, err = readOfficial(p)
	case FormatPeft:
		w, err = readPeft(p)
	case FormatLitGPT:
		w, err = readLitGPT(p)
	}
	if err != nil {
		return nil, f, err
	}
	if err := w.check(); err != nil {
		return nil, f, err
	}
	return w, f, nil
}

// WriteOptions are the settings of Write that some formats need.
type WriteOptions struct {
	// BaseModel is peft's base_model_name_or_path (written as null when empty).
	BaseModel string
	// Metadata is extra metadata of the toolkit's file (e.g. the run id).
	Metadata map[string]string
}

// Write saves the weights in format f at path (a folder for peft). The weights must already be under the
// format's gate formula (see WithGate and Convert); a visual projection is refused by every format but the
// toolkit's.
func (w *Weights) Write(path string, f Format, opts WriteOptions) error {
	if _, err := ParseFormat(string(f)); err != nil {
		return fmt.Errorf("adapter: writing %s: %w", path, err)
	}
	if err := w.check(); err != nil {
		return err
	}
	if g := f.Gate(); g != "" && w.Config.Gate != g {
		return fmt.Errorf("adapter %s: the %s format stores %s gates; these are %s (convert them with WithGate, or keep them in the toolkit's file)",
			w.source(), f, g, w.Config.Gate)
	}
	if err := w.checkVisual(f); err != nil {
		return err
	}
	switch f {
	case FormatOfficial:
		return writeOfficial(w, path)
	case FormatPeft:
		return writePeft(w, path, opts.BaseModel)
	case FormatLitGPT:
		return writeLitGPT(w, path)
	}
	return writeToolkit(w, path, opts.Metadata)
}

// checkVisual refuses a visual projection for every format but the toolkit's.
func (w *Weights) checkVisual(f Format) error {
	if f != FormatToolkit && (w.Config.Visual != nil || len(w.Visual) > 0) {
		return fmt.Errorf("adapter %s: it has a visual projection (%d tensors), for which the %s format has no place: only the toolkit's .safetensors carries it (-to %s)",
			w.source(), len(w.Visual), f, FormatToolkit)
	}
	return nil
}

// OpenOptions are Open's settings.
type OpenOptions struct {
	// Gate, if set, converts the file's gates to this formula (WithGate); "" keeps the file's own.
	Gate GateMode
}

// Open reads an adapter in any format — the toolkit's .safetensors, a run folder, the official v1 .pth, a peft
// AdaptionPrompt folder or litgpt's lit_model.pth.adapter (see DetectFormat) — checks that it fits model m and
// creates its variables in store. The adapter keeps the formula its file stores (head-tanh for the official
// release, layer for peft, head for litgpt, the recorded one for the toolkit's) unless opts.Gate asks for another.
// This is the entry point for every command that takes an adapter.
func Open(path string, store *model.Store, m llama.Config, opts OpenOptions) (*Adapter, error) {
	w, _, err := Read(path)
	if err != nil {
		return nil, err
	}
	if err := w.CheckModel(m); err != nil {
		return nil, err
	}
	if w.NumHeads == 0 {
		w.NumHeads = m.NumHeads
	}
	if opts.Gate != "" {
		if w, err = w.WithGate(opts.Gate); err != nil {
			return nil, err
		}
	}
	return w.NewAdapter(store, m)
}

// ConvertOptions are Convert's settings.
type ConvertOptions struct {
	// Gate is the formula of the output when it is the toolkit's file ("" keeps the input's); the other formats
	// store one formula each, and a Gate that differs from it is an error.
	Gate GateMode
	// Heads is the model's head count, needed only when the input does not record it (peft's per-layer gates)
	// and the output has per-head gates or is the toolkit's file; where the input records it, they must agree.
	Heads int
	// BaseModel is peft's base_model_name_or_path.
	BaseModel string
}

// Convert reads the adapter at in (any format, see DetectFormat), moves its gates to the formula the output
// format stores (see WithGate: exact conversions only, anything else refused with the reason) and writes it in
// format to at out. It returns the input's format. No model is needed: N, C and H come from the file (H from
// opts.Heads where peft's file lacks it).
func Convert(in, out string, to Format, opts ConvertOptions) (Format, error) {
	if _, err := ParseFormat(string(to)); err != nil {
		return "", err
	}
	w, from, err := Read(in)
	if err != nil {
		return "", err
	}
	if opts.Heads != 0 {
		if w.NumHeads != 0 && w.NumHeads != opts.Heads {
			return from, fmt.Errorf("adapter %s: %s says the model has %d heads, not %d", in, w.from("heads"), w.NumHeads, opts.Heads)
		}
		w.NumHeads = opts.Heads
	}
	gate := to.Gate()
	switch {
	case gate == "" && opts.Gate != "":
		gate = opts.Gate
	case gate == "":
		gate = w.Config.Gate
	case opts.Gate != "" && opts.Gate != gate:
		return from, fmt.Errorf("adapter: the %s format stores %s gates only; %s gates need the toolkit's file (-to %s)", to, gate, opts.Gate, FormatToolkit)
	}
	if to == FormatToolkit && w.NumHeads == 0 {
		return from, fmt.Errorf("adapter %s: the toolkit's file records the model's head count, which %s does not say: give it (-heads H)", in, from)
	}
	if err := w.checkVisual(to); err != nil {
		return from, err // before the gates: no formula would carry it
	}
	if w, err = w.WithGate(gate); err != nil {
		return from, err
	}
	return from, w.Write(out, to, WriteOptions{BaseModel: opts.BaseModel})
}
