package gguf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/adapterlab/llama-adapter/datasets/assets"
)

// writer builds GGUF bytes for tests: every metadata type, tensors with raw data.
type writer struct {
	version   uint32
	alignment int
	kv, infos bytes.Buffer
	data      bytes.Buffer
	nKV, nT   int
}

func newWriter() *writer { return &writer{version: 3, alignment: 32} }

func put(b *bytes.Buffer, v any) { binary.Write(b, binary.LittleEndian, v) }

func putStr(b *bytes.Buffer, s string) {
	put(b, uint64(len(s)))
	b.WriteString(s)
}

// value encodes v (a Go scalar, string, typed slice or []Array) with its type tag when tagged.
func putValue(b *bytes.Buffer, v any, tagged bool) {
	tag := func(t ValueType) {
		if tagged {
			put(b, uint32(t))
		}
	}
	switch x := v.(type) {
	case uint8:
		tag(ValueUint8)
		put(b, x)
	case int8:
		tag(ValueInt8)
		put(b, x)
	case uint16:
		tag(ValueUint16)
		put(b, x)
	case int16:
		tag(ValueInt16)
		put(b, x)
	case uint32:
		tag(ValueUint32)
		put(b, x)
	case int32:
		tag(ValueInt32)
		put(b, x)
	case float32:
		tag(ValueFloat32)
		put(b, x)
	case bool:
		tag(ValueBool)
		put(b, x)
	case string:
		tag(ValueString)
		putStr(b, x)
	case uint64:
		tag(ValueUint64)
		put(b, x)
	case int64:
		tag(ValueInt64)
		put(b, x)
	case float64:
		tag(ValueFloat64)
		put(b, x)
	case Array:
		tag(ValueArray)
		put(b, uint32(x.Elem))
		put(b, uint64(x.Len()))
		rv := reflect.ValueOf(x.Values)
		for i := 0; i < rv.Len(); i++ {
			putValue(b, rv.Index(i).Interface(), false)
		}
	default:
		panic("writer: unsupported value")
	}
}

func (w *writer) meta(key string, v any) {
	putStr(&w.kv, key)
	putValue(&w.kv, v, true)
	w.nKV++
}

func (w *writer) tensor(name string, typ Type, dims []uint64, data []byte) {
	putStr(&w.infos, name)
	put(&w.infos, uint32(len(dims)))
	put(&w.infos, dims)
	put(&w.infos, uint32(typ))
	put(&w.infos, uint64(w.data.Len()))
	w.data.Write(data)
	for w.data.Len()%w.alignment != 0 {
		w.data.WriteByte(0)
	}
	w.nT++
}

func (w *writer) bytes() []byte {
	var b bytes.Buffer
	b.WriteString(Magic)
	put(&b, w.version)
	put(&b, uint64(w.nT))
	put(&b, uint64(w.nKV))
	b.Write(w.kv.Bytes())
	b.Write(w.infos.Bytes())
	for b.Len()%w.alignment != 0 {
		b.WriteByte(0)
	}
	b.Write(w.data.Bytes())
	return b.Bytes()
}

func parseBytes(b []byte, name string) (*File, error) {
	return Parse(bytes.NewReader(b), int64(len(b)), name)
}

func f32s(v ...float32) []byte {
	var b bytes.Buffer
	put(&b, v)
	return b.Bytes()
}

