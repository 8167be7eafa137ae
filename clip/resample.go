package clip

import (
	"image"
	"math"
)

// Resampling: PIL's bicubic (Keys cubic, a = −0.5) on 8-bit images, reproduced step for step so that the
// pixels equal what PIL (and hence CLIPImageProcessor and OpenAI's clip.load transform) computes:
//   - the kernel's support is scaled by the downscale factor (antialiasing), weights normalized per output pixel;
//   - weights are rounded to fixed point with 22 fractional bits, sums start at half a unit and are shifted
//     down, then clipped to 0..255;
//   - the horizontal pass runs first into an 8-bit intermediate image, then the vertical pass.
//
// imaging.Resize with imaging.CatmullRom is the same filter with float weights: on the golden images it
// differed from PIL by one 8-bit level on a few pixels (rounding ties), which is why the fixed-point
// version is used (see the package README section for the measured differences).

const (
	resampleBits = 22
	resampleHalf = 1 << (resampleBits - 1)
)

// bicubicKernel is Keys' cubic convolution kernel with a = −0.5 (PIL's BICUBIC, Catmull-Rom).
// It keeps PIL's own arithmetic order (not keysCubic's) so the fixed-point weights round exactly as PIL's.
func bicubicKernel(x float64) float64 {
	const a = -0.5
	x = math.Abs(x)
	switch {
	case x < 1:
		return ((a+2)*x-(a+3))*x*x + 1
	case x < 2:
		return (((x-5)*x+8)*x - 4) * a
	}
	return 0
}

// resampleCoeffs returns, for each output index, the first input index and fixed-point weights.
func resampleCoeffs(inSize, outSize int) (starts []int, weights [][]int32) {
	const support = 2.0
	scale := float64(inSize) / float64(outSize)
	filterScale := math.Max(scale, 1)
	radius := support * filterScale
	starts = make([]int, outSize)
	weights = make([][]int32, outSize)
	k := make([]float64, 0, int(math.Ceil(radius))*2+1)
	for o := 0; o < outSize; o++ {
		center := (float64(o) + 0.5) * scale
		lo := int(center - radius + 0.5) // truncation, as PIL (never negative after the clamp below)
		if lo < 0 {
			lo = 0
		}
		hi := int(center + radius + 0.5)
		if hi > inSize {
			hi = inSize
		}
		k = k[:0]
		sum := 0.0
		for i := lo; i < hi; i++ {
			w := bicubicKernel((float64(i) - center + 0.5) / filterScale)
			k = append(k, w)
			sum += w
		}
		fixed := make([]int32, len(k))
		for i, w := range k {
			if sum != 0 {
				w /= sum
			}
			// Round half away from zero, as PIL's normalize_coeffs_8bpc.
			if w < 0 {
				fixed[i] = int32(-0.5 + w*(1<<resampleBits))
			} else {
				fixed[i] = int32(0.5 + w*(1<<resampleBits))
			}
		}
		starts[o], weights[o] = lo, fixed
	}
	return starts, weights
}

func clip8(v int64) uint8 {
	v >>= resampleBits
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// resizeBicubic resizes an opaque image (alpha ignored, output alpha 255) to w×h with PIL's bicubic.
func resizeBicubic(img *image.NRGBA, w, h int) *image.NRGBA {
	src := img
	if src.Rect.Min != (image.Point{}) {
		src = &image.NRGBA{Pix: img.Pix[img.PixOffset(img.Rect.Min.X, img.Rect.Min.Y):], Stride: img.Stride,
			Rect: image.Rect(0, 0, img.Rect.Dx(), img.Rect.Dy())}
	}
	sw, sh := src.Rect.Dx(), src.Rect.Dy()
	if sw != w {
		src = resizeH(src, w)
	}
	if sh != h {
		src = resizeV(src, h)
	}
	if src == img {
		out := image.NewNRGBA(image.Rect(0, 0, sw, sh))
		for y := 0; y < sh; y++ {
			copy(out.Pix[y*out.Stride:y*out.Stride+4*sw], img.Pix[img.PixOffset(img.Rect.Min.X, img.Rect.Min.Y+y):])
		}
		return out
	}
	return src
}

func resizeH(src *image.NRGBA, w int) *image.NRGBA {
	sw, sh := src.Rect.Dx(), src.Rect.Dy()
	starts, weights := resampleCoeffs(sw, w)
	dst := image.NewNRGBA(image.Rect(0, 0, w, sh))
	for y := 0; y < sh; y++ {
		in := src.Pix[y*src.Stride : y*src.Stride+4*sw]
		out := dst.Pix[y*dst.Stride : y*dst.Stride+4*w]
		for x := 0; x < w; x++ {
			r, g, b := int64(resampleHalf), int64(resampleHalf), int64(resampleHalf)
			p := in[4*starts[x]:]
			for i, k := range weights[x] {
				kk := int64(k)
				r += int64(p[4*i]) * kk
				g += int64(p[4*i+1]) * kk
				b += int64(p[4*i+2]) * kk
			}
			o := out[4*x : 4*x+4 : 4*x+4]
			o[0], o[1], o[2], o[3] = clip8(r), clip8(g), clip8(b), 255
		}
	}
	return dst
}

func resizeV(src *image.NRGBA, h int) *image.NRGBA {
	sw, sh := src.Rect.Dx(), src.Rect.Dy()
	starts, weights := resampleCoeffs(sh, h)
	dst := image.NewNRGBA(image.Rect(0, 0, sw, h))
	acc := make([]int64, 3*sw)
	for y := 0; y < h; y++ {
		for i := range acc {
			acc[i] = resampleHalf
		}
		for i, k := range weights[y] {
			kk := int64(k)
			row := src.Pix[(starts[y]+i)*src.Stride:]
			for x := 0; x < sw; x++ {
				acc[3*x] += int64(row[4*x]) * kk
				acc[3*x+1] += int64(row[4*x+1]) * kk
				acc[3*x+2] += int64(row[4*x+2]) * kk
			}
		}
		out := dst.Pix[y*dst.Stride : y*dst.Stride+4*sw]
		for x := 0; x < sw; x++ {
			o := out[4*x : 4*x+4 : 4*x+4]
			o[0], o[1], o[2], o[3] = clip8(acc[3*x]), clip8(acc[3*x+1]), clip8(acc[3*x+2]), 255
		}
	}
	return dst
}
