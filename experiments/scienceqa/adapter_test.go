package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/adapterlab/llama-adapter/adapter"
	"github.com/adapterlab/llama-adapter/datasets/assets"
)

// TestAdapterConvertCommand drives `adapter convert` through the dispatcher: peft → litgpt → toolkit → peft gives
// back peft's tensors; refusals and usage errors exit 1 with the reason; -h exits 0.
func TestAdapterConvertCommand(t *testing.T) {
	peft := assets.Require(t, assets.Golden("interop_tiny", "peft"))
	dir := t.TempDir()
	lit, kit, back := filepath.Join(dir, "lit_model.pth.adapter"), filepath.Join(dir, "a.safetensors"), filepath.Join(dir, "peft")
	for _, args := range [][]string{
		{"adapter", "convert", "-to", "litgpt", "-heads", "4", peft, lit},
		{"adapter", "convert", lit, kit, "-to", "toolkit"}, // flags after the paths too
		{"adapter", "convert", "-to", "peft", kit, back},
	} {
		code, stdout, stderr := runCmd(t, args...)
		if code != 0 || !strings.Contains(stdout, "→") {
			t.Fatalf("%v: code %d, stdout %q, stderr %q", args, code, stdout, stderr)
		}
	}
	want, _, err := adapter.Read(peft)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := adapter.Read(back)
	if err != nil {
		t.Fatal(err)
	}
	if assets.MaxAbsDiff(got.Prompts, want.Prompts) != 0 || assets.MaxAbsDiff(got.Gates, want.Gates) != 0 {
		t.Error("peft → litgpt → toolkit → peft changed the tensors")
	}
	if code, stdout, _ := runCmd(t, "adapter", "info", kit); code != 0 || !strings.Contains(stdout, "toolkit, head gates, L=2 of N=4 layers, K=4, C=64, heads 4") {
		t.Errorf("info: %d %q", code, stdout)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"adapter", "convert", "-to", "peft", assets.Golden("adapter_tiny", "official_adapter.pth"), filepath.Join(dir, "x")}, "gated differently"},
		{[]string{"adapter", "convert", "-to", "litgpt", peft, filepath.Join(dir, "y")}, "-heads H"},
		{[]string{"adapter", "convert", "-to", "onnx", peft, filepath.Join(dir, "z")}, "unknown adapter format"},
		{[]string{"adapter", "convert", "-to", "toolkit", "-gate", "sigmoid", lit, filepath.Join(dir, "z")}, "unknown gate mode"},
		{[]string{"adapter", "convert", "-to", "peft", peft}, "two paths"},
		{[]string{"adapter", "frobnicate"}, "unknown action"},
	} {
		if code, _, stderr := runCmd(t, c.args...); code != 1 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: code %d, stderr %q, want 1 and %q", c.args, code, stderr, c.want)
		}
	}
	for _, args := range [][]string{{"adapter", "-h"}, {"adapter", "convert", "-h"}, {"adapter", "info", "-h"}} {
		if code, _, _ := runCmd(t, args...); code != 0 {
			t.Errorf("%v: exit %d, want 0", args, code)
		}
	}
}