func TestMetadataAllTypes(t *testing.T) {
	w := newWriter()
	vals := map[string]any{
		"u8": uint8(200), "i8": int8(-5), "u16": uint16(60000), "i16": int16(-300), "u32": uint32(4e9),
		"i32": int32(-7), "f32": float32(1.5), "b": true, "s": "héllo", "u64": uint64(1 << 63), "i64": int64(-1 << 40),
		"f64":    2.25,
		"strs":   Array{ValueString, []string{"a", "", "Ġt"}},
		"i32s":   Array{ValueInt32, []int32{3, -1, 7}},
		"u8s":    Array{ValueUint8, []uint8{1, 2}},
		"f32s":   Array{ValueFloat32, []float32{0.5, -1}},
		"f64s":   Array{ValueFloat64, []float64{0.25}},
		"bools":  Array{ValueBool, []bool{true, false}},
		"nested": Array{ValueArray, []Array{{ValueString, []string{"x", "y"}}, {ValueString, []string{}}}},
	}
	keys := []string{"u8", "i8", "u16", "i16", "u32", "i32", "f32", "b", "s", "u64", "i64", "f64", "strs", "i32s",
		"u8s", "f32s", "f64s", "bools", "nested"}
	for _, k := range keys {
		w.meta(k, vals[k])
	}
	w.meta("general.alignment", uint32(64))
	w.alignment = 64
	w.tensor("a", TypeF32, []uint64{3}, f32s(1, 2, 3))
	w.tensor("b", TypeF32, []uint64{2, 2}, f32s(4, 5, 6, 7))
	f, err := parseBytes(w.bytes(), "all.gguf")
	if err != nil {
		t.Fatal(err)
	}
	m := f.Meta
	if got := m.Keys(); !reflect.DeepEqual(got, append(keys, "general.alignment")) {
		t.Errorf("keys %v", got)
	}
	for _, k := range keys {
		if v, _ := m.Value(k); !reflect.DeepEqual(v, vals[k]) {
			t.Errorf("%s = %#v, want %#v", k, v, vals[k])
		}
	}
	if f.Alignment != 64 || f.DataOffset%64 != 0 {
		t.Errorf("alignment %d, data offset %d", f.Alignment, f.DataOffset)
	}
	if s, _ := m.String("s"); s != "héllo" {
		t.Errorf("String = %q", s)
	}
	if s, _ := m.Strings("strs"); !reflect.DeepEqual(s, []string{"a", "", "Ġt"}) {
		t.Errorf("Strings = %q", s)
	}
	if v, _ := m.Int32s("i32s"); !reflect.DeepEqual(v, []int32{3, -1, 7}) {
		t.Errorf("Int32s = %v", v)
	}
	if v, _ := m.Int32s("u8s"); !reflect.DeepEqual(v, []int32{1, 2}) {
		t.Errorf("Int32s(u8s) = %v", v)
	}
	if v, _ := m.Float32s("f64s"); !reflect.DeepEqual(v, []float32{0.25}) {
		t.Errorf("Float32s(f64s) = %v", v)
	}
	// int32 elements convert too (they once came back as an empty slice without an error).
	if v, err := m.Float32s("i32s"); err != nil || !reflect.DeepEqual(v, []float32{3, -1, 7}) {
		t.Errorf("Float32s(i32s) = %v, %v", v, err)
	}
	if v, _ := m.Uint("u64"); v != 1<<63 {
		t.Errorf("Uint(u64) = %d", v)
	}
	if v, _ := m.Uint("u8"); v != 200 {
		t.Errorf("Uint(u8) = %d", v)
	}
	if v, _ := m.Int("i64"); v != -1<<40 {
		t.Errorf("Int(i64) = %d", v)
	}
	if v, _ := m.Float("f32"); v != 1.5 {
		t.Errorf("Float(f32) = %g", v)
	}
	if v, _ := m.Bool("b"); !v {
		t.Errorf("Bool = false")
	}
	// Wrong types and missing keys are errors naming the file and key; missing ones match ErrNotFound.
	for name, err := range map[string]error{
		"Uint(i8)":       second(m.Uint("i8")),
		"Int(u64)":       second(m.Int("u64")),
		"String(u8)":     second(m.String("u8")),
		"Strings(i32s)":  second(m.Strings("i32s")),
		"Int32s(strs)":   second(m.Int32s("strs")),
		"Int32s(f32s)":   second(m.Int32s("f32s")),
		"Float32s(strs)": second(m.Float32s("strs")),
		"Bool(s)":        second(m.Bool("s")),
	} {
		if err == nil || !strings.Contains(err.Error(), "all.gguf") || errors.Is(err, ErrNotFound) {
			t.Errorf("%s: error %v", name, err)
		}
	}
	if _, err := m.String("nope"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("missing key: %v", err)
	}
	b, _ := f.Tensor("b")
	if !reflect.DeepEqual(b.Shape(), []int{2, 2}) || b.Offset != 64 || b.Bytes != 16 {
		t.Errorf("tensor b %+v", b)
	}
	got, err := f.ReadFloat32("b")
	if err != nil || !reflect.DeepEqual(got, []float32{4, 5, 6, 7}) {
		t.Errorf("ReadFloat32(b) = %v, %v", got, err)
	}
	if got, err := f.ReadRows("b", 1, 2); err != nil || !reflect.DeepEqual(got, []float32{6, 7}) {
		t.Errorf("ReadRows(b, 1, 2) = %v, %v", got, err)
	}
}

func second[T any](_ T, err error) error { return err }

func TestOpenFile(t *testing.T) {
	w := newWriter()
	w.meta("general.architecture", "llama")
	w.tensor("x", TypeF32, []uint64{2}, f32s(1, -1))
	p := filepath.Join(t.TempDir(), "x.gguf")
	if err := os.WriteFile(p, w.bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := f.ReadFloat32("x"); err != nil || !reflect.DeepEqual(v, []float32{1, -1}) {
		t.Errorf("ReadFloat32 = %v, %v", v, err)
	}
	if _, err := f.ReadFloat32("y"); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("missing tensor: %v", err)
	}
	f.Close()
	if _, err := f.ReadFloat32("x"); err == nil {
		t.Errorf("read after close succeeded")
	}
}

