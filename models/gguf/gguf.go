// Package gguf reads GGUF files (the llama.cpp / ggml model container, versions 2 and 3): the header, every
// metadata value type, the tensor directory, and tensor data one tensor at a time, dequantised to float32.
//
// Open parses only the header, metadata and tensor directory; tensor data stays on disk and is read by offset
// (io.ReaderAt) when asked for, so a model can be converted tensor by tensor without holding the file in memory.
//
//	f, err := gguf.Open("SmolLM2-135M-Instruct.Q4_1.gguf")
//	if err != nil { ... }
//	defer f.Close()
//	arch, _ := f.Meta.String("general.architecture")           // "llama"
//	tokens, _ := f.Meta.Strings("tokenizer.ggml.tokens")      // []string
//	types, _ := f.Meta.Int32s("tokenizer.ggml.token_type")    // []int32
//	bos, _ := f.Meta.Uint("tokenizer.ggml.bos_token_id")      // any integer type
//	addBOS, err := f.Meta.Bool("tokenizer.ggml.add_bos_token")
//	if errors.Is(err, gguf.ErrNotFound) { ... }               // optional keys
//	info, _ := f.Tensor("token_embd.weight")                 // info.Dims = ne, innermost first
//	w, err := f.ReadFloat32("token_embd.weight")             // row-major [ne1, ne0]
//
// Dimensions follow ggml: Dims[0] (ne0) is the innermost, contiguous one, so a linear layer stored as [out, in]
// in PyTorch has Dims = [in, out]; TensorInfo.Shape gives the row-major (outermost-first) shape.
package gguf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"os"

	"github.com/adapterlab/llama-adapter/models/pinned"
)

// Magic is the first four bytes of a GGUF file.
const Magic = "GGUF"

// DefaultAlignment is the data alignment when general.alignment is absent.
const DefaultAlignment = 32

// maxDims is ggml's GGML_MAX_DIMS.
const maxDims = 4

// maxArrayDepth bounds nested metadata arrays (real files nest at most once).
const maxArrayDepth = 8

// TensorInfo describes one tensor of the directory.
type TensorInfo struct {
	Name   string
	Dims   []uint64 // ggml ne: Dims[0] is the innermost (contiguous) dimension
	Type   Type
	Offset uint64 // from the start of the data section
	Elems  uint64 // product of Dims
	Bytes  uint64 // size of the data in the file
}

// Shape returns the row-major shape (Dims reversed: outermost first), as a Go/NumPy array would have it.
func (t TensorInfo) Shape() []int {
	s := make([]int, len(t.Dims))
	for i, d := range t.Dims {
		s[len(t.Dims)-1-i] = int(d)
	}
	return s
}

// File is an open GGUF file: header, metadata and tensor directory in memory, data on disk.
type File struct {
	Path       string // name used in error messages
	Version    uint32
	Meta       *Metadata
	Tensors    []TensorInfo // in file order
	Alignment  uint64
	DataOffset int64 // absolute offset of the data section
	Size       int64 // file size

	r      io.ReaderAt
	closer io.Closer
	byName map[string]int
}

// Open opens and parses a GGUF file. Close it when done. A file installed with a source.json beside it (a pinned
// model) is first checked against its pinned sha256 (pinned.VerifyModel, hashed once per process).
func Open(path string) (*File, error) {
	if err := pinned.VerifyModel(path); err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	st, err := fh.Stat()
	if err != nil {
		fh.Close()
		return nil, fmt.Errorf("gguf %s: %w", path, err)
	}
	f, err := Parse(fh, st.Size(), path)
	if err != nil {
		fh.Close()
		return nil, err
	}
	f.closer = fh
	return f, nil
}

// Close closes the underlying file (a no-op for files from Parse).
func (f *File) Close() error {
	if f.closer == nil {
		return nil
	}
	err := f.closer.Close()
	f.closer = nil
	return err
}

// Tensor returns the directory entry of a tensor.
func (f *File) Tensor(name string) (TensorInfo, bool) {
	i, ok := f.byName[name]
	if !ok {
		return TensorInfo{}, false
	}
	return f.Tensors[i], true
}

