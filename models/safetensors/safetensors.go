// Package safetensors reads and writes the Hugging Face safetensors format tensor by tensor.
//
// A file is an 8-byte little-endian header length, a JSON header mapping tensor names to
// {dtype, shape, data_offsets} (plus an optional "__metadata__" string map), then the raw little-endian data.
// Reads use ReadAt on the open file, so loading a model holds at most one tensor's bytes (plus its converted
// copy) in memory at a time: peak memory stays near the size of the converted model, not twice the checkpoint.
//
// Sharded checkpoints (model.safetensors.index.json with a "weight_map" of name → shard file) are opened as one
// Set by OpenModel.
//
// Files written by Write carry a content checksum in their metadata (ChecksumKey): a SHA-256 over the header's
// content and the data section, which Open verifies whenever it is present. Same-size corruption (a flipped bit,
// a block of 0xFF, a digit changed in the metadata) is then an error naming the file instead of silently different
// weights. Files without the key (other tools' files, older files of this project) load unverified.
package safetensors

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/adapterlab/llama-adapter/models/atomicfile"
)

// maxHeaderSize bounds the JSON header (the format's own limit is 100 MB).
const maxHeaderSize = 100 << 20

// DType names as they appear in safetensors headers.
const (
	F32  = "F32"
	F16  = "F16"
	BF16 = "BF16"
	F64  = "F64"
	I64  = "I64"
	I32  = "I32"
	I16  = "I16"
	I8   = "I8"
	U8   = "U8"
	BOOL = "BOOL"
)

// ElemSize returns the byte size of one element of a safetensors dtype, or 0 if unknown.
func ElemSize(dtype string) int {
	switch dtype {
	case F64, I64:
		return 8
	case F32, I32:
		return 4
	case F16, BF16, I16:
		return 2
	case I8, U8, BOOL:
		return 1
	}
	return 0
}

// Info describes one tensor in a file.
type Info struct {
	Name  string
	DType string
	Shape []int
	// Begin and End are byte offsets relative to the start of the data section.
	Begin, End int64
}

// NumElements is the product of the shape (1 for a scalar).
func (i Info) NumElements() int {
	n := 1
	for _, d := range i.Shape {
		n *= d
	}
	return n
}

// File is an open safetensors file.
type File struct {
	Path     string
	Metadata map[string]string
	// Checksummed reports that the file carried a checksum (ChecksumKey) and that it matched.
	Checksummed bool
	f           *os.File
	infos       map[string]Info
	names       []string // in data order
	dataOff     int64
}

type headerEntry struct {
	DType       string  `json:"dtype"`
	Shape       []int   `json:"shape"`
	DataOffsets []int64 `json:"data_offsets"`
}

// Open opens and validates a safetensors file: the header must parse, every tensor's byte range must match its
// dtype and shape and lie inside the file (a truncated file is caught here, before any tensor is read).
func Open(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	sf, err := parse(f, path)
	if err != nil {
		f.Close()
		return nil, err
	}
	return sf, nil
}

