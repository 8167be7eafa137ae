package torchpth

import (
	"fmt"

	"github.com/adapterlab/llama-adapter/models/safetensors"
	"github.com/nlpodyssey/gopickle/types"
)

// storageRef is what a persistent id resolves to while unpickling: only the storage's identity and size, never
// its bytes (those stay in the zip entry until a tensor is read).
type storageRef struct {
	key   string
	dtype string // safetensors dtype name
	numel int64  // elements of dtype
}

// tensorRef is what torch._utils._rebuild_tensor_v2 resolves to: a view into a storage.
type tensorRef struct {
	storage *storageRef
	offset  int64 // in elements
	shape   []int
	stride  []int
}

// storageClass stands for torch.FloatStorage and friends; it only carries the dtype.
type storageClass struct{ dtype string }

// storageDTypes maps the legacy typed-storage class names torch pickles to safetensors dtype names.
var storageDTypes = map[string]string{
	"FloatStorage":    safetensors.F32,
	"HalfStorage":     safetensors.F16,
	"BFloat16Storage": safetensors.BF16,
	"DoubleStorage":   safetensors.F64,
	"LongStorage":     safetensors.I64,
	"IntStorage":      safetensors.I32,
	"ShortStorage":    safetensors.I16,
	"CharStorage":     safetensors.I8,
	"ByteStorage":     safetensors.U8,
	"BoolStorage":     safetensors.BOOL,
	"UntypedStorage":  safetensors.U8,
}

// storageClassNames is the inverse of storageDTypes (UntypedStorage aside), used by the writer.
var storageClassNames = map[string]string{
	safetensors.F32:  "FloatStorage",
	safetensors.F16:  "HalfStorage",
	safetensors.BF16: "BFloat16Storage",
	safetensors.F64:  "DoubleStorage",
	safetensors.I64:  "LongStorage",
	safetensors.I32:  "IntStorage",
	safetensors.I16:  "ShortStorage",
	safetensors.I8:   "CharStorage",
	safetensors.U8:   "ByteStorage",
	safetensors.BOOL: "BoolStorage",
}

// callFunc adapts a Go function to a pickle callable (the target of REDUCE).
type callFunc func(args ...any) (any, error)

func (f callFunc) Call(args ...any) (any, error) { return f(args...) }

// opaque stands for any class the reader does not model (argparse.Namespace in a training checkpoint, numpy
// scalars, torch.device, ...): it can be constructed, called and given state, and is then ignored.
type opaque struct{ module, name string }

func (o *opaque) Call(args ...any) (any, error)  { return o, nil }
func (o *opaque) PyNew(args ...any) (any, error) { return o, nil }
func (o *opaque) PySetState(state any) error     { return nil }

// findClass resolves the globals a state-dict pickle uses. Tensor rebuild functions produce tensorRefs; storage
// classes carry their dtype; everything else becomes an opaque placeholder so that non-tensor entries of a
// checkpoint (hyper-parameters, optimizer settings) do not stop loading.
func findClass(module, name string) (any, error) {
	switch module + "." + name {
	case "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor":
		return callFunc(rebuildTensor), nil
	case "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state":
		// nn.Parameter(data, requires_grad, backward_hooks[, state]): the data tensor is all we need.
		return callFunc(func(args ...any) (any, error) {
			if len(args) < 1 {
				return nil, fmt.Errorf("%s.%s: no arguments", module, name)
			}
			return args[0], nil
		}), nil
	case "torch._tensor._rebuild_from_type_v2":
		// (func, new_type, args, state): a Tensor subclass; rebuild the plain tensor with func(*args).
		return callFunc(func(args ...any) (any, error) {
			if len(args) < 3 {
				return nil, fmt.Errorf("%s.%s: want 4 arguments, got %d", module, name, len(args))
			}
			fn, ok := args[0].(types.Callable)
			inner, ok2 := args[2].(*types.Tuple)
			if !ok || !ok2 {
				return nil, fmt.Errorf("%s.%s: unexpected arguments", module, name)
			}
			return fn.Call(*inner...)
		}), nil
	case "torch._utils._rebuild_qtensor", "torch._utils._rebuild_sparse_tensor", "torch._utils._rebuild_meta_tensor_no_storage",
		"torch._utils._rebuild_wrapper_subclass", "torch._utils._rebuild_nested_tensor", "torch._utils._rebuild_sparse_csr_tensor":
		return nil, fmt.Errorf("unsupported tensor kind %s.%s (only dense tensors are supported)", module, name)
	}
	if module == "torch" {
		if dt, ok := storageDTypes[name]; ok {
			return &storageClass{dtype: dt}, nil
		}
	}
	return &opaque{module: module, name: name}, nil
}

// rebuildTensor implements torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,
// backward_hooks[, metadata]) (and the older 4-argument _rebuild_tensor) without touching the storage bytes.
func rebuildTensor(args ...any) (any, error) {
	if len(args) < 4 {
		return nil, fmt.Errorf("_rebuild_tensor_v2: want at least 4 arguments, got %d", len(args))
	}
	st, ok := args[0].(*storageRef)
	if !ok {
		return nil, fmt.Errorf("_rebuild_tensor_v2: argument 0 is %T, not a storage", args[0])
	}
	off, ok := args[1].(int)
	if !ok || off < 0 {
		return nil, fmt.Errorf("_rebuild_tensor_v2: bad storage offset %v", args[1])
	}
	shape, err := intTuple(args[2])
	if err != nil {
		return nil, fmt.Errorf("_rebuild_tensor_v2: size: %w", err)
	}
	stride, err := intTuple(args[3])
	if err != nil {
		return nil, fmt.Errorf("_rebuild_tensor_v2: stride: %w", err)
	}
	if len(shape) != len(stride) {
		return nil, fmt.Errorf("_rebuild_tensor_v2: size %v and stride %v differ in rank", shape, stride)
	}
	return &tensorRef{storage: st, offset: int64(off), shape: shape, stride: stride}, nil
}

func intTuple(v any) ([]int, error) {
	t, ok := v.(*types.Tuple)
	if !ok {
		return nil, fmt.Errorf("want a tuple of ints, got %T", v)
	}
	out := make([]int, t.Len())
	for i := range out {
		n, ok := t.Get(i).(int)
		if !ok || n < 0 {
			return nil, fmt.Errorf("want a tuple of non-negative ints, got %v", t.Get(i))
		}
		out[i] = n
	}
	return out, nil
}

// persistentLoad resolves ('storage', storage_class, key, location, numel) to a storageRef, one per key.
func persistentLoad(seen map[string]*storageRef) func(pid any) (any, error) {
	return func(pid any) (any, error) {
		t, ok := pid.(*types.Tuple)
		if !ok || t.Len() < 5 {
			return nil, fmt.Errorf("persistent id: want ('storage', class, key, location, numel), got %v", pid)
		}
		if s, _ := t.Get(0).(string); s != "storage" {
			return nil, fmt.Errorf("persistent id: unknown type %v", t.Get(0))
		}
		cls, ok1 := t.Get(1).(*storageClass)
		key, ok2 := t.Get(2).(string)
		numel, ok3 := t.Get(4).(int)
		if !ok1 || !ok2 || !ok3 || numel < 0 {
			return nil, fmt.Errorf("persistent id: unexpected storage record %v", pid)
		}
		if s, ok := seen[key]; ok {
			return s, nil
		}
		s := &storageRef{key: key, dtype: cls.dtype, numel: int64(numel)}
		seen[key] = s
		return s, nil
	}
}
