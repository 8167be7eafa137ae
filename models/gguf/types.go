package gguf

import "fmt"

// Type is a ggml tensor type (the storage format of a tensor's data).
type Type uint32

// Tensor types, numbered as in ggml. Only those listed have a known size; Dequantize supports F32, F16, BF16,
// Q4_0, Q4_1, Q8_0, Q4_K, Q5_K and Q6_K.
const (
	TypeF32    Type = 0
	TypeF16    Type = 1
	TypeQ4_0   Type = 2
	TypeQ4_1   Type = 3
	TypeQ5_0   Type = 6
	TypeQ5_1   Type = 7
	TypeQ8_0   Type = 8
	TypeQ8_1   Type = 9
	TypeQ2_K   Type = 10
	TypeQ3_K   Type = 11
	TypeQ4_K   Type = 12
	TypeQ5_K   Type = 13
	TypeQ6_K   Type = 14
	TypeQ8_K   Type = 15
	TypeIQ4_NL Type = 20
	TypeIQ4_XS Type = 23
	TypeI8     Type = 24
	TypeI16    Type = 25
	TypeI32    Type = 26
	TypeI64    Type = 27
	TypeF64    Type = 28
	TypeBF16   Type = 30
)

// qk is the number of values in a super-block of the K-quants.
const qk = 256

type typeInfo struct {
	name        string
	blockElems  int // values per block
	blockBytes  int // bytes per block
	dequantizes bool
}

var typeTable = map[Type]typeInfo{
	TypeF32:    {"F32", 1, 4, true},
	TypeF16:    {"F16", 1, 2, true},
	TypeQ4_0:   {"Q4_0", 32, 18, true},
	TypeQ4_1:   {"Q4_1", 32, 20, true},
	TypeQ5_0:   {"Q5_0", 32, 22, false},
	TypeQ5_1:   {"Q5_1", 32, 24, false},
	TypeQ8_0:   {"Q8_0", 32, 34, true},
	TypeQ8_1:   {"Q8_1", 32, 36, false},
	TypeQ2_K:   {"Q2_K", qk, 84, false},
	TypeQ3_K:   {"Q3_K", qk, 110, false},
	TypeQ4_K:   {"Q4_K", qk, 144, true},
	TypeQ5_K:   {"Q5_K", qk, 176, true},
	TypeQ6_K:   {"Q6_K", qk, 210, true},
	TypeQ8_K:   {"Q8_K", qk, 292, false},
	TypeIQ4_NL: {"IQ4_NL", 32, 18, false},
	TypeIQ4_XS: {"IQ4_XS", qk, 136, false},
	TypeI8:     {"I8", 1, 1, false},
	TypeI16:    {"I16", 1, 2, false},
	TypeI32:    {"I32", 1, 4, false},
	TypeI64:    {"I64", 1, 8, false},
	TypeF64:    {"F64", 1, 8, false},
	TypeBF16:   {"BF16", 1, 2, true},
}

func (t Type) String() string {
	if ti, ok := typeTable[t]; ok {
		return ti.name
	}
	return fmt.Sprintf("Type(%d)", uint32(t))
}

// Known reports whether the type's block layout (and so its data size) is known.
func (t Type) Known() bool { _, ok := typeTable[t]; return ok }

// CanDequantize reports whether Dequantize supports the type.
func (t Type) CanDequantize() bool { return typeTable[t].dequantizes }

// BlockSize returns the number of values per block and the bytes per block (0, 0 for unknown types).
func (t Type) BlockSize() (elems, bytes int) {
	ti := typeTable[t]
	return ti.blockElems, ti.blockBytes
}