// Parse reads the header, metadata and tensor directory from r (size bytes long); source names the file in errors.
// Every count is bounded by the bytes left before anything is allocated, and every tensor's data is checked to lie
// inside the file.
func Parse(r io.ReaderAt, size int64, source string) (*File, error) {
	p := &parser{r: bufio.NewReaderSize(io.NewSectionReader(r, 0, size), 1<<16), size: size, source: source}
	f, err := p.parse()
	if err != nil {
		return nil, err
	}
	f.r = r
	return f, nil
}

type parser struct {
	r      *bufio.Reader
	pos    int64
	size   int64
	source string
	buf    [8]byte
}

func (p *parser) errorf(format string, args ...any) error {
	return fmt.Errorf("gguf %s: "+format, append([]any{p.source}, args...)...)
}

func (p *parser) left() int64 { return p.size - p.pos }

func (p *parser) read(n int, what string) ([]byte, error) {
	b := p.buf[:n]
	if _, err := io.ReadFull(p.r, b); err != nil {
		return nil, p.truncated(what, err)
	}
	p.pos += int64(n)
	return b, nil
}

func (p *parser) truncated(what string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return p.errorf("header ends early (truncated file?) while reading %s at byte %d of %d", what, p.pos, p.size)
	}
	return p.errorf("reading %s: %w", what, err)
}

