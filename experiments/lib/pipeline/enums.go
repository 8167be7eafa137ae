package pipeline

import (
	"flag"
	"fmt"
	"strconv"
	"strings"

	"github.com/adapterlab/llama-adapter/clip"
	"github.com/adapterlab/llama-adapter/experiments/lib/evaluate"
	"github.com/adapterlab/llama-adapter/models/device"
)

// The configuration's enums are strings, so config.json stays readable; each implements flag.Value (flags bind
// straight into the Config) and encoding.TextMarshaler/TextUnmarshaler (JSON accepts only the listed values).

// setEnum stores s in *p when it is one of allowed; "" is the zero value (Validate rejects it where it matters).
func setEnum[T ~string](p *T, s string, allowed []T) error {
	for _, a := range allowed {
		if T(s) == a {
			*p = a
			return nil
		}
	}
	return fmt.Errorf("%q: want %s", s, enumList(allowed))
}

// unmarshalEnum is the enums' UnmarshalText: empty text is the zero value, anything else goes through Set.
func unmarshalEnum[T any, P interface {
	*T
	Set(string) error
}](p P, b []byte) error {
	if len(b) == 0 {
		var zero T
		*p = zero
		return nil
	}
	return p.Set(string(b))
}

// enumList is "a, b or c".
func enumList[T ~string](allowed []T) string {
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = string(a)
	}
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// Modality is text-only or multimodal (image features through the visual projection).
type Modality string

// Modalities.
const (
	Text       Modality = "text"
	Multimodal Modality = "multimodal"
)

// Modalities lists the accepted values.
var Modalities = []Modality{Text, Multimodal}

func (m Modality) String() string                { return string(m) }
func (m *Modality) Set(s string) error           { return setEnum(m, s, Modalities) }
func (m Modality) MarshalText() ([]byte, error)  { return []byte(m), nil }
func (m *Modality) UnmarshalText(b []byte) error { return unmarshalEnum(m, b) }

// DType is the frozen base weights' dtype: the one -dtype parser, models/device.DType.
type DType = device.DType

// DTypes.
const (
	Float32  = device.Float32
	BFloat16 = device.BFloat16
)

// DTypes lists the accepted values.
var DTypes = device.DTypes

// EvalMode is the -eval value: an ordered, comma-separated list of evaluation protocols (evaluate.ParseList; e.g.
// "cloze,cloze-norm,letter"), the first the primary, or one of the older combination names (both, all,
// letter+cloze), which config.json files of earlier runs hold. It is recorded as written (a list is normalized to
// "a,b,c"), so the run ids of recorded runs do not move.
type EvalMode string

// Evaluation modes the presets use.
const (
	// EvalLetter scores the option letters after "The answer is" (one forward pass).
	EvalLetter EvalMode = "letter"
	// EvalCloze scores each option's text as the continuation of a prompt that does not list the options.
	EvalCloze EvalMode = "cloze"
	// EvalGenerate generates greedily and parses "The answer is X" (the paper's protocol).
	EvalGenerate EvalMode = "generate"
	// EvalBoth is generation (primary) and letter scoring.
	EvalBoth EvalMode = "both"
	// EvalAll is generation (primary), letter, cloze and cloze-norm.
	EvalAll EvalMode = "all"
	// EvalScores is letter scoring (primary), cloze and cloze-norm.
	EvalScores EvalMode = "letter+cloze"
)

func (e EvalMode) String() string { return string(e) }

// Set checks s against the registered protocols and stores it (a list with its spaces removed).
func (e *EvalMode) Set(s string) error {
	ps, err := evaluate.ParseList(s)
	if err != nil {
		return err
	}
	if strings.Contains(s, ",") {
		names := make([]string, len(ps))
		for i, p := range ps {
			names[i] = p.Name()
		}
		s = strings.Join(names, ",")
	}
	*e = EvalMode(s)
	return nil
}

func (e EvalMode) MarshalText() ([]byte, error)  { return []byte(e), nil }
func (e *EvalMode) UnmarshalText(b []byte) error { return unmarshalEnum(e, b) }

// Protocols returns the mode's protocols, the primary first.
func (e EvalMode) Protocols() ([]evaluate.Protocol, error) {
	ps, err := evaluate.ParseList(string(e))
	if err != nil {
		return nil, fmt.Errorf("-eval: %w", err)
	}
	return ps, nil
}

// has reports whether the mode runs the named protocol.
func (e EvalMode) has(name string) bool {
	ps, _ := evaluate.ParseList(string(e))
	for _, p := range ps {
		if p.Name() == name {
			return true
		}
	}
	return false
}

// evalHelp is -eval's help text.
func evalHelp() string {
	return "evaluation protocols, the primary first, comma-separated: " + strings.Join(evaluate.Names(), ", ") +
		" (e.g. cloze,cloze-norm,letter; older names: both = generate,letter; letter+cloze = letter,cloze,cloze-norm; all = generate,letter,cloze,cloze-norm)"
}

// letter and generate say whether the mode runs letter scoring or generation (what Validate checks the format and
// token budget for).
func (e EvalMode) letter() bool   { return e.has("letter") }
func (e EvalMode) generate() bool { return e.has("generate") }

// textFlag binds a flag to a field whose type is its own flag.Value but not a string (the dataset's enums,
// scienceqa.Target and scienceqa.Fallback): the wrapper's zero value prints "", so the help states the default
// ("(default letter)") even where it is the enum's zero value.
type textFlag struct{ v flag.Value }

func (f textFlag) String() string {
	if f.v == nil {
		return ""
	}
	return f.v.String()
}

func (f textFlag) Set(s string) error { return f.v.Set(s) }

// parsedFlag binds a flag to a string-typed field of another package (adapter.GateMode, scienceqa.Format), with
// that package's parser as the check.
type parsedFlag[T ~string] struct {
	p     *T
	parse func(string) (T, error)
}

func (f parsedFlag[T]) String() string {
	if f.p == nil {
		return ""
	}
	return string(*f.p)
}

func (f parsedFlag[T]) Set(s string) error {
	v, err := f.parse(s)
	if err != nil {
		return err
	}
	*f.p = v
	return nil
}

// oneOf is a parser accepting the listed values.
func oneOf[T ~string](allowed ...T) func(string) (T, error) {
	return func(s string) (T, error) {
		var v T
		return v, setEnum(&v, s, allowed)
	}
}

// intList binds a comma-separated list of integers (e.g. -clip-layers 8,16,24).
type intList struct{ p *[]int }

func (l intList) String() string {
	if l.p == nil {
		return ""
	}
	return formatInts(*l.p)
}

func (l intList) Set(s string) error {
	v, err := parseInts(s)
	if err != nil {
		return err
	}
	*l.p = v
	return nil
}

func formatInts(v []int) string {
	parts := make([]string, len(v))
	for i, n := range v {
		parts[i] = strconv.Itoa(n)
	}
	return strings.Join(parts, ",")
}

// parseInts reads a CLIP layer list as clip.ParseLayers does ("" is the default: nil).
func parseInts(s string) ([]int, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	return clip.ParseLayers(s)
}
