package torchpth

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc64"
	"io"
	"math"
	"strconv"

	"github.com/adapterlab/llama-adapter/models/atomicfile"
	"github.com/adapterlab/llama-adapter/models/safetensors"
)

// archiveName is the folder every record is written under (torch.save uses "archive" for file objects; any
// single folder name loads).
const archiveName = "archive"

// storageAlignment is the byte alignment torch 2.x gives storage data inside the zip (and records in
// .storage_alignment), so that torch.load(..., mmap=True) can map the storages.
const storageAlignment = 64

// Tensor is one tensor to write: a contiguous row-major tensor with its own storage.
type Tensor struct {
	Name string
	// DType uses the safetensors names (F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL).
	DType string
	Shape []int
	Data  []byte // little-endian, len = numel × element size
}

// Float32Tensor makes a Tensor from float32 values stored as dtype (F32, F16 or BF16; rounding to nearest even).
func Float32Tensor(name string, shape []int, values []float32, dtype string) Tensor {
	data := make([]byte, safetensors.ElemSize(dtype)*len(values))
	safetensors.EncodeFloat32(data, values, dtype)
	return Tensor{Name: name, DType: dtype, Shape: append([]int(nil), shape...), Data: data}
}

// Write saves tensors as a state dict (a collections.OrderedDict of name → tensor, in the given order) in the
// zip format torch.load reads. The file is written to a temporary file in the same folder, synced and renamed
// over path, so a reader never sees a partial checkpoint.
func Write(path string, tensors []Tensor) error { return write(path, "", tensors) }

// WriteWrapped saves tensors as {key: {name: tensor, ...}} (plain dicts, in the given order): the layout of
// checkpoints that nest their state dict under one key, such as litgpt's adapter files ({"model": state_dict}).
// Open reads such a file with names "key.name" (see TrimPrefix).
func WriteWrapped(path, key string, tensors []Tensor) error {
	if key == "" {
		return fmt.Errorf("torchpth: writing %s: empty wrapping key", path)
	}
	return write(path, key, tensors)
}

func write(path, wrap string, tensors []Tensor) error {
	seen := make(map[string]bool, len(tensors))
	for _, t := range tensors {
		es := safetensors.ElemSize(t.DType)
		if _, ok := storageClassNames[t.DType]; !ok || es == 0 {
			return fmt.Errorf("torchpth: writing %s: tensor %q has unsupported dtype %q", path, t.Name, t.DType)
		}
		n := 1
		for _, d := range t.Shape {
			if d < 0 {
				return fmt.Errorf("torchpth: writing %s: tensor %q has negative dimension in shape %v", path, t.Name, t.Shape)
			}
			n *= d
		}
		if len(t.Data) != n*es {
			return fmt.Errorf("torchpth: writing %s: tensor %q has %d bytes for shape %v of %s", path, t.Name, len(t.Data), t.Shape, t.DType)
		}
		if seen[t.Name] {
			return fmt.Errorf("torchpth: writing %s: duplicate tensor %q", path, t.Name)
		}
		seen[t.Name] = true
	}
	pkl := encodeStateDict(tensors, wrap)
	// 0644: a checkpoint gets the usual permissions (CreateTemp alone would leave it private).
	if err := atomicfile.WriteFunc(path, 0o644, func(w io.Writer) error { return writeZip(w, pkl, tensors) }); err != nil {
		return fmt.Errorf("torchpth: %w", err)
	}
	return nil
}

// countWriter tracks the file offset, which the zip writer does not expose, to align storage data.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func writeZip(w io.Writer, pkl []byte, tensors []Tensor) error {
	cw := &countWriter{w: w}
	zw := zip.NewWriter(cw)
	// The zip writer emits an entry's data descriptor (16 bytes, 24 in zip64 form) only when the next entry
	// starts, so it is not yet counted when that entry's header offset is computed.
	pending := int64(0)
	record := func(name string, data []byte) error {
		// Pad the local header's extra field (id "FB", as torch does) so the data starts on an aligned offset.
		if err := zw.Flush(); err != nil {
			return err
		}
		full := archiveName + "/" + name
		start := cw.n + pending + 30 + int64(len(full)) + 4
		pad := (storageAlignment - start%storageAlignment) % storageAlignment
		extra := make([]byte, 4+pad)
		copy(extra, "FB")
		binary.LittleEndian.PutUint16(extra[2:], uint16(pad))
		for i := 4; i < len(extra); i++ {
			extra[i] = 'Z'
		}
		fw, err := zw.CreateHeader(&zip.FileHeader{Name: full, Method: zip.Store, Extra: extra})
		if err != nil {
			return err
		}
		pending = 16
		if int64(len(data)) >= math.MaxUint32 {
			pending = 24
		}
		_, err = fw.Write(data)
		return err
	}
	if err := record("data.pkl", pkl); err != nil {
		return err
	}
	if err := record(".format_version", []byte("1")); err != nil {
		return err
	}
	if err := record(".storage_alignment", []byte(strconv.Itoa(storageAlignment))); err != nil {
		return err
	}
	if err := record("byteorder", []byte("little")); err != nil {
		return err
	}
	h := crc64.New(crc64.MakeTable(crc64.ECMA))
	h.Write(pkl)
	for i, t := range tensors {
		if err := record("data/"+strconv.Itoa(i), t.Data); err != nil {
			return err
		}
		h.Write(t.Data)
	}
	if err := record("version", []byte("3\n")); err != nil {
		return err
	}
	// torch writes 40 random decimal digits; a content hash keeps the output deterministic.
	sum := h.Sum64()
	id := fmt.Sprintf("%020d%020d", sum, sum^0x9e3779b97f4a7c15)
	if err := record(".data/serialization_id", []byte(id)); err != nil {
		return err
	}
	return zw.Close()
}

