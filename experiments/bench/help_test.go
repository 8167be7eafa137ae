package main

import (
	"bytes"
	"testing"
)

// TestHelpExitsZero: -h exits 0 (help asked for is not an error); an unknown flag exits 1.
func TestHelpExitsZero(t *testing.T) {
	var errOut bytes.Buffer
	if code := exitCode(run([]string{"-h"}), &errOut); code != 0 {
		t.Errorf("-h: exit %d: %s", code, errOut.String())
	}
	if code := exitCode(run([]string{"-no-such-flag"}), &errOut); code != 1 {
		t.Errorf("unknown flag: exit %d", code)
	}
}