func TestParseErrors(t *testing.T) {
	good := func() *writer {
		w := newWriter()
		w.meta("k", "v")
		w.tensor("t0", TypeF32, []uint64{4}, f32s(1, 2, 3, 4))
		return w
	}
	g := good().bytes()
	v1 := append([]byte(nil), g...)
	binary.LittleEndian.PutUint32(v1[4:], 1)
	v9 := append([]byte(nil), g...)
	binary.LittleEndian.PutUint32(v9[4:], 9)
	be := append([]byte(nil), g...)
	binary.BigEndian.PutUint32(be[4:], 3)
	hugeKV := append([]byte(nil), g...)
	binary.LittleEndian.PutUint64(hugeKV[16:], 1<<60)
	hugeT := append([]byte(nil), g...)
	binary.LittleEndian.PutUint64(hugeT[8:], 1<<40)
	unknownT := newWriter()
	unknownT.tensor("w", Type(77), []uint64{4}, make([]byte, 16))
	badRow := newWriter()
	badRow.tensor("q", TypeQ4_0, []uint64{48}, make([]byte, 18))
	absurd := newWriter()
	absurd.tensor("big", TypeF32, []uint64{1 << 40, 1 << 40}, nil)
	zero := newWriter()
	zero.tensor("z", TypeF32, []uint64{4, 0}, nil)
	bigArr := newWriter()
	bigArr.meta("a", Array{ValueString, []string{"x"}})
	ba := bigArr.bytes()
	// The array count sits after magic, version, counts, key (8+1), type (4) and element type (4).
	binary.LittleEndian.PutUint64(ba[24+9+4+4:], 1<<50)
	badVT := newWriter()
	badVT.meta("k", uint8(1))
	bv := badVT.bytes()
	binary.LittleEndian.PutUint32(bv[24+9:], 42)
	align := newWriter()
	align.meta("general.alignment", uint32(12))

	for _, c := range []struct {
		name  string
		data  []byte
		wants []string
	}{
		{"short", []byte("GG"), []string{"ends early", "magic"}},
		{"magic", append([]byte("GGML"), g[4:]...), []string{"bad magic"}},
		{"v1", v1, []string{"version 1"}},
		{"v9", v9, []string{"version 9"}},
		{"bigendian", be, []string{"big-endian"}},
		{"hugekv", hugeKV, []string{"metadata count", "cannot fit"}},
		{"huget", hugeT, []string{"tensor count", "cannot fit"}},
		{"unknowntype", unknownT.bytes(), []string{`tensor "w"`, "unknown tensor type 77"}},
		{"badrow", badRow.bytes(), []string{`tensor "q"`, "not a multiple"}},
		{"absurd", absurd.bytes(), []string{`tensor "big"`, "absurd"}},
		{"zero", zero.bytes(), []string{`tensor "z"`, "absurd"}},
		{"bigarray", ba, []string{`"a"`, "array of 1125899906842624 string cannot fit"}},
		{"valuetype", bv, []string{`"k"`, "unknown value type 42"}},
		{"alignment", align.bytes(), []string{"power of two"}},
		{"truncdata", g[:len(g)-20], []string{`tensor "t0"`, "past the end"}},
		{"trunchdr", g[:40], []string{"truncated"}},
	} {
		_, err := parseBytes(c.data, c.name+".gguf")
		assets.WantErr(t, err, c.name, append(c.wants, c.name+".gguf")...)
	}
	// Every prefix of a good file that cuts into its tensor data fails cleanly (no panic); what follows the data
	// is alignment padding.
	gf, err := parseBytes(g, "good.gguf")
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n < int(gf.DataOffset)+16; n++ {
		if _, err := parseBytes(g[:n], "prefix.gguf"); err == nil {
			t.Fatalf("prefix of %d bytes parsed", n)
		}
	}
}

// FuzzParseHeader feeds arbitrary bytes to the parser: it must return an error or a directory whose tensors all
// lie inside the input, never panic or allocate beyond the input's size.
func FuzzParseHeader(f *testing.F) {
	w := newWriter()
	w.meta("general.architecture", "llama")
	w.meta("arr", Array{ValueInt32, []int32{1, 2}})
	w.meta("nested", Array{ValueArray, []Array{{ValueString, []string{"a"}}}})
	w.tensor("t", TypeQ8_0, []uint64{32}, make([]byte, 34))
	f.Add(w.bytes())
	f.Add([]byte("GGUF\x03\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := parseBytes(b, "fuzz.gguf")
		if err != nil {
			return
		}
		for _, ti := range file.Tensors {
			if uint64(file.DataOffset)+ti.Offset+ti.Bytes > uint64(len(b)) {
				t.Fatalf("tensor %q [%d,+%d) past %d bytes", ti.Name, ti.Offset, ti.Bytes, len(b))
			}
			if ti.Type.CanDequantize() && ti.Elems < 1<<16 {
				if _, err := file.ReadFloat32(ti.Name); err != nil {
					t.Fatalf("reading %q: %v", ti.Name, err)
				}
			}
		}
	})
}