// pickler emits the subset of pickle protocol 2 a state dict needs.
type pickler struct {
	buf  bytes.Buffer
	memo map[string]int // globals and repeated strings, by their text
}

func (p *pickler) op(b ...byte) { p.buf.Write(b) }

// put memoizes the object just pushed under key.
func (p *pickler) put(key string) {
	i := len(p.memo)
	p.memo[key] = i
	if i < 256 {
		p.op('q', byte(i))
	} else {
		p.op('r')
		binary.Write(&p.buf, binary.LittleEndian, uint32(i))
	}
}

// get pushes a memoized object; it reports false if key was never memoized.
func (p *pickler) get(key string) bool {
	i, ok := p.memo[key]
	if !ok {
		return false
	}
	if i < 256 {
		p.op('h', byte(i))
	} else {
		p.op('j')
		binary.Write(&p.buf, binary.LittleEndian, uint32(i))
	}
	return true
}

func (p *pickler) global(module, name string) {
	key := "g:" + module + "." + name
	if p.get(key) {
		return
	}
	p.op('c')
	p.buf.WriteString(module + "\n" + name + "\n")
	p.put(key)
}

func (p *pickler) str(s string, memo bool) {
	key := "s:" + s
	if memo && p.get(key) {
		return
	}
	p.op('X')
	binary.Write(&p.buf, binary.LittleEndian, uint32(len(s)))
	p.buf.WriteString(s)
	if memo {
		p.put(key)
	}
}

func (p *pickler) int(v int64) {
	switch {
	case v >= 0 && v < 1<<8:
		p.op('K', byte(v))
	case v >= 0 && v < 1<<16:
		p.op('M', byte(v), byte(v>>8))
	case v >= math.MinInt32 && v <= math.MaxInt32:
		p.op('J')
		binary.Write(&p.buf, binary.LittleEndian, int32(v))
	default:
		// LONG1: little-endian two's complement, 8 bytes is always enough for an int64.
		p.op(0x8a, 8)
		binary.Write(&p.buf, binary.LittleEndian, v)
	}
}

func (p *pickler) intTuple(xs []int) {
	switch len(xs) {
	case 0:
		p.op(')')
		return
	case 1, 2, 3:
		for _, x := range xs {
			p.int(int64(x))
		}
		p.op([]byte{0x85, 0x86, 0x87}[len(xs)-1])
		return
	}
	p.op('(')
	for _, x := range xs {
		p.int(int64(x))
	}
	p.op('t')
}

// encodeStateDict pickles OrderedDict([(name, _rebuild_tensor_v2(storage_i, 0, shape, stride, False,
// OrderedDict())), ...]) with storage i given by persistent id ('storage', torch.<X>Storage, "i", 'cpu', numel).
// With wrap set it pickles {wrap: {name: tensor, ...}} instead, with plain dicts (what torch.save writes for a
// dict of a state dict, e.g. litgpt's {"model": ...}).
func encodeStateDict(tensors []Tensor, wrap string) []byte {
	p := &pickler{memo: map[string]int{}}
	p.op(0x80, 2) // PROTO 2
	if wrap != "" {
		p.op('}') // EMPTY_DICT
		p.put("root")
		p.str(wrap, false)
		p.op('}')
		p.put("state")
	} else {
		p.global("collections", "OrderedDict")
		p.op(')', 'R') // OrderedDict()
		p.put("root")
	}
	const batch = 1000 // as Python's pickler batches SETITEMS
	for start := 0; start < len(tensors); start += batch {
		p.op('(')
		for i := start; i < min(start+batch, len(tensors)); i++ {
			t := tensors[i]
			p.str(t.Name, false)
			p.global("torch._utils", "_rebuild_tensor_v2")
			p.op('(')
			// persistent id tuple
			p.op('(')
			p.str("storage", true)
			p.global("torch", storageClassNames[t.DType])
			p.str(strconv.Itoa(i), false)
			p.str("cpu", true)
			numel := 1
			for _, d := range t.Shape {
				numel *= d
			}
			p.int(int64(numel))
			p.op('t', 'Q') // TUPLE, BINPERSID
			p.int(0)       // storage offset
			p.intTuple(t.Shape)
			stride := make([]int, len(t.Shape))
			s := 1
			for d := len(t.Shape) - 1; d >= 0; d-- {
				stride[d] = s
				s *= t.Shape[d]
			}
			p.intTuple(stride)
			p.op(0x89) // requires_grad = False
			p.global("collections", "OrderedDict")
			p.op(')', 'R') // backward_hooks = OrderedDict()
			p.op('t', 'R') // args tuple, call _rebuild_tensor_v2
		}
		p.op('u') // SETITEMS
	}
	if wrap != "" {
		p.op('s') // SETITEM: root[wrap] = state
	}
	p.op('.')
	return p.buf.Bytes()
}
