package gguf

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/gomlx/compute/dtypes/bfloat16"
	"github.com/gomlx/compute/dtypes/float16"
)

// Dequantize decodes src, whole blocks of type t, into dst (len(dst) values). Block layouts follow ggml
// (ggml-common.h); float products are rounded to float32 one operation at a time, as ggml's reference C does.
func Dequantize(dst []float32, src []byte, t Type) error {
	be, bb := t.BlockSize()
	if be == 0 || !t.CanDequantize() {
		return fmt.Errorf("dequantising %s is not supported", t)
	}
	if len(dst)%be != 0 {
		return fmt.Errorf("%s: %d values is not a whole number of %d-value blocks", t, len(dst), be)
	}
	nb := len(dst) / be
	if len(src) != nb*bb {
		return fmt.Errorf("%s: %d values need %d bytes, got %d", t, len(dst), nb*bb, len(src))
	}
	var block func(y []float32, x []byte)
	switch t {
	case TypeF32:
		block = func(y []float32, x []byte) { y[0] = math.Float32frombits(binary.LittleEndian.Uint32(x)) }
	case TypeF16:
		block = func(y []float32, x []byte) { y[0] = f16(x) }
	case TypeBF16:
		block = func(y []float32, x []byte) { y[0] = bfloat16.FromBits(binary.LittleEndian.Uint16(x)).Float32() }
	case TypeQ4_0:
		block = dequantQ4_0
	case TypeQ4_1:
		block = dequantQ4_1
	case TypeQ8_0:
		block = dequantQ8_0
	case TypeQ4_K:
		block = dequantQ4K
	case TypeQ5_K:
		block = dequantQ5K
	case TypeQ6_K:
		block = dequantQ6K
	}
	for i := 0; i < nb; i++ {
		block(dst[i*be:(i+1)*be], src[i*bb:(i+1)*bb])
	}
	return nil
}

// f16 decodes a little-endian IEEE half.
func f16(b []byte) float32 { return HalfToFloat32(binary.LittleEndian.Uint16(b)) }

// HalfToFloat32 converts IEEE 754 binary16 bits to float32 (exactly: every half is a float32), with the same
// float16 conversion as every other reader (models/safetensors' DecodeFloat32).
func HalfToFloat32(h uint16) float32 { return float16.FromBits(h).Float32() }

// Q4_0: f16 d, 16 bytes of nibbles; value j = (low nibble of byte j − 8)·d, value j+16 = (high nibble − 8)·d.
func dequantQ4_0(y []float32, x []byte) {
	d := f16(x)
	qs := x[2:18]
	for j := 0; j < 16; j++ {
		y[j] = float32(int(qs[j]&15)-8) * d
		y[j+16] = float32(int(qs[j]>>4)-8) * d
	}
}

// Q4_1: f16 d, f16 m, 16 bytes of nibbles; value = q·d + m.
func dequantQ4_1(y []float32, x []byte) {
	d, m := f16(x), f16(x[2:])
	qs := x[4:20]
	for j := 0; j < 16; j++ {
		y[j] = float32(float32(qs[j]&15)*d) + m
		y[j+16] = float32(float32(qs[j]>>4)*d) + m
	}
}

// Q8_0: f16 d, 32 int8; value = q·d.
func dequantQ8_0(y []float32, x []byte) {
	d := f16(x)
	for j := 0; j < 32; j++ {
		y[j] = float32(int8(x[2+j])) * d
	}
}

// scaleMinK4 unpacks the j-th (0..7) 6-bit scale and min of a Q4_K/Q5_K super-block from its 12 packed bytes:
// bytes 0-3 hold scales 0-3 (low 6 bits), 4-7 mins 0-3, and 8-11 the low nibbles of scales/mins 4-7 whose top
// two bits sit in the spare high bits of bytes 0-7.
func scaleMinK4(j int, q []byte) (sc, m uint8) {
	if j < 4 {
		return q[j] & 63, q[j+4] & 63
	}
	return q[j+4]&0xf | (q[j-4]>>6)<<4, q[j+4]>>4 | (q[j]>>6)<<4
}

