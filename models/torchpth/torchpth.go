// Package torchpth reads and writes PyTorch checkpoints (.pth/.pt files written by torch.save) tensor by tensor.
//
// Only the zip format that torch.save has written since PyTorch 1.6 is supported: a zip archive holding
// "<prefix>/data.pkl" (the pickled object) and one entry "<prefix>/data/<key>" per storage. Open unpickles
// data.pkl with github.com/nlpodyssey/gopickle, but resolves storages to (key, dtype, size) records instead of
// loading them, and records for each tensor its storage, offset, shape and strides. A tensor's bytes are read
// only when asked for, from its own storage entry (with ReadAt on the file when the entry is stored
// uncompressed, as torch writes it), so peak memory while loading a checkpoint is about one tensor in its
// output dtype plus a 1 MiB read buffer; a non-contiguous view also holds the span of its storage it covers.
// This is what lets Meta's 13 GB LLaMA consolidated.*.pth files load without holding their storages in memory
// (measured on a 512 MiB file of eight 64 MiB float32 tensors: 69 MiB peak RSS for Open plus every
// ReadFloat32). Reads through ReadAt skip the zip CRC check; Open checks that every storage entry lies inside
// the file and is as large as the pickle says.
//
// Supported layouts: the pickled object must be a dict or OrderedDict. Tensors at its top level keep their keys
// as names ("layers.0.attention.wq.weight"); nested dicts, lists and tuples are flattened with "." (a training
// checkpoint {"model": state_dict, "epoch": 3} yields "model.layers.0..."; see TrimPrefix). Non-tensor values
// (ints, strings, argparse.Namespace, ...) are skipped. Tensors may be float32, float16, bfloat16, float64 or
// integer/bool (ReadRaw); nn.Parameter and views sharing one storage (with offsets and strides) are handled.
// Quantized, sparse and nested tensors, broadcast views with more elements than their storage, TorchScript
// archives and the legacy pre-1.6 (non-zip) format are rejected with a clear error.
//
// Write produces the same zip format (what torch 2.x writes: data.pkl with pickle protocol 2, .format_version,
// .storage_alignment with 64-byte aligned storages, byteorder, data/<key>, version "3"), atomically.
package torchpth

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/adapterlab/llama-adapter/models/safetensors"
	"github.com/gomlx/compute/dtypes/bfloat16"
	"github.com/nlpodyssey/gopickle/pickle"
	"github.com/nlpodyssey/gopickle/types"
)

// chunkSize bounds the read buffer used when converting contiguous tensors (a variable so tests can shrink it).
var chunkSize = 1 << 20

// Info describes one tensor of a checkpoint.
type Info struct {
	Name string
	// DType uses the safetensors names: F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL.
	DType string
	Shape []int
	// Stride is in elements, as torch records it; StorageOffset is the tensor's first element in its storage.
	Stride        []int
	StorageKey    string
	StorageOffset int64
}

// NumElements is the product of the shape (1 for a scalar).
func (i Info) NumElements() int {
	n := 1
	for _, d := range i.Shape {
		n *= d
	}
	return n
}

// Contiguous reports whether the tensor is stored in row-major order without gaps (the usual case).
func (i Info) Contiguous() bool {
	want := 1
	for d := len(i.Shape) - 1; d >= 0; d-- {
		if i.Shape[d] != 1 && i.Stride[d] != want {
			return false
		}
		want *= i.Shape[d]
	}
	return true
}

// storage is a storageRef bound to its zip entry.
type storage struct {
	*storageRef
	entry   *zip.File
	dataOff int64 // offset of the entry's bytes in the file, when stored uncompressed; -1 otherwise
}

// File is an open PyTorch zip checkpoint. Tensors may be read from several goroutines at once (reads use
// ReadAt); TrimPrefix must not run concurrently with reads.
type File struct {
	Path     string
	f        *os.File
	infos    map[string]Info
	storages map[string]*storage
	names    []string // in pickle order
}

// Open parses a .pth checkpoint's zip directory and data.pkl. No tensor data is read.
func Open(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("torchpth: %w", err)
	}
	pf, err := parse(f, path)
	if err != nil {
		f.Close()
		return nil, err
	}
	return pf, nil
}

