package gguf

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"
)

// The tests below build blocks from known scales, mins and quants, pack them into bytes as ggml's block structs
// lay them out, decode them and compare with the defining formula evaluated in float64.

// Half-precision values used as block scales (exactly representable).
const (
	hHalf    = 0x3800 // 0.5
	hEighth  = 0x3000 // 0.125
	hM0p0123 = 0xA24C // ≈ −0.01233
)

func putHalf(b []byte, h uint16) { binary.LittleEndian.PutUint16(b, h) }

func checkBlock(t *testing.T, name string, typ Type, raw []byte, want []float64) {
	t.Helper()
	got := make([]float32, len(want))
	if err := Dequantize(got, raw, typ); err != nil {
		t.Fatal(err)
	}
	worst := 0.0
	for i := range want {
		d := math.Abs(float64(got[i]) - want[i])
		// float32 rounding of the two products: a few ulps of the largest term.
		if d > 1e-6*max(1, math.Abs(want[i])) {
			t.Fatalf("%s: value %d = %g, want %g", name, i, got[i], want[i])
		}
		worst = max(worst, d)
	}
	t.Logf("%s: %d values, max |diff| vs formula %.3g", name, len(want), worst)
}

func TestHalfToFloat32Exhaustive(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		s, e, m := h>>15, (h>>10)&31, h&1023
		var want float64
		switch {
		case e == 31 && m == 0:
			want = math.Inf(1)
		case e == 31:
			if got := HalfToFloat32(uint16(h)); !math.IsNaN(float64(got)) {
				t.Fatalf("%#04x: %g, want NaN", h, got)
			}
			continue
		case e == 0:
			want = float64(m) / 1024 * math.Pow(2, -14)
		default:
			want = (1 + float64(m)/1024) * math.Pow(2, float64(e-15))
		}
		if s == 1 {
			want = -want
		}
		if got := HalfToFloat32(uint16(h)); float64(got) != want || math.Signbit(float64(got)) != (s == 1) {
			t.Fatalf("%#04x: %g, want %g", h, got, want)
		}
	}
}

func TestDequantFloat(t *testing.T) {
	raw := []byte{0x00, 0x3c, 0x00, 0xc0} // F16 1, −2
	checkBlock(t, "F16", TypeF16, raw, []float64{1, -2})
	raw = []byte{0x80, 0x3f, 0x49, 0x40} // BF16 1, 3.140625
	checkBlock(t, "BF16", TypeBF16, raw, []float64{1, 3.140625})
	raw = make([]byte, 8)
	binary.LittleEndian.PutUint32(raw, math.Float32bits(-0.75))
	binary.LittleEndian.PutUint32(raw[4:], math.Float32bits(1e-20))
	checkBlock(t, "F32", TypeF32, raw, []float64{-0.75, float64(float32(1e-20))})
}

func TestDequantQ4_0(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var raw []byte
	var want []float64
	for _, d := range []uint16{hHalf, hM0p0123} {
		blk := make([]byte, 18)
		putHalf(blk, d)
		for j := 0; j < 32; j++ {
			q := rng.IntN(16)
			blk[2+j%16] |= byte(q) << (4 * (j / 16)) // value j in the low nibble of byte j, j+16 in the high one
			want = append(want, float64(q-8)*float64(HalfToFloat32(d)))
		}
		raw = append(raw, blk...)
	}
	checkBlock(t, "Q4_0", TypeQ4_0, raw, want)
}

func TestDequantQ4_1(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	blk := make([]byte, 20)
	putHalf(blk, hEighth)
	putHalf(blk[2:], hM0p0123)
	var want []float64
	for j := 0; j < 32; j++ {
		q := rng.IntN(16)
		blk[4+j%16] |= byte(q) << (4 * (j / 16))
		want = append(want, float64(q)*0.125+float64(HalfToFloat32(hM0p0123)))
	}
	checkBlock(t, "Q4_1", TypeQ4_1, blk, want)
}

func TestDequantQ8_0(t *testing.T) {
	blk := make([]byte, 34)
	putHalf(blk, hM0p0123)
	var want []float64
	for j := 0; j < 32; j++ {
		q := int8(j*9 - 128)
		blk[2+j] = byte(q)
		want = append(want, float64(q)*float64(HalfToFloat32(hM0p0123)))
	}
	checkBlock(t, "Q8_0", TypeQ8_0, blk, want)
}