func parse(f *os.File, path string) (*File, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("safetensors %s: %w", path, err)
	}
	size := st.Size()
	var lenBuf [8]byte
	if _, err := f.ReadAt(lenBuf[:], 0); err != nil {
		return nil, fmt.Errorf("safetensors %s: file too short for a header (%d bytes): %w", path, size, err)
	}
	hlen := binary.LittleEndian.Uint64(lenBuf[:])
	if hlen > maxHeaderSize || int64(hlen)+8 > size {
		return nil, fmt.Errorf("safetensors %s: header length %d does not fit a file of %d bytes (truncated or not safetensors)",
			path, hlen, size)
	}
	hdr := make([]byte, hlen)
	if _, err := f.ReadAt(hdr, 8); err != nil {
		return nil, fmt.Errorf("safetensors %s: reading header: %w", path, err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(hdr, &raw); err != nil {
		return nil, fmt.Errorf("safetensors %s: malformed JSON header: %w", path, err)
	}
	sf := &File{Path: path, f: f, infos: make(map[string]Info, len(raw)), dataOff: 8 + int64(hlen)}
	dataSize := size - sf.dataOff
	entries := make(map[string]headerEntry, len(raw))
	for name, msg := range raw {
		if name == "__metadata__" {
			if err := json.Unmarshal(msg, &sf.Metadata); err != nil {
				return nil, fmt.Errorf("safetensors %s: malformed __metadata__: %w", path, err)
			}
			continue
		}
		var e headerEntry
		if err := json.Unmarshal(msg, &e); err != nil {
			return nil, fmt.Errorf("safetensors %s: tensor %q: malformed header entry: %w", path, name, err)
		}
		es := ElemSize(e.DType)
		if es == 0 {
			return nil, fmt.Errorf("safetensors %s: tensor %q: unsupported dtype %q", path, name, e.DType)
		}
		if len(e.DataOffsets) != 2 || e.DataOffsets[0] < 0 || e.DataOffsets[1] < e.DataOffsets[0] {
			return nil, fmt.Errorf("safetensors %s: tensor %q: bad data_offsets %v", path, name, e.DataOffsets)
		}
		entries[name] = e
		info := Info{Name: name, DType: e.DType, Shape: e.Shape, Begin: e.DataOffsets[0], End: e.DataOffsets[1]}
		for _, d := range e.Shape {
			if d < 0 {
				return nil, fmt.Errorf("safetensors %s: tensor %q: negative dimension in shape %v", path, name, e.Shape)
			}
		}
		if want := int64(info.NumElements()) * int64(es); info.End-info.Begin != want {
			return nil, fmt.Errorf("safetensors %s: tensor %q: %d bytes for shape %v of %s (want %d)",
				path, name, info.End-info.Begin, e.Shape, e.DType, want)
		}
		if info.End > dataSize {
			return nil, fmt.Errorf("safetensors %s: tensor %q ends at byte %d but the data section has only %d bytes (file truncated?)",
				path, name, info.End, dataSize)
		}
		sf.infos[name] = info
		sf.names = append(sf.names, name)
	}
	sort.Slice(sf.names, func(a, b int) bool { return sf.infos[sf.names[a]].Begin < sf.infos[sf.names[b]].Begin })
	if want, ok := sf.Metadata[ChecksumKey]; ok {
		got, err := checksum(entries, sf.Metadata, io.NewSectionReader(f, sf.dataOff, dataSize))
		if err != nil {
			return nil, fmt.Errorf("safetensors %s: reading data for the checksum: %w", path, err)
		}
		if got != want {
			return nil, fmt.Errorf("safetensors %s: checksum mismatch (%s %s, content hashes to %s): the file is corrupted",
				path, ChecksumKey, want, got)
		}
		sf.Checksummed = true
	}
	return sf, nil
}

// ChecksumKey is the metadata key under which Write stores the file's checksum: the hex SHA-256 of a canonical
// encoding of the header (every tensor entry and every metadata pair except this one) followed by the data
// section. Hashing the header's content rather than its bytes keeps the checksum valid when another tool
// re-serialises the header with other spacing or key order.
const ChecksumKey = "__sha256__"

// checksumTag versions the checksum's definition.
const checksumTag = "safetensors-sha256-v1\n"

// checksum hashes the canonical header (entries and metadata without ChecksumKey) and the data read from data.
func checksum(entries map[string]headerEntry, meta map[string]string, data io.Reader) (string, error) {
	canon := make(map[string]any, len(entries)+1)
	for name, e := range entries {
		canon[name] = e
	}
	m := make(map[string]string, len(meta))
	for k, v := range meta {
		if k != ChecksumKey {
			m[k] = v
		}
	}
	canon["__metadata__"] = m
	hdr, err := json.Marshal(canon) // map keys are sorted: one encoding per content
	if err != nil {
		return "", err
	}
	h := sha256.New()
	h.Write([]byte(checksumTag))
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(hdr)))
	h.Write(lenBuf[:])
	h.Write(hdr)
	if _, err := io.Copy(h, data); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Close closes the file.
func (sf *File) Close() error { return sf.f.Close() }

// Names lists the tensors in data order.
func (sf *File) Names() []string { return append([]string(nil), sf.names...) }

// Info returns a tensor's description.
func (sf *File) Info(name string) (Info, bool) {
	i, ok := sf.infos[name]
	return i, ok
}

// ReadRaw reads a tensor's raw little-endian bytes into dst (resized as needed) and returns it.
func (sf *File) ReadRaw(name string, dst []byte) ([]byte, Info, error) {
	info, ok := sf.infos[name]
	if !ok {
		return nil, info, fmt.Errorf("safetensors %s: no tensor %q", sf.Path, name)
	}
	n := int(info.End - info.Begin)
	if cap(dst) < n {
		dst = make([]byte, n)
	}
	dst = dst[:n]
	if _, err := sf.f.ReadAt(dst, sf.dataOff+info.Begin); err != nil {
		return nil, info, fmt.Errorf("safetensors %s: reading tensor %q: %w", sf.Path, name, err)
	}
	return dst, info, nil
}

// ReadFloat32 reads a floating-point tensor (F32, F16, BF16 or F64 on disk) as float32.
func (sf *File) ReadFloat32(name string) ([]float32, []int, error) {
	raw, info, err := sf.ReadRaw(name, nil)
	if err != nil {
		return nil, nil, err
	}
	out := make([]float32, info.NumElements())
	if err := DecodeFloat32(out, raw, info.DType); err != nil {
		return nil, nil, fmt.Errorf("safetensors %s: tensor %q: %w", sf.Path, name, err)
	}
	return out, info.Shape, nil
}

