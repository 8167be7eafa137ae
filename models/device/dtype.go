package device

import (
	"flag"
	"fmt"
	"strings"

	"github.com/gomlx/compute/dtypes"
)

// DType is the dtype frozen weights are loaded and computed in, as a -dtype flag and config.json name it. It is
// the one parser for every command's -dtype: a string (so configurations stay readable) that implements
// flag.Value and encoding.TextMarshaler/TextUnmarshaler, accepting only the listed names.
type DType string

// Weight dtypes.
const (
	Float32  DType = "float32"
	BFloat16 DType = "bfloat16"
	Float16  DType = "float16" // accepted only where a command lists it (the CLIP feature cache)
)

// DTypes lists the dtypes Set, UnmarshalText and ParseDType accept by default: float32 and bfloat16.
var DTypes = []DType{Float32, BFloat16}

// ParseDType returns the DType named s, which must be one of allowed (DTypes when none are given).
func ParseDType(s string, allowed ...DType) (DType, error) {
	if len(allowed) == 0 {
		allowed = DTypes
	}
	for _, a := range allowed {
		if DType(s) == a {
			return a, nil
		}
	}
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = string(a)
	}
	want := names[0]
	if len(names) > 1 {
		want = strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
	}
	return "", fmt.Errorf("%q: want %s", s, want)
}

// String returns the dtype's name.
func (d DType) String() string { return string(d) }

// Set parses a flag value (one of DTypes).
func (d *DType) Set(s string) error {
	v, err := ParseDType(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalText returns the dtype's name.
func (d DType) MarshalText() ([]byte, error) { return []byte(d), nil }

// UnmarshalText parses a name from DTypes; empty text is the zero value (unset).
func (d *DType) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*d = ""
		return nil
	}
	return d.Set(string(b))
}

// GoMLX returns the compute dtype: bfloat16 or float16 when named, float32 otherwise (the zero value included).
func (d DType) GoMLX() dtypes.DType {
	switch d {
	case BFloat16:
		return dtypes.BFloat16
	case Float16:
		return dtypes.Float16
	}
	return dtypes.Float32
}

// DTypeVar defines a dtype flag on fs that stores into p, starting at def and accepting allowed (DTypes when
// none are given).
func DTypeVar(fs *flag.FlagSet, p *DType, name string, def DType, usage string, allowed ...DType) {
	*p = def
	fs.Var(dtypeFlag{p: p, allowed: allowed}, name, usage)
}

// dtypeFlag is a DType flag with its own list of accepted names.
type dtypeFlag struct {
	p       *DType
	allowed []DType
}

func (f dtypeFlag) String() string {
	if f.p == nil {
		return ""
	}
	return string(*f.p)
}

func (f dtypeFlag) Set(s string) error {
	v, err := ParseDType(s, f.allowed...)
	if err != nil {
		return err
	}
	*f.p = v
	return nil
}
