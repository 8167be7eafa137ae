package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeSmall writes a two-tensor file with metadata and returns its path.
func writeSmall(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "adapter.safetensors")
	ts := []Tensor{
		Float32Tensor("a", []int{2, 3}, []float32{1, 2, 3, 4, 5, 6}, F32),
		Float32Tensor("b", []int{4}, []float32{-1, 0.5, 0.25, 8}, BF16),
	}
	if err := Write(path, ts, map[string]string{"format": "test", "position": `{"step":20}`}); err != nil {
		t.Fatal(err)
	}
	return path
}

// headerEnd returns the offset of the data section of a safetensors file's bytes.
func headerEnd(data []byte) int { return 8 + int(binary.LittleEndian.Uint64(data[:8])) }

func TestChecksumWrittenAndVerified(t *testing.T) {
	path := writeSmall(t)
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if !f.Checksummed {
		t.Error("a file written by Write should carry a verified checksum")
	}
	if len(f.Metadata[ChecksumKey]) != 64 {
		t.Errorf("metadata %s = %q, want 64 hex digits", ChecksumKey, f.Metadata[ChecksumKey])
	}
	if f.Metadata["format"] != "test" {
		t.Errorf("metadata lost: %v", f.Metadata)
	}
}

func TestChecksumDetectsSameSizeCorruption(t *testing.T) {
	for _, tc := range []struct {
		name    string
		corrupt func(data []byte)
	}{
		{"data byte", func(data []byte) { data[headerEnd(data)+5] ^= 0x01 }},
		{"data 0xFF", func(data []byte) {
			for i := headerEnd(data); i < len(data); i++ {
				data[i] = 0xFF
			}
		}},
		// A digit in the metadata (the resume position) still parses: only the checksum can tell.
		{"metadata digit", func(data []byte) {
			i := bytes.Index(data, []byte(`step\":20`))
			if i < 0 {
				panic("position not found in header")
			}
			data[i+len(`step\":`)] = '9'
		}},
		// A shape swapped for another of the same element count still validates structurally.
		{"shape", func(data []byte) {
			i := bytes.Index(data, []byte(`[2,3]`))
			if i < 0 {
				panic("shape not found in header")
			}
			copy(data[i:], `[3,2]`)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeSmall(t)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			size := len(data)
			tc.corrupt(data)
			if len(data) != size {
				t.Fatal("corruption changed the size")
			}
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := Open(path)
			if err == nil {
				f.Close()
				t.Fatal("Open accepted a corrupted file")
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "checksum") {
				t.Errorf("error %q should name the file and the checksum", err)
			}
		})
	}
}

// TestNoChecksumStillLoads: files from other tools (and this project's files from before the checksum) carry no
// checksum; they load unverified.
func TestNoChecksumStillLoads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.safetensors")
	hdr := []byte(`{"__metadata__":{"format":"pt"},"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`)
	var buf bytes.Buffer
	_ = binary.Write(&buf, binary.LittleEndian, uint64(len(hdr)))
	buf.Write(hdr)
	buf.Write([]byte{0, 0, 0x80, 0x3f})
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Checksummed {
		t.Error("Checksummed set for a file without a checksum")
	}
	v, _, err := f.ReadFloat32("x")
	if err != nil || v[0] != 1 {
		t.Fatalf("got %v, %v", v, err)
	}
}

// TestChecksumSurvivesReserialisation: the checksum covers the header's content, not its bytes, so a tool that
// rewrites the header with other spacing or key order (as Python's safetensors does) keeps it valid.
func TestChecksumSurvivesReserialisation(t *testing.T) {
	path := writeSmall(t)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	end := headerEnd(data)
	var hdr map[string]any
	if err := json.Unmarshal(data[8:end], &hdr); err != nil {
		t.Fatal(err)
	}
	re, err := json.MarshalIndent(hdr, "", "    ")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	_ = binary.Write(&buf, binary.LittleEndian, uint64(len(re)))
	buf.Write(re)
	buf.Write(data[end:])
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatalf("re-serialised header rejected: %v", err)
	}
	f.Close()
}

func TestChecksumKeyReserved(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.safetensors")
	err := Write(path, []Tensor{Float32Tensor("x", []int{1}, []float32{1}, F32)}, map[string]string{ChecksumKey: "0"})
	if err == nil {
		t.Fatal("Write accepted caller metadata under the checksum key")
	}
}