func (p *parser) u32(what string) (uint32, error) {
	b, err := p.read(4, what)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

func (p *parser) u64(what string) (uint64, error) {
	b, err := p.read(8, what)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

func (p *parser) str(what string) (string, error) {
	n, err := p.u64(what + " length")
	if err != nil {
		return "", err
	}
	if n > uint64(p.left()) {
		return "", p.errorf("%s length %d at byte %d runs past the end of the file (%d bytes)", what, n, p.pos, p.size)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(p.r, b); err != nil {
		return "", p.truncated(what, err)
	}
	p.pos += int64(n)
	return string(b), nil
}

func (p *parser) parse() (*File, error) {
	b, err := p.read(4, "magic")
	if err != nil {
		return nil, err
	}
	if string(b) != Magic {
		return nil, p.errorf("bad magic %q (not a GGUF file)", b)
	}
	version, err := p.u32("version")
	if err != nil {
		return nil, err
	}
	switch {
	case version == 2 || version == 3:
	case version == 1:
		return nil, p.errorf("unsupported GGUF version 1 (only 2 and 3)")
	case bits.ReverseBytes32(version) <= 3:
		return nil, p.errorf("big-endian GGUF (version %d byte-swapped) is not supported", bits.ReverseBytes32(version))
	default:
		return nil, p.errorf("unsupported GGUF version %d (only 2 and 3)", version)
	}
	nTensors, err := p.u64("tensor count")
	if err != nil {
		return nil, err
	}
	nKV, err := p.u64("metadata count")
	if err != nil {
		return nil, err
	}
	// A key/value takes at least 12 bytes (key length + type) and a tensor info at least 24 (+8 per dim).
	if nKV > uint64(p.left())/12 {
		return nil, p.errorf("metadata count %d cannot fit in the %d bytes left (truncated or corrupt header)", nKV, p.left())
	}
	if nTensors > uint64(p.left())/24 {
		return nil, p.errorf("tensor count %d cannot fit in the %d bytes left (truncated or corrupt header)", nTensors, p.left())
	}
	f := &File{Path: p.source, Version: version, Meta: newMetadata(p.source), Size: p.size, byName: map[string]int{}}
	for i := uint64(0); i < nKV; i++ {
		key, err := p.str(fmt.Sprintf("metadata key #%d", i))
		if err != nil {
			return nil, err
		}
		t, err := p.u32(fmt.Sprintf("type of metadata %q", key))
		if err != nil {
			return nil, err
		}
		v, err := p.value(ValueType(t), key, 0)
		if err != nil {
			return nil, err
		}
		f.Meta.set(key, ValueType(t), v)
	}
	f.Alignment = DefaultAlignment
	if f.Meta.Has("general.alignment") {
		a, err := f.Meta.Uint("general.alignment")
		if err != nil {
			return nil, err
		}
		if a == 0 || a&(a-1) != 0 || a > 1<<30 {
			return nil, p.errorf("general.alignment %d is not a power of two", a)
		}
		f.Alignment = a
	}
	f.Tensors = make([]TensorInfo, 0, nTensors)
	for i := uint64(0); i < nTensors; i++ {
		ti, err := p.tensorInfo(i)
		if err != nil {
			return nil, err
		}
		if _, dup := f.byName[ti.Name]; dup {
			return nil, p.errorf("tensor %q appears twice", ti.Name)
		}
		f.byName[ti.Name] = len(f.Tensors)
		f.Tensors = append(f.Tensors, ti)
	}
	f.DataOffset = (p.pos + int64(f.Alignment) - 1) / int64(f.Alignment) * int64(f.Alignment)
	dataLen := uint64(0)
	if p.size > f.DataOffset {
		dataLen = uint64(p.size - f.DataOffset)
	}
	for _, t := range f.Tensors {
		if t.Offset%f.Alignment != 0 {
			return nil, p.errorf("tensor %q: data offset %d is not a multiple of the alignment %d", t.Name, t.Offset, f.Alignment)
		}
		if t.Offset > dataLen || t.Bytes > dataLen-t.Offset {
			return nil, p.errorf("tensor %q: data [%d, %d) runs past the end of the file (data section has %d bytes; truncated file?)",
				t.Name, t.Offset, t.Offset+t.Bytes, dataLen)
		}
	}
	return f, nil
}

func (p *parser) tensorInfo(i uint64) (TensorInfo, error) {
	name, err := p.str(fmt.Sprintf("name of tensor #%d", i))
	if err != nil {
		return TensorInfo{}, err
	}
	nd, err := p.u32(fmt.Sprintf("dims of tensor %q", name))
	if err != nil {
		return TensorInfo{}, err
	}
	if nd == 0 || nd > maxDims {
		return TensorInfo{}, p.errorf("tensor %q has %d dimensions (want 1..%d)", name, nd, maxDims)
	}
	ti := TensorInfo{Name: name, Dims: make([]uint64, nd), Elems: 1}
	for d := range ti.Dims {
		if ti.Dims[d], err = p.u64(fmt.Sprintf("dims of tensor %q", name)); err != nil {
			return TensorInfo{}, err
		}
		hi, lo := bits.Mul64(ti.Elems, ti.Dims[d])
		if ti.Dims[d] == 0 || hi != 0 || lo > math.MaxInt64/8 {
			return TensorInfo{}, p.errorf("tensor %q has absurd dimensions %v", name, ti.Dims[:d+1])
		}
		ti.Elems = lo
	}
	t, err := p.u32(fmt.Sprintf("type of tensor %q", name))
	if err != nil {
		return TensorInfo{}, err
	}
	ti.Type = Type(t)
	if ti.Offset, err = p.u64(fmt.Sprintf("offset of tensor %q", name)); err != nil {
		return TensorInfo{}, err
	}
	be, bb := ti.Type.BlockSize()
	if be == 0 {
		return TensorInfo{}, p.errorf("tensor %q has unknown tensor type %d", name, t)
	}
	if ti.Dims[0]%uint64(be) != 0 {
		return TensorInfo{}, p.errorf("tensor %q: %s stores blocks of %d values but its row length ne0=%d is not a multiple",
			name, ti.Type, be, ti.Dims[0])
	}
	ti.Bytes = ti.Elems / uint64(be) * uint64(bb)
	return ti, nil
}

// minValueBytes is the smallest encoding of a value of each type, to bound array counts.
func minValueBytes(t ValueType) uint64 {
	switch t {
	case ValueUint8, ValueInt8, ValueBool:
		return 1
	case ValueUint16, ValueInt16:
		return 2
	case ValueUint32, ValueInt32, ValueFloat32:
		return 4
	case ValueString, ValueUint64, ValueInt64, ValueFloat64:
		return 8
	case ValueArray:
		return 12
	}
	return 0
}

func (p *parser) value(t ValueType, key string, depth int) (any, error) {
	what := fmt.Sprintf("value of metadata %q", key)
	switch t {
	case ValueUint8, ValueInt8, ValueBool:
		b, err := p.read(1, what)
		if err != nil {
			return nil, err
		}
		switch t {
		case ValueUint8:
			return b[0], nil
		case ValueInt8:
			return int8(b[0]), nil
		}
		if b[0] > 1 {
			return nil, p.errorf("metadata %q: bool byte %d is neither 0 nor 1", key, b[0])
		}
		return b[0] == 1, nil
	case ValueUint16, ValueInt16:
		b, err := p.read(2, what)
		if err != nil {
			return nil, err
		}
		u := binary.LittleEndian.Uint16(b)
		if t == ValueInt16 {
			return int16(u), nil
		}
		return u, nil
	case ValueUint32, ValueInt32, ValueFloat32:
		u, err := p.u32(what)
		if err != nil {
			return nil, err
		}
		switch t {
		case ValueInt32:
			return int32(u), nil
		case ValueFloat32:
			return math.Float32frombits(u), nil
		}
		return u, nil
	case ValueUint64, ValueInt64, ValueFloat64:
		u, err := p.u64(what)
		if err != nil {
			return nil, err
		}
		switch t {
		case ValueInt64:
			return int64(u), nil
		case ValueFloat64:
			return math.Float64frombits(u), nil
		}
		return u, nil
	case ValueString:
		return p.str(what)
	case ValueArray:
		if depth >= maxArrayDepth {
			return nil, p.errorf("metadata %q: arrays nested deeper than %d", key, maxArrayDepth)
		}
		et, err := p.u32(what)
		if err != nil {
			return nil, err
		}
		n, err := p.u64(what)
		if err != nil {
			return nil, err
		}
		elem := ValueType(et)
		mb := minValueBytes(elem)
		if mb == 0 {
			return nil, p.errorf("metadata %q: unknown array element type %d", key, et)
		}
		if n > uint64(p.left())/mb {
			return nil, p.errorf("metadata %q: array of %d %s cannot fit in the %d bytes left (truncated or corrupt header)", key, n, elem, p.left())
		}
		return p.array(elem, int(n), key, depth)
	}
	return nil, p.errorf("metadata %q has unknown value type %d", key, uint32(t))
}

// array reads n values of type elem into a typed slice.
func (p *parser) array(elem ValueType, n int, key string, depth int) (Array, error) {
	a := Array{Elem: elem}
	var err error
	switch elem {
	case ValueUint8:
		a.Values, err = fill[uint8](p, elem, n, key, depth)
	case ValueInt8:
		a.Values, err = fill[int8](p, elem, n, key, depth)
	case ValueUint16:
		a.Values, err = fill[uint16](p, elem, n, key, depth)
	case ValueInt16:
		a.Values, err = fill[int16](p, elem, n, key, depth)
	case ValueUint32:
		a.Values, err = fill[uint32](p, elem, n, key, depth)
	case ValueInt32:
		a.Values, err = fill[int32](p, elem, n, key, depth)
	case ValueFloat32:
		a.Values, err = fill[float32](p, elem, n, key, depth)
	case ValueBool:
		a.Values, err = fill[bool](p, elem, n, key, depth)
	case ValueString:
		a.Values, err = fill[string](p, elem, n, key, depth)
	case ValueUint64:
		a.Values, err = fill[uint64](p, elem, n, key, depth)
	case ValueInt64:
		a.Values, err = fill[int64](p, elem, n, key, depth)
	case ValueFloat64:
		a.Values, err = fill[float64](p, elem, n, key, depth)
	case ValueArray:
		// Nested arrays carry their own element type per entry.
		out := make([]Array, 0, n)
		for i := 0; i < n; i++ {
			v, err := p.value(ValueArray, key, depth+1)
			if err != nil {
				return Array{}, err
			}
			out = append(out, v.(Array))
		}
		a.Values = out
	}
	return a, err
}

func fill[T any](p *parser, elem ValueType, n int, key string, depth int) ([]T, error) {
	out := make([]T, n)
	for i := range out {
		v, err := p.value(elem, key, depth+1)
		if err != nil {
			return nil, err
		}
		out[i] = v.(T)
	}
	return out, nil
}
