package clip

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/adapterlab/llama-adapter/models/atomicfile"
	"github.com/adapterlab/llama-adapter/models/safetensors"
)

// The feature cache stores one file per image under Dir/<key digest>/<aa>/<image sha256>.feat, where the key
// digest covers everything that changes the features: the model identity (Model.WeightsHash: sha256 of every
// vision tensor's name, dtype, shape and bytes, plus the architecture: the Config as JSON, which includes
// DINOv2's fields — pre-norm, LayerScale, patch bias, position grid — and the image size the position embeddings
// were resized to), the compute dtype, the feature options (layers, post-norm, projection) and the preprocessing
// settings (including the crop rounding). A changed key is a different folder, so stale
// features are never reused.
//
// Why hash the tensor bytes rather than a file header and size: two checkpoints with equal headers and sizes
// (the same architecture fine-tuned, or a re-saved file) would share a key and silently reuse wrong features. The
// loader reads every byte anyway, so hashing them costs about a second for ViT-L/14 — once per load, not per
// image. Hashing the tensors used (not the files) also makes a CLIPModel and a CLIPVisionModelWithProjection
// with the same vision weights share a cache, whatever the text tower or sharding.
//
// Entry format (little-endian): magic "CLIPFEAT", version u32, M u32, D u32, the 32-byte key digest, the 32-byte
// sha256 of the image's bytes (version 2: the file name says the same, but a name is not content, and an entry
// copied over another image's file must not be served for it), then M·D float32 values, then a CRC-32C of
// everything before it. A file with the wrong length, magic, version, shape, key, image digest or checksum is
// corrupt: Get removes it and reports a miss with a *CorruptError naming the file, so the caller warns and
// recomputes it (Extractor.Warn). Writes go to a temporary file in the same folder that is synced and renamed
// over the entry, so readers never see a partial entry.
//
// Version 2 changed the key digest too (it includes the version), so a version-1 cache folder is simply not used
// and can be deleted.

const (
	cacheMagic   = "CLIPFEAT"
	cacheVersion = 2
	headerSize   = 8 + 4 + 4 + 4 + 32 + 32

	// cacheFileMode is the mode of entries and key.json: private, as the cache has always written them.
	cacheFileMode = 0o600
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// CacheKey is what the cached features depend on, besides the image bytes.
type CacheKey struct {
	Model      string `json:"model"`      // Model.WeightsHash
	Source     string `json:"source"`     // for people reading key.json; not part of the digest
	DType      string `json:"dtype"`      // compute dtype of the weights
	Features   string `json:"features"`   // FeatureOptions.String()
	Preprocess string `json:"preprocess"` // Preprocess.String()
	M          int    `json:"m"`
	D          int    `json:"d"`
}

// Digest is the sha256 of every field but Source.
func (k CacheKey) Digest() [32]byte {
	return sha256.Sum256([]byte(fmt.Sprintf("v%d\x00%s\x00%s\x00%s\x00%s\x00%d\x00%d",
		cacheVersion, k.Model, k.DType, k.Features, k.Preprocess, k.M, k.D)))
}

// KeyFor returns the cache key of an encoder's features with preprocessing p.
func KeyFor(e *Encoder, p Preprocess) CacheKey {
	return CacheKey{Model: e.Model.WeightsHash, Source: e.Model.Source, DType: e.Model.DType.String(),
		Features: e.Options.String(), Preprocess: p.String(), M: len(e.Options.Layers), D: e.Model.FeatureDim(e.Options)}
}

// Cache is an on-disk feature cache for one key.
type Cache struct {
	Dir    string // the key's folder
	Key    CacheKey
	digest [32]byte
}

// OpenCache opens (creating) the cache folder for key under root and records the key in key.json.
func OpenCache(root string, key CacheKey) (*Cache, error) {
	if key.M <= 0 || key.D <= 0 {
		return nil, fmt.Errorf("clip cache: feature shape %d×%d must be positive", key.M, key.D)
	}
	d := key.Digest()
	c := &Cache{Dir: filepath.Join(root, hex.EncodeToString(d[:8])), Key: key, digest: d}
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("clip cache: %w", err)
	}
	desc, _ := json.MarshalIndent(key, "", " ")
	if err := atomicfile.Write(filepath.Join(c.Dir, "key.json"), desc, cacheFileMode); err != nil {
		return nil, fmt.Errorf("clip cache: %w", err)
	}
	return c, nil
}