// ReadInt64 reads an integer tensor (I64, I32, I16, I8, U8) as int64.
func (sf *File) ReadInt64(name string) ([]int64, []int, error) {
	raw, info, err := sf.ReadRaw(name, nil)
	if err != nil {
		return nil, nil, err
	}
	n := info.NumElements()
	out := make([]int64, n)
	switch info.DType {
	case I64:
		for i := range out {
			out[i] = int64(binary.LittleEndian.Uint64(raw[8*i:]))
		}
	case I32:
		for i := range out {
			out[i] = int64(int32(binary.LittleEndian.Uint32(raw[4*i:])))
		}
	case I16:
		for i := range out {
			out[i] = int64(int16(binary.LittleEndian.Uint16(raw[2*i:])))
		}
	case I8:
		for i := range out {
			out[i] = int64(int8(raw[i]))
		}
	case U8:
		for i := range out {
			out[i] = int64(raw[i])
		}
	default:
		return nil, nil, fmt.Errorf("safetensors %s: tensor %q is %s, not an integer type", sf.Path, name, info.DType)
	}
	return out, info.Shape, nil
}

// Set is one logical checkpoint spread over one or more files (a sharded model).
type Set struct {
	Files []*File
	owner map[string]*File
}

// IndexFile is the name of a sharded checkpoint's index.
const IndexFile = "model.safetensors.index.json"

// OpenModel opens a checkpoint given a .safetensors file, an index .json, or a folder holding either
// model.safetensors.index.json or model.safetensors (or a single *.safetensors file).
func OpenModel(path string) (*Set, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	if st.IsDir() {
		if _, err := os.Stat(filepath.Join(path, IndexFile)); err == nil {
			return openIndex(filepath.Join(path, IndexFile))
		}
		if _, err := os.Stat(filepath.Join(path, "model.safetensors")); err == nil {
			return openFiles(filepath.Join(path, "model.safetensors"))
		}
		matches, _ := filepath.Glob(filepath.Join(path, "*.safetensors"))
		if len(matches) == 1 {
			return openFiles(matches[0])
		}
		return nil, fmt.Errorf("safetensors: %s holds neither %s nor model.safetensors (found %d *.safetensors files)",
			path, IndexFile, len(matches))
	}
	if strings.HasSuffix(path, ".json") {
		return openIndex(path)
	}
	return openFiles(path)
}

func openFiles(paths ...string) (*Set, error) {
	s := &Set{owner: map[string]*File{}}
	for _, p := range paths {
		f, err := Open(p)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.Files = append(s.Files, f)
		for _, n := range f.names {
			if prev, dup := s.owner[n]; dup {
				s.Close()
				return nil, fmt.Errorf("safetensors: tensor %q is in both %s and %s", n, prev.Path, p)
			}
			s.owner[n] = f
		}
	}
	return s, nil
}

func openIndex(indexPath string) (*Set, error) {
	data, err := os.ReadFile(indexPath)
	if err != nil {
		return nil, fmt.Errorf("safetensors index: %w", err)
	}
	var idx struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, fmt.Errorf("safetensors index %s: malformed JSON: %w", indexPath, err)
	}
	if len(idx.WeightMap) == 0 {
		return nil, fmt.Errorf("safetensors index %s: empty or missing weight_map", indexPath)
	}
	dir := filepath.Dir(indexPath)
	seen := map[string]bool{}
	var shards []string
	for _, shard := range idx.WeightMap {
		if !seen[shard] {
			seen[shard] = true
			shards = append(shards, filepath.Join(dir, shard))
		}
	}
	sort.Strings(shards)
	s, err := openFiles(shards...)
	if err != nil {
		return nil, fmt.Errorf("safetensors index %s: %w", indexPath, err)
	}
	for name, shard := range idx.WeightMap {
		f, ok := s.owner[name]
		if !ok || filepath.Base(f.Path) != filepath.Base(shard) {
			s.Close()
			return nil, fmt.Errorf("safetensors index %s: tensor %q should be in %s but is not", indexPath, name, shard)
		}
	}
	return s, nil
}

