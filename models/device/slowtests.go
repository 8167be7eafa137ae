package device

import (
	"os"
	"testing"
)

// EnvSlowTests makes SkipSlowOnPureGo run the slow tests on the pure-Go backend too (any non-empty value but "0").
const EnvSlowTests = "SQA_SLOW_TESTS"

// SkipSlowOnPureGo skips a test that runs a real model for minutes on the pure-Go backend (e.g. SmolLM2 decoding
// without the KV cache, DINOv2 over hundreds of images), unless $SQA_SLOW_TESTS is set. The same tests run on the
// XLA CPU backend, where they take seconds; CI runs the model packages on both backends.
func SkipSlowOnPureGo(tb testing.TB, what string) {
	tb.Helper()
	if v := os.Getenv(EnvSlowTests); v != "" && v != "0" {
		return
	}
	if info := Resolve(); info.Name == "go" {
		tb.Skipf("skipping on the pure-Go backend (%s): %s takes minutes there; it runs on XLA CPU (set $%s=1 to run it here)",
			info.Config, what, EnvSlowTests)
	}
}