// ImageKey is the cache key of an image: the hex sha256 of its bytes.
func ImageKey(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

// imageDigest parses an image key (64 lowercase hex digits, as ImageKey makes them). The key names the entry's
// file, so nothing else is accepted: a key from elsewhere must not build a path outside the cache folder.
func imageDigest(imgKey string) ([32]byte, error) {
	var d [32]byte
	if len(imgKey) != 64 || strings.ToLower(imgKey) != imgKey {
		return d, fmt.Errorf("clip cache: image key %q is not a sha256 in lowercase hex", imgKey)
	}
	if _, err := hex.Decode(d[:], []byte(imgKey)); err != nil {
		return d, fmt.Errorf("clip cache: image key %q is not a sha256 in lowercase hex", imgKey)
	}
	return d, nil
}

// path is the entry's file; imgKey has passed imageDigest.
func (c *Cache) path(imgKey string) string {
	return filepath.Join(c.Dir, imgKey[:2], imgKey+".feat")
}

// CorruptError reports a cache entry that failed validation (it has been removed).
type CorruptError struct {
	Path   string
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("clip cache: corrupt entry %s (%s); removed", e.Path, e.Reason)
}

// Get returns the features [M·D] of the image whose ImageKey is imgKey. ok is false on a miss. A corrupt entry
// (including one that holds another image's features) is removed and reported as a miss with a *CorruptError, so
// the caller recomputes it. A key that is not a sha256 in lowercase hex is an error.
func (c *Cache) Get(imgKey string) (feat []float32, ok bool, err error) {
	img, err := imageDigest(imgKey)
	if err != nil {
		return nil, false, err
	}
	p := c.path(imgKey)
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("clip cache: %w", err)
	}
	feat, reason := c.read(f, img)
	f.Close()
	if reason != "" {
		os.Remove(p)
		return nil, false, &CorruptError{Path: p, Reason: reason}
	}
	return feat, true, nil
}

// read streams and validates one entry; reason is non-empty when it is corrupt.
func (c *Cache) read(f *os.File, img [32]byte) ([]float32, string) {
	n := c.Key.M * c.Key.D
	want := int64(headerSize + 4*n + 4)
	if st, err := f.Stat(); err != nil {
		return nil, err.Error()
	} else if st.Size() != want {
		return nil, fmt.Sprintf("length %d, want %d", st.Size(), want)
	}
	crc := crc32.New(crcTable)
	r := io.TeeReader(f, crc)
	var hdr [headerSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err.Error()
	}
	switch {
	case string(hdr[:8]) != cacheMagic:
		return nil, "bad magic"
	case binary.LittleEndian.Uint32(hdr[8:]) != cacheVersion:
		return nil, "unknown version"
	case int(binary.LittleEndian.Uint32(hdr[12:])) != c.Key.M || int(binary.LittleEndian.Uint32(hdr[16:])) != c.Key.D:
		return nil, "feature shape differs from the key"
	case [32]byte(hdr[20:52]) != c.digest:
		return nil, "written for another key"
	case [32]byte(hdr[52:84]) != img:
		return nil, "holds the features of another image (sha256 " + hex.EncodeToString(hdr[52:84]) + ")"
	}
	buf := make([]byte, 4*n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err.Error()
	}
	var sum [4]byte
	if _, err := io.ReadFull(f, sum[:]); err != nil {
		return nil, err.Error()
	}
	if binary.LittleEndian.Uint32(sum[:]) != crc.Sum32() {
		return nil, "checksum mismatch"
	}
	feat := make([]float32, n)
	if err := safetensors.DecodeFloat32(feat, buf, safetensors.F32); err != nil {
		return nil, err.Error()
	}
	return feat, ""
}

// Put stores the features [M·D] of an image atomically.
func (c *Cache) Put(imgKey string, feat []float32) error {
	img, err := imageDigest(imgKey)
	if err != nil {
		return err
	}
	n := c.Key.M * c.Key.D
	if len(feat) != n {
		return fmt.Errorf("clip cache: %d values for image %s, want %d×%d", len(feat), imgKey, c.Key.M, c.Key.D)
	}
	buf := make([]byte, headerSize+4*n+4)
	copy(buf, cacheMagic)
	binary.LittleEndian.PutUint32(buf[8:], cacheVersion)
	binary.LittleEndian.PutUint32(buf[12:], uint32(c.Key.M))
	binary.LittleEndian.PutUint32(buf[16:], uint32(c.Key.D))
	copy(buf[20:52], c.digest[:])
	copy(buf[52:84], img[:])
	safetensors.EncodeFloat32(buf[headerSize:headerSize+4*n], feat, safetensors.F32)
	binary.LittleEndian.PutUint32(buf[headerSize+4*n:], crc32.Checksum(buf[:headerSize+4*n], crcTable))
	p := c.path(imgKey)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("clip cache: %w", err)
	}
	if err := atomicfile.Write(p, buf, cacheFileMode); err != nil {
		return fmt.Errorf("clip cache: image %s: %w", imgKey, err)
	}
	return nil
}
