package clip

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/adapterlab/llama-adapter/models/device"
)

// TestCacheEntryOfAnotherImage: an entry is checked against the image it is asked for: a valid entry copied over
// another image's file is reported corrupt (and removed), never served as that image's features.
func TestCacheEntryOfAnotherImage(t *testing.T) {
	c, err := OpenCache(t.TempDir(), CacheKey{Model: "m", DType: "float32", Features: "f", Preprocess: "p", M: 1, D: 2})
	if err != nil {
		t.Fatal(err)
	}
	a, b := ImageKey([]byte("image a")), ImageKey([]byte("image b"))
	if err := c.Put(a, []float32{1, 2}); err != nil {
		t.Fatal(err)
	}
	if err := c.Put(b, []float32{3, 4}); err != nil {
		t.Fatal(err)
	}
	entryA, _ := os.ReadFile(c.path(a))
	if err := os.WriteFile(c.path(b), entryA, 0o600); err != nil {
		t.Fatal(err)
	}
	feat, ok, err := c.Get(b)
	var ce *CorruptError
	if ok || !errors.As(err, &ce) || ce.Path != c.path(b) || !strings.Contains(err.Error(), "another image") {
		t.Fatalf("entry of image a under image b's name: features %v ok=%v err=%v, want a CorruptError", feat, ok, err)
	}
	if _, err := os.Stat(c.path(b)); !os.IsNotExist(err) {
		t.Error("the entry was not removed")
	}
}

// TestCacheImageKeyChecked: the image key names the entry's file, so only a sha256 in hex is accepted: a key from
// elsewhere cannot write or read outside the cache folder.
func TestCacheImageKeyChecked(t *testing.T) {
	root := t.TempDir()
	c, err := OpenCache(filepath.Join(root, "cache"), CacheKey{Model: "m", M: 1, D: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"../../../escaped", "", "ab", strings.Repeat("A", 64), strings.Repeat("g", 64)} {
		if err := c.Put(key, []float32{1, 2}); err == nil {
			t.Errorf("Put(%q) accepted", key)
		}
		if _, ok, err := c.Get(key); ok || err == nil {
			t.Errorf("Get(%q): ok=%v err=%v, want an error", key, ok, err)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "escaped.feat")); err == nil {
		t.Error("Put wrote outside the cache folder")
	}
}

// TestExtractorWarnsCorrupt: a corrupt entry met by the extractor is reported on Warn with its file, then
// recomputed.
func TestExtractorWarnsCorrupt(t *testing.T) {
	m := loadTiny(t)
	paths := testImages(t)[:2]
	enc, err := m.NewEncoder(device.MustShared(), FeatureOptions{})
	if err != nil {
		t.Fatal(err)
	}
	x, err := NewExtractor(enc, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srcs := []ImageSource{{Path: paths[0]}, {Path: paths[1]}}
	if _, err := x.Features(srcs); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(paths[1])
	entry := x.Cache.path(ImageKey(data))
	b, _ := os.ReadFile(entry)
	b[len(b)/2] ^= 0xff
	os.WriteFile(entry, b, 0o600)
	var warn bytes.Buffer
	x.Warn = &warn
	if _, err := x.Features(srcs); err != nil {
		t.Fatal(err)
	}
	if x.Stats != (ExtractStats{Hits: 1, Computed: 1, Corrupt: 1}) || !strings.Contains(warn.String(), entry) || !strings.Contains(warn.String(), paths[1]) {
		t.Errorf("stats %+v, warning %q: want one corrupt entry reported naming %s and %s", x.Stats, warn.String(), entry, paths[1])
	}
}

// pngHeader returns a PNG signature and IHDR chunk of a w×h 8-bit RGBA image, and nothing else: enough for
// DecodeConfig, not for Decode.
func pngHeader(w, h uint32) []byte {
	var buf bytes.Buffer
	buf.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 6
	chunk := append([]byte("IHDR"), ihdr...)
	binary.Write(&buf, binary.BigEndian, uint32(len(ihdr)))
	buf.Write(chunk)
	binary.Write(&buf, binary.BigEndian, crc32.ChecksumIEEE(chunk))
	return buf.Bytes()
}

// TestPixelLimit: an image is measured from its header before it is decoded; over the limit it is an error
// naming its size and the limit, and the label (pid and file) of the image; the limit can be raised.
func TestPixelLimit(t *testing.T) {
	p := DINOv2Preprocess()
	// 12000×12000 (the 450 KB PNG that cost 2 GB): refused from the header alone under the default limit.
	_, err := p.File(ImageSource{Name: "pid 7 (images/test/7/image.png)", Data: pngHeader(12000, 12000)}, nil)
	if err == nil || !strings.Contains(err.Error(), "pid 7 (images/test/7/image.png)") || !strings.Contains(err.Error(), "12000×12000") ||
		!strings.Contains(err.Error(), "limit") {
		t.Fatalf("12000×12000 header: %v, want a pixel-limit error naming the image and its size", err)
	}
	// A real image over a lowered limit, and under a raised one.
	img := image.NewNRGBA(image.Rect(0, 0, 300, 200))
	for i := range img.Pix {
		img.Pix[i] = uint8(i)
	}
	img.Set(0, 0, color.NRGBA{1, 2, 3, 255})
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	p.MaxPixels = 300*200 - 1
	if _, err := p.File(ImageSource{Name: "small", Data: buf.Bytes()}, nil); err == nil || !strings.Contains(err.Error(), "300×200") {
		t.Errorf("over a lowered limit: %v", err)
	}
	p.MaxPixels = 300 * 200
	if _, err := p.File(ImageSource{Name: "small", Data: buf.Bytes()}, nil); err != nil {
		t.Errorf("at the limit: %v", err)
	}
	if p.String() != DINOv2Preprocess().String() {
		t.Error("the pixel limit changed the preprocessing description (the feature cache key)")
	}
}
