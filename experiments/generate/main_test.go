package main

import (
	"bytes"
	"os"
	"testing"

	"github.com/adapterlab/llama-adapter/datasets/assets"
)

// TestGreedyReference reproduces llama2.c's run.c output for stories260K (-t 0, empty prompt, 256 steps) byte for
// byte, with the KV cache and without it.
func TestGreedyReference(t *testing.T) {
	want, err := os.ReadFile(assets.Require(t, assets.Path("models", "stories260K", "greedy_reference.txt")))
	if err != nil {
		t.Fatal(err)
	}
	modes := [][]string{{}, {"-no-cache"}}
	if testing.Short() {
		modes = modes[:1] // the no-cache run recomputes 256 full sequences
	}
	for _, extra := range modes {
		var out, errOut bytes.Buffer
		args := append([]string{"-steps", "256", "-temperature", "0", "-stop-eos=false"}, extra...)
		if err := run(args, &out, &errOut); err != nil {
			t.Fatalf("%v: %v\n%s", extra, err, errOut.String())
		}
		if !bytes.Equal(out.Bytes(), want) {
			t.Errorf("%v: output differs from greedy_reference.txt\ngot:  %q\nwant: %q", extra, out.String(), string(want))
		}
		t.Logf("%v: %s", extra, bytes.TrimSpace(errOut.Bytes()))
	}
}