// Close closes the underlying file.
func (pf *File) Close() error { return pf.f.Close() }

// Names returns the tensor names in the order the checkpoint pickled them.
func (pf *File) Names() []string { return append([]string(nil), pf.names...) }

// Info returns a tensor's description.
func (pf *File) Info(name string) (Info, bool) {
	i, ok := pf.infos[name]
	i.Shape = append([]int(nil), i.Shape...)
	i.Stride = append([]int(nil), i.Stride...)
	return i, ok
}

// TrimPrefix renames every tensor whose name starts with prefix (e.g. "model.") to the rest of its name and
// drops the other tensors: it selects the state dict nested under one key of a training checkpoint.
func (pf *File) TrimPrefix(prefix string) {
	infos := make(map[string]Info, len(pf.infos))
	var names []string
	for _, n := range pf.names {
		if rest, ok := strings.CutPrefix(n, prefix); ok && rest != "" {
			i := pf.infos[n]
			i.Name = rest
			infos[rest] = i
			names = append(names, rest)
		}
	}
	pf.infos, pf.names = infos, names
}

// errorf formats an error prefixed with the file's path; %w wraps as in fmt.Errorf.
func (pf *File) errorf(format string, args ...any) error {
	return fmt.Errorf("torchpth %s: "+format, append([]any{pf.Path}, args...)...)
}

// sniff classifies the file by its first bytes, to give a useful error for formats that are not zip.
func sniff(f *os.File, path string) error {
	var head [512]byte
	n, err := f.ReadAt(head[:], 0)
	if err != nil && err != io.EOF {
		return fmt.Errorf("torchpth %s: %w", path, err)
	}
	h := head[:n]
	switch {
	case bytes.HasPrefix(h, []byte("PK\x03\x04")):
		return nil
	case n == 0:
		return fmt.Errorf("torchpth %s: empty file", path)
	case h[0] == 0x80:
		return fmt.Errorf("torchpth %s: legacy (pre-1.6, non-zip) PyTorch pickle format is not supported; "+
			"re-save it with a recent torch: torch.save(torch.load(f), f)", path)
	case n >= 262 && string(h[257:262]) == "ustar":
		return fmt.Errorf("torchpth %s: legacy tar PyTorch format is not supported; re-save it with a recent torch", path)
	}
	return fmt.Errorf("torchpth %s: not a PyTorch zip checkpoint (starts with %q)", path, h[:min(n, 8)])
}

func parse(f *os.File, path string) (*File, error) {
	if err := sniff(f, path); err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("torchpth %s: %w", path, err)
	}
	zr, err := zip.NewReader(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("torchpth %s: reading zip directory (truncated or corrupt file?): %w", path, err)
	}
	pf := &File{Path: path, f: f, infos: map[string]Info{}, storages: map[string]*storage{}}

	// Every record lives under one folder (torch uses the file's base name, or "archive").
	var pkl *zip.File
	entries := make(map[string]*zip.File, len(zr.File))
	for _, e := range zr.File {
		entries[e.Name] = e
		if e.Name == "data.pkl" || strings.HasSuffix(e.Name, "/data.pkl") && strings.Count(e.Name, "/") == 1 {
			pkl = e
		}
		if strings.HasSuffix(e.Name, "constants.pkl") {
			return nil, pf.errorf("TorchScript archives are not supported (found %s)", e.Name)
		}
	}
	if pkl == nil {
		return nil, pf.errorf("no data.pkl record in the zip archive: not a torch.save checkpoint")
	}
	prefix := strings.TrimSuffix(pkl.Name, "data.pkl")
	if e, ok := entries[prefix+"byteorder"]; ok && e.UncompressedSize64 < 16 {
		if rc, err := e.Open(); err == nil {
			b, _ := io.ReadAll(rc)
			rc.Close()
			if string(b) != "little" {
				return nil, pf.errorf("storages are %q-endian; only little-endian checkpoints are supported", b)
			}
		}
	}

	refs := map[string]*storageRef{}
	root, err := unpickle(pkl, refs)
	if err != nil {
		return nil, pf.errorf("unpickling %s: %w", pkl.Name, err)
	}

	for key, ref := range refs {
		e, ok := entries[prefix+"data/"+key]
		if !ok {
			return nil, pf.errorf("storage %q has no zip entry %sdata/%s", key, prefix, key)
		}
		es := int64(safetensors.ElemSize(ref.dtype))
		if ref.numel > math.MaxInt64/16 || int64(e.UncompressedSize64) < ref.numel*es {
			return nil, pf.errorf("storage entry %s holds %d bytes, want %d (%d × %s)", e.Name, e.UncompressedSize64, ref.numel*es, ref.numel, ref.dtype)
		}
		s := &storage{storageRef: ref, entry: e, dataOff: -1}
		if e.Method == zip.Store {
			off, err := e.DataOffset()
			if err != nil {
				return nil, pf.errorf("storage entry %s: %w", e.Name, err)
			}
			if off+int64(e.UncompressedSize64) > st.Size() {
				return nil, pf.errorf("storage entry %s runs past the end of the file (truncated?)", e.Name)
			}
			s.dataOff = off
		}
		pf.storages[key] = s
	}

	if err := pf.collect("", root); err != nil {
		return nil, err
	}
	if len(pf.names) == 0 {
		return nil, pf.errorf("no tensors found (top-level object is %s)", pyTypeName(root))
	}
	return pf, nil
}

