package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestHelpExitsZero: -h prints the flags (the adapter's among them) and exits 0; an unknown flag exits 1.
func TestHelpExitsZero(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := exitCode(run([]string{"-h"}, &out, &errOut), &errOut); code != 0 {
		t.Errorf("-h: exit %d: %s", code, errOut.String())
	}
	for _, f := range []string{"-adapter", "-image", "-chat"} {
		if !strings.Contains(errOut.String(), f) {
			t.Errorf("-h does not list %s:\n%s", f, errOut.String())
		}
	}
	if code := exitCode(run([]string{"-no-such-flag"}, &out, &errOut), &errOut); code != 1 {
		t.Errorf("unknown flag: exit %d", code)
	}
}

// writeLog records each write separately.
type writeLog struct{ writes []string }

func (w *writeLog) Write(p []byte) (int, error) {
	w.writes = append(w.writes, string(p))
	return len(p), nil
}

// TestStreaming: tokens reach the writer one by one as they are generated, not all at the end.
func TestStreaming(t *testing.T) {
	var log writeLog
	var errOut bytes.Buffer
	if err := run([]string{"-prompt", "Once upon a time", "-steps", "30", "-model", storiesPath(t)}, &log, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	if len(log.writes) < 10 {
		t.Errorf("%d writes for ~25 tokens: not streamed: %q", len(log.writes), log.writes)
	}
	if log.writes[0] != "Once upon a time" {
		t.Errorf("first write %q: want the prompt", log.writes[0])
	}
}

// TestChatWithoutTemplate: -chat on a tokenizer without a chat template is a clear error.
func TestChatWithoutTemplate(t *testing.T) {
	var out, errOut bytes.Buffer
	err := run([]string{"-prompt", "hi", "-chat", "-model", storiesPath(t)}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "chat template") {
		t.Errorf("-chat with llama2.c's tokenizer: err = %v", err)
	}
}
