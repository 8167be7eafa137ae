package device

import (
	"encoding/json"
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/gomlx/compute/dtypes"
)

func TestDTypeFlagAndJSON(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var d DType
	fs.Var(&d, "dtype", "")
	if err := fs.Parse([]string{"-dtype", "bfloat16"}); err != nil || d != BFloat16 || d.GoMLX() != dtypes.BFloat16 {
		t.Fatalf("-dtype bfloat16: %q, %v", d, err)
	}
	if err := fs.Parse([]string{"-dtype", "float16"}); err == nil || !strings.Contains(err.Error(), "want float32 or bfloat16") {
		t.Errorf("-dtype float16 by default: %v, want an error listing float32 or bfloat16", err)
	}
	var cfg struct{ DType DType }
	if err := json.Unmarshal([]byte(`{"DType":"float32"}`), &cfg); err != nil || cfg.DType != Float32 {
		t.Errorf("JSON float32: %q, %v", cfg.DType, err)
	}
	if err := json.Unmarshal([]byte(`{"DType":"int8"}`), &cfg); err == nil {
		t.Error("JSON int8 accepted")
	}
	if b, _ := json.Marshal(cfg); string(b) != `{"DType":"float32"}` {
		t.Errorf("marshal: %s", b)
	}
	if DType("").GoMLX() != dtypes.Float32 {
		t.Error("the zero DType is not float32")
	}
}

func TestDTypeVarAllowed(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var d DType
	DTypeVar(fs, &d, "dtype", Float32, "", Float32, BFloat16, Float16)
	if d != Float32 {
		t.Fatalf("default %q", d)
	}
	if err := fs.Parse([]string{"-dtype", "float16"}); err != nil || d.GoMLX() != dtypes.Float16 {
		t.Fatalf("-dtype float16: %q, %v", d, err)
	}
	if err := fs.Parse([]string{"-dtype", "int8"}); err == nil || !strings.Contains(err.Error(), "want float32, bfloat16 or float16") {
		t.Errorf("-dtype int8: %v", err)
	}
}