// unpickle runs the unpickler over data.pkl, converting any panic in the decoder into an error.
func unpickle(e *zip.File, refs map[string]*storageRef) (root any, err error) {
	if e.UncompressedSize64 > maxPickleSize {
		return nil, fmt.Errorf("%d bytes, more than the %d a state dict's pickle can plausibly need", e.UncompressedSize64, maxPickleSize)
	}
	rc, err := e.Open()
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(rc, maxPickleSize))
	rc.Close()
	if err != nil {
		return nil, err
	}
	if err := checkPickle(b); err != nil {
		return nil, err
	}
	defer func() {
		if r := recover(); r != nil {
			root, err = nil, fmt.Errorf("malformed pickle: %v", r)
		}
	}()
	u := pickle.NewUnpickler(bytes.NewReader(b))
	u.FindClass = findClass
	u.PersistentLoad = persistentLoad(refs)
	return u.Load()
}

func pyTypeName(v any) string {
	switch v := v.(type) {
	case *opaque:
		return v.module + "." + v.name
	case nil:
		return "None"
	}
	return fmt.Sprintf("%T", v)
}

// maxDepth and maxVisits bound the walk over the unpickled object: through the memo a pickle can build
// containers that hold themselves, or that share children so that the paths to them multiply at each level.
const (
	maxDepth  = 32
	maxVisits = 1 << 20
)

// collect walks the unpickled object, registering tensors under their dotted key paths.
func (pf *File) collect(prefix string, v any) error {
	visits := 0
	return pf.collectDepth(prefix, v, 0, &visits)
}

func (pf *File) collectDepth(prefix string, v any, depth int, visits *int) error {
	if depth > maxDepth {
		return pf.errorf("object nested more than %d levels deep at %q (self-referencing container?)", maxDepth, prefix)
	}
	if *visits++; *visits > maxVisits {
		return pf.errorf("more than %d objects to walk (containers shared many times over?)", maxVisits)
	}
	join := func(k string) string {
		if prefix == "" {
			return k
		}
		return prefix + "." + k
	}
	switch v := v.(type) {
	case *tensorRef:
		if prefix == "" {
			return pf.errorf("the checkpoint is a single tensor, not a dict of tensors")
		}
		return pf.addTensor(prefix, v)
	case *types.OrderedDict:
		for e := v.List.Front(); e != nil; e = e.Next() {
			entry := e.Value.(*types.OrderedDictEntry)
			if err := pf.collectDepth(join(keyString(entry.Key)), entry.Value, depth+1, visits); err != nil {
				return err
			}
		}
	case *types.Dict:
		for _, entry := range *v {
			if err := pf.collectDepth(join(keyString(entry.Key)), entry.Value, depth+1, visits); err != nil {
				return err
			}
		}
	case *types.List:
		for i, x := range *v {
			if err := pf.collectDepth(join(strconv.Itoa(i)), x, depth+1, visits); err != nil {
				return err
			}
		}
	case *types.Tuple:
		for i, x := range *v {
			if err := pf.collectDepth(join(strconv.Itoa(i)), x, depth+1, visits); err != nil {
				return err
			}
		}
	}
	return nil
}