// pairScalesK4 returns the multipliers and offsets (d·sc, dmin·m) of sub-blocks 2k and 2k+1 of a Q4_K/Q5_K block.
func pairScalesK4(k int, scales []byte, d, dmin float32) (d1, mm1, d2, mm2 float32) {
	sc1, m1 := scaleMinK4(2*k, scales)
	sc2, m2 := scaleMinK4(2*k+1, scales)
	return d * float32(sc1), dmin * float32(m1), d * float32(sc2), dmin * float32(m2)
}

// Q4_K: f16 d, f16 dmin, 12 bytes scales/mins, 128 bytes nibbles. Eight sub-blocks of 32; within each 64 values
// the low nibbles give the first sub-block, the high nibbles the second. value = d·sc·q − dmin·m.
func dequantQ4K(y []float32, x []byte) {
	d, dmin := f16(x), f16(x[2:])
	scales := x[4:16]
	q := x[16:144]
	for k := 0; k < 4; k++ {
		d1, mm1, d2, mm2 := pairScalesK4(k, scales, d, dmin)
		qq, yy := q[32*k:32*k+32], y[64*k:64*k+64]
		for l := 0; l < 32; l++ {
			yy[l] = float32(d1*float32(qq[l]&0xf)) - mm1
			yy[l+32] = float32(d2*float32(qq[l]>>4)) - mm2
		}
	}
}

// Q5_K: as Q4_K plus a fifth bit per value in 32 bytes qh: bit 2k of qh[l] for value l of pair k's first
// sub-block, bit 2k+1 for the second. Layout: d, dmin, scales[12], qh[32], qs[128].
func dequantQ5K(y []float32, x []byte) {
	d, dmin := f16(x), f16(x[2:])
	scales := x[4:16]
	qh := x[16:48]
	q := x[48:176]
	for k := 0; k < 4; k++ {
		d1, mm1, d2, mm2 := pairScalesK4(k, scales, d, dmin)
		u1, u2 := uint8(1)<<(2*k), uint8(2)<<(2*k)
		qq, yy := q[32*k:32*k+32], y[64*k:64*k+64]
		for l := 0; l < 32; l++ {
			lo, hi := qq[l]&0xf, qq[l]>>4
			if qh[l]&u1 != 0 {
				lo += 16
			}
			if qh[l]&u2 != 0 {
				hi += 16
			}
			yy[l] = float32(d1*float32(lo)) - mm1
			yy[l+32] = float32(d2*float32(hi)) - mm2
		}
	}
}

// Q6_K: ql[128] (low 4 bits), qh[64] (high 2 bits), 16 int8 scales, f16 d; sixteen sub-blocks of 16.
// value = d·scale·(q − 32). Each half (128 values) uses 64 ql bytes, 32 qh bytes and 8 scales.
func dequantQ6K(y []float32, x []byte) {
	d := f16(x[208:])
	for n := 0; n < 2; n++ {
		ql := x[64*n : 64*n+64]
		qh := x[128+32*n : 128+32*n+32]
		sc := x[192+8*n : 192+8*n+8]
		yy := y[128*n : 128*n+128]
		for l := 0; l < 32; l++ {
			is := l / 16
			q1 := int(ql[l]&0xf|(qh[l]>>0&3)<<4) - 32
			q2 := int(ql[l+32]&0xf|(qh[l]>>2&3)<<4) - 32
			q3 := int(ql[l]>>4|(qh[l]>>4&3)<<4) - 32
			q4 := int(ql[l+32]>>4|(qh[l]>>6&3)<<4) - 32
			yy[l] = float32(d*float32(int8(sc[is]))) * float32(q1)
			yy[l+32] = float32(d*float32(int8(sc[is+2]))) * float32(q2)
			yy[l+64] = float32(d*float32(int8(sc[is+4]))) * float32(q3)
			yy[l+96] = float32(d*float32(int8(sc[is+6]))) * float32(q4)
		}
	}
}