// packScalesK4 packs eight 6-bit scales and mins into ggml's 12-byte K-quant layout: bytes 0-3 and 4-7 hold scales
// and mins 0-3 in their low 6 bits and the top 2 bits of scales/mins 4-7 in their high 2 bits; bytes 8-11 hold the
// low nibbles of scale (low half) and min (high half) 4-7.
func packScalesK4(sc, mn [8]int) []byte {
	b := make([]byte, 12)
	for j := 0; j < 4; j++ {
		b[j] = byte(sc[j]) | byte(sc[j+4]>>4)<<6
		b[j+4] = byte(mn[j]) | byte(mn[j+4]>>4)<<6
		b[j+8] = byte(sc[j+4]&15) | byte(mn[j+4]&15)<<4
	}
	return b
}

// kBlock draws a K-quant super-block's scales, mins and quants (quants below 1<<bits).
func kBlock(rng *rand.Rand, bits int) (sc, mn [8]int, q [256]int) {
	for j := range sc {
		sc[j], mn[j] = rng.IntN(64), rng.IntN(64)
	}
	sc[7], mn[5] = 63, 63 // exercise the top bits
	for i := range q {
		q[i] = rng.IntN(1 << bits)
	}
	return
}

func TestDequantQ4K(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	var raw []byte
	var want []float64
	for _, dd := range [][2]uint16{{hEighth, hM0p0123}, {hM0p0123, hHalf}} {
		sc, mn, q := kBlock(rng, 4)
		blk := make([]byte, 144)
		putHalf(blk, dd[0])
		putHalf(blk[2:], dd[1])
		copy(blk[4:], packScalesK4(sc, mn))
		// Each 64 values: the first 32 in the low nibbles of 32 bytes, the next 32 in their high nibbles.
		for i, v := range q {
			blk[16+32*(i/64)+i%32] |= byte(v) << (4 * (i % 64 / 32))
		}
		d, dmin := float64(HalfToFloat32(dd[0])), float64(HalfToFloat32(dd[1]))
		for i, v := range q {
			want = append(want, d*float64(sc[i/32])*float64(v)-dmin*float64(mn[i/32]))
		}
		raw = append(raw, blk...)
	}
	checkBlock(t, "Q4_K", TypeQ4_K, raw, want)
}

func TestDequantQ5K(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	sc, mn, q := kBlock(rng, 5)
	blk := make([]byte, 176)
	putHalf(blk, hEighth)
	putHalf(blk[2:], hM0p0123)
	copy(blk[4:], packScalesK4(sc, mn))
	for i, v := range q {
		sub := i / 32                                           // sub-block 0..7
		blk[48+32*(i/64)+i%32] |= byte(v&15) << (4 * (sub % 2)) // low 4 bits as Q4_K
		blk[16+i%32] |= byte(v>>4) << sub                       // fifth bit: bit `sub` of qh[i%32]
	}
	var want []float64
	d, dmin := 0.125, float64(HalfToFloat32(hM0p0123))
	for i, v := range q {
		want = append(want, d*float64(sc[i/32])*float64(v)-dmin*float64(mn[i/32]))
	}
	checkBlock(t, "Q5_K", TypeQ5_K, blk, want)
}

func TestDequantQ6K(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	var q [256]int
	var sc [16]int8
	for i := range q {
		q[i] = rng.IntN(64)
	}
	for j := range sc {
		sc[j] = int8(rng.IntN(256) - 128)
	}
	blk := make([]byte, 210)
	// Per 128 values (half n): value 32k+l (k = 0..3, l < 32) keeps its low 4 bits in ql[64n + l + 32(k%2)]
	// (low nibble for k < 2, high for k >= 2) and its top 2 bits at bit 2k of qh[32n + l].
	for i, v := range q {
		n, k, l := i/128, i%128/32, i%32
		blk[64*n+l+32*(k%2)] |= byte(v&15) << (4 * (k / 2))
		blk[128+32*n+l] |= byte(v>>4) << (2 * k)
	}
	for j, s := range sc {
		blk[192+j] = byte(s)
	}
	putHalf(blk[208:], hM0p0123)
	var want []float64
	d := float64(HalfToFloat32(hM0p0123))
	for i, v := range q {
		want = append(want, d*float64(sc[i/16])*float64(v-32))
	}
	checkBlock(t, "Q6_K", TypeQ6_K, blk, want)
}

func TestDequantErrors(t *testing.T) {
	if err := Dequantize(make([]float32, 32), make([]byte, 22), TypeQ5_0); err == nil {
		t.Error("Q5_0 (not supported) dequantised")
	}
	if err := Dequantize(make([]float32, 30), make([]byte, 18), TypeQ4_0); err == nil {
		t.Error("partial block accepted")
	}
	if err := Dequantize(make([]float32, 32), make([]byte, 17), TypeQ4_0); err == nil {
		t.Error("short data accepted")
	}
}
