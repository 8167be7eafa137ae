package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

// TestHelpExitsZero: -h prints the flags and the process exits 0 (help asked for is not an error); an unknown flag
// still exits 1.
func TestHelpExitsZero(t *testing.T) {
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"-h"}, &out, &errOut)
	if code := exitCode(err, &errOut); code != 0 {
		t.Errorf("-h: exit %d (err %v)", code, err)
	}
	if !strings.Contains(out.String()+errOut.String(), "-sweep") {
		t.Errorf("-h printed no flags:\n%s%s", out.String(), errOut.String())
	}
	if code := exitCode(run(context.Background(), []string{"-no-such-flag"}, &out, &errOut), &errOut); code != 1 {
		t.Errorf("unknown flag: exit %d", code)
	}
	if code := exitCode(context.Canceled, &errOut); code != 1 {
		t.Errorf("interrupted: exit %d", code)
	}
	if code := exitCode(errors.New("x"), &errOut); code != 1 {
		t.Errorf("failure: exit %d", code)
	}
}