func keyString(k any) string {
	switch k := k.(type) {
	case string:
		return k
	case int:
		return strconv.Itoa(k)
	}
	return fmt.Sprint(k)
}

func (pf *File) addTensor(name string, t *tensorRef) error {
	if _, dup := pf.infos[name]; dup {
		return pf.errorf("tensor %q appears twice after flattening nested keys", name)
	}
	s := pf.storages[t.storage.key]
	info := Info{Name: name, DType: s.dtype, Shape: t.shape, Stride: t.stride, StorageKey: s.key, StorageOffset: t.offset}
	// The element count must fit in memory arithmetic (a corrupt pickle can claim anything), and the elements the
	// view touches must lie inside its storage.
	numel := int64(1)
	for _, n := range t.shape {
		if n > 0 && numel > (1<<40)/int64(n) {
			return pf.errorf("tensor %q has implausible shape %v", name, t.shape)
		}
		numel *= int64(n)
	}
	if numel > s.numel {
		// Only broadcast (stride-0) views can have more elements than their storage; state dicts do not hold them,
		// and refusing them keeps every allocation within what the file itself holds.
		return pf.errorf("tensor %q (shape %v, stride %v) has more elements than its storage %q (%d): broadcast views are not supported",
			name, t.shape, t.stride, s.key, s.numel)
	}
	if numel > 0 {
		last := t.offset
		for d, n := range t.shape {
			if t.stride[d] > 1<<40 {
				return pf.errorf("tensor %q has implausible stride %v", name, t.stride)
			}
			last += int64(n-1) * int64(t.stride[d])
		}
		if last >= s.numel {
			return pf.errorf("tensor %q (offset %d, shape %v, stride %v) reaches element %d of storage %q, which has %d",
				name, t.offset, t.shape, t.stride, last, s.key, s.numel)
		}
	}
	pf.infos[name] = info
	pf.names = append(pf.names, name)
	return nil
}