// Close closes every file of the set.
func (s *Set) Close() error {
	var first error
	for _, f := range s.Files {
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Names lists all tensors of the set, sorted.
func (s *Set) Names() []string {
	names := make([]string, 0, len(s.owner))
	for n := range s.owner {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Has reports whether the set holds a tensor.
func (s *Set) Has(name string) bool { _, ok := s.owner[name]; return ok }

// Info returns a tensor's description and the file that holds it.
func (s *Set) Info(name string) (Info, *File, bool) {
	f, ok := s.owner[name]
	if !ok {
		return Info{}, nil, false
	}
	i, _ := f.Info(name)
	return i, f, true
}

// ReadFloat32 reads a floating-point tensor from whichever file holds it.
func (s *Set) ReadFloat32(name string) ([]float32, []int, error) {
	f, ok := s.owner[name]
	if !ok {
		return nil, nil, fmt.Errorf("safetensors: missing tensor %q (files: %s)", name, s.paths())
	}
	return f.ReadFloat32(name)
}

// ReadRaw reads a tensor's raw bytes from whichever file holds it.
func (s *Set) ReadRaw(name string, dst []byte) ([]byte, Info, error) {
	f, ok := s.owner[name]
	if !ok {
		return nil, Info{}, fmt.Errorf("safetensors: missing tensor %q (files: %s)", name, s.paths())
	}
	return f.ReadRaw(name, dst)
}

func (s *Set) paths() string {
	var ps []string
	for _, f := range s.Files {
		ps = append(ps, f.Path)
	}
	return strings.Join(ps, ", ")
}

// Tensor is one tensor to write.
type Tensor struct {
	Name  string
	DType string
	Shape []int
	Data  []byte // little-endian, len = numel * ElemSize(DType)
}

// Float32Tensor makes a Tensor from float32 values stored as dtype (F32, F16 or BF16).
func Float32Tensor(name string, shape []int, values []float32, dtype string) Tensor {
	es := ElemSize(dtype)
	data := make([]byte, es*len(values))
	EncodeFloat32(data, values, dtype)
	return Tensor{Name: name, DType: dtype, Shape: append([]int(nil), shape...), Data: data}
}

// Write writes tensors (in the given order) and metadata to path atomically: a temporary file in the same folder
// is written, synced and renamed over path, so a reader never sees a partial file. The metadata gains the file's
// checksum under ChecksumKey (which callers may not set themselves).
func Write(path string, tensors []Tensor, metadata map[string]string) error {
	if _, ok := metadata[ChecksumKey]; ok {
		return fmt.Errorf("safetensors: writing %s: metadata key %s is reserved for the file's checksum", path, ChecksumKey)
	}
	header := make(map[string]any, len(tensors)+1)
	var off int64
	for _, t := range tensors {
		es := ElemSize(t.DType)
		n := 1
		for _, d := range t.Shape {
			n *= d
		}
		if es == 0 || len(t.Data) != n*es {
			return fmt.Errorf("safetensors: writing %s: tensor %q has %d bytes for shape %v of %s", path, t.Name, len(t.Data), t.Shape, t.DType)
		}
		if _, dup := header[t.Name]; dup {
			return fmt.Errorf("safetensors: writing %s: duplicate tensor %q", path, t.Name)
		}
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		header[t.Name] = headerEntry{DType: t.DType, Shape: shape, DataOffsets: []int64{off, off + int64(len(t.Data))}}
		off += int64(len(t.Data))
	}
	sum, err := writeChecksum(header, metadata, tensors)
	if err != nil {
		return fmt.Errorf("safetensors: writing %s: checksum: %w", path, err)
	}
	meta := make(map[string]string, len(metadata)+1)
	for k, v := range metadata {
		meta[k] = v
	}
	meta[ChecksumKey] = sum
	header["__metadata__"] = meta
	hdr, err := json.Marshal(header)
	if err != nil {
		return fmt.Errorf("safetensors: writing %s: %w", path, err)
	}
	// Pad the header with spaces to 8-byte alignment, as the reference implementation does.
	for len(hdr)%8 != 0 {
		hdr = append(hdr, ' ')
	}
	// 0644: a checkpoint gets the usual permissions (CreateTemp alone would leave it private).
	err = atomicfile.WriteFunc(path, 0o644, func(w io.Writer) error {
		var lenBuf [8]byte
		binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(hdr)))
		if _, err := w.Write(lenBuf[:]); err != nil {
			return err
		}
		if _, err := w.Write(hdr); err != nil {
			return err
		}
		for _, t := range tensors {
			if _, err := w.Write(t.Data); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	return nil
}

// writeChecksum computes the checksum a reader will compute for these header entries, metadata and tensors. The
// header goes through a JSON round trip first so that the hash sees exactly the strings a reader parses (JSON
// encoding replaces invalid UTF-8, for example).
func writeChecksum(header map[string]any, metadata map[string]string, tensors []Tensor) (string, error) {
	raw, err := json.Marshal(header)
	if err != nil {
		return "", err
	}
	var entries map[string]headerEntry
	if err := json.Unmarshal(raw, &entries); err != nil {
		return "", err
	}
	raw, err = json.Marshal(metadata)
	if err != nil {
		return "", err
	}
	var meta map[string]string
	if err := json.Unmarshal(raw, &meta); err != nil {
		return "", err
	}
	readers := make([]io.Reader, len(tensors))
	for i, t := range tensors {
		readers[i] = bytes.NewReader(t.Data)
	}
	return checksum(entries, meta, io.MultiReader(readers...))
}