// readAt reads len(dst) bytes of a storage starting at byte off.
func (pf *File) readAt(s *storage, dst []byte, off int64) error {
	if s.dataOff >= 0 {
		_, err := pf.f.ReadAt(dst, s.dataOff+off)
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	// A compressed entry (a re-zipped checkpoint) has to be decompressed from its start.
	rc, err := s.entry.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	if _, err := io.CopyN(io.Discard, rc, off); err != nil {
		return err
	}
	_, err = io.ReadFull(rc, dst)
	return err
}

// lookup returns a tensor's info and storage.
func (pf *File) lookup(name string) (Info, *storage, error) {
	info, ok := pf.infos[name]
	if !ok {
		return info, nil, pf.errorf("no tensor %q", name)
	}
	return info, pf.storages[info.StorageKey], nil
}

// ReadRaw returns a tensor's elements in row-major order as little-endian bytes of its stored dtype, in dst
// (resized as needed). Non-contiguous views are gathered through their strides.
func (pf *File) ReadRaw(name string, dst []byte) ([]byte, Info, error) {
	info, s, err := pf.lookup(name)
	if err != nil {
		return nil, info, err
	}
	es := safetensors.ElemSize(info.DType)
	n := info.NumElements() * es
	if cap(dst) < n {
		dst = make([]byte, n)
	}
	dst = dst[:n]
	if n == 0 {
		return dst, info, nil
	}
	if info.Contiguous() {
		if err := pf.readAt(s, dst, info.StorageOffset*int64(es)); err != nil {
			return nil, info, pf.errorf("tensor %q: reading storage %s: %w", name, s.entry.Name, err)
		}
		return dst, info, nil
	}
	// Read the span of the storage the view covers, then gather.
	span := int64(1)
	for d, sz := range info.Shape {
		span += int64(sz-1) * int64(info.Stride[d])
	}
	src := make([]byte, span*int64(es))
	if err := pf.readAt(s, src, info.StorageOffset*int64(es)); err != nil {
		return nil, info, pf.errorf("tensor %q: reading storage %s: %w", name, s.entry.Name, err)
	}
	gather(dst, src, info.Shape, info.Stride, es)
	return dst, info, nil
}

// gather copies a strided view of src into dst in row-major order.
func gather(dst, src []byte, shape, stride []int, es int) {
	rank := len(shape)
	idx := make([]int, rank)
	inner := shape[rank-1]
	innerStride := stride[rank-1]
	for o := 0; o < len(dst); {
		base := 0
		for d := 0; d < rank-1; d++ {
			base += idx[d] * stride[d]
		}
		if innerStride == 1 {
			copy(dst[o:o+inner*es], src[base*es:(base+inner)*es])
			o += inner * es
		} else {
			for j := 0; j < inner; j++ {
				p := (base + j*innerStride) * es
				copy(dst[o:o+es], src[p:p+es])
				o += es
			}
		}
		for d := rank - 2; d >= 0; d-- {
			idx[d]++
			if idx[d] < shape[d] {
				break
			}
			idx[d] = 0
		}
	}
}

// convert reads a tensor in chunks of at most chunkSize bytes (contiguous case) or whole (strided case) and hands
// each piece, with the index of its first element, to fn.
func (pf *File) convert(name string, fn func(raw []byte, first int, dtype string) error) (Info, error) {
	info, s, err := pf.lookup(name)
	if err != nil {
		return info, err
	}
	if !info.Contiguous() {
		raw, _, err := pf.ReadRaw(name, nil)
		if err != nil {
			return info, err
		}
		if err := fn(raw, 0, info.DType); err != nil {
			return info, pf.errorf("tensor %q: %w", name, err)
		}
		return info, nil
	}
	es := safetensors.ElemSize(info.DType)
	total := info.NumElements()
	per := max(chunkSize/es, 1)
	buf := make([]byte, min(total, per)*es)
	for first := 0; first < total; first += per {
		cnt := min(per, total-first)
		chunk := buf[:cnt*es]
		if err := pf.readAt(s, chunk, (info.StorageOffset+int64(first))*int64(es)); err != nil {
			return info, pf.errorf("tensor %q: reading storage %s: %w", name, s.entry.Name, err)
		}
		if err := fn(chunk, first, info.DType); err != nil {
			return info, pf.errorf("tensor %q: %w", name, err)
		}
	}
	return info, nil
}

// ReadFloat32 reads a floating-point tensor (float32, float16, bfloat16 or float64 storage) as float32, in
// row-major order, with its shape.
func (pf *File) ReadFloat32(name string) ([]float32, []int, error) {
	info, ok := pf.infos[name]
	if !ok {
		return nil, nil, pf.errorf("no tensor %q", name)
	}
	out := make([]float32, info.NumElements())
	if _, err := pf.convert(name, func(raw []byte, first int, dtype string) error {
		return safetensors.DecodeFloat32(out[first:first+len(raw)/safetensors.ElemSize(dtype)], raw, dtype)
	}); err != nil {
		return nil, nil, err
	}
	return out, append([]int(nil), info.Shape...), nil
}

// ReadBFloat16 reads a floating-point tensor as bfloat16: bfloat16 storage is returned bit for bit; float32 is
// rounded to nearest even; float16 and float64 go through float32 first.
func (pf *File) ReadBFloat16(name string) ([]bfloat16.BFloat16, []int, error) {
	info, ok := pf.infos[name]
	if !ok {
		return nil, nil, pf.errorf("no tensor %q", name)
	}
	out := make([]bfloat16.BFloat16, info.NumElements())
	if _, err := pf.convert(name, func(raw []byte, first int, dtype string) error {
		return safetensors.DecodeBFloat16(out[first:first+len(raw)/safetensors.ElemSize(dtype)], raw, dtype)
	}); err != nil {
		return nil, nil, err
	}
	return out, append([]int(nil), info.Shape...), nil
}
