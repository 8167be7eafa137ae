package clip

import (
	"bytes"
	"fmt"
	"image"
	"os"
	"runtime"
	"sync"

	"github.com/disintegration/imaging"
)

// OpenAI CLIP's normalization constants (also the defaults of Hugging Face's CLIPImageProcessor).
var (
	OpenAIMean = [3]float32{0.48145466, 0.4578275, 0.40821073}
	OpenAIStd  = [3]float32{0.26862954, 0.26130258, 0.27577711}
)

// ImageNet normalization constants (DINOv2's eval transform, torchvision's convention).
var (
	ImageNetMean = [3]float32{0.485, 0.456, 0.406}
	ImageNetStd  = [3]float32{0.229, 0.224, 0.225}
)

// Preprocess describes how an image becomes the model's pixel values. The defaults (DefaultPreprocess) match
// Hugging Face's CLIPImageProcessor for openai/clip-vit-large-patch14 and OpenAI's own clip.load transform:
// resize the short side to Size with bicubic filtering (the long side floor(Size·long/short)), center crop
// CropSize×CropSize (offsets floor((dim−crop)/2)), scale to [0,1], normalize per channel, CHW float32.
type Preprocess struct {
	Size     int // target of the short side
	CropSize int // side of the square center crop
	Mean     [3]float32
	Std      [3]float32
	// CropRound places the crop at int(round((dim−crop)/2)) with Python's round (half to even), as torchvision's
	// CenterCrop (DINOv2's eval transform); false is floor((dim−crop)/2), as CLIPImageProcessor. They differ only
	// when dim−crop is odd and its half rounds up (e.g. 115 → 58 instead of 57).
	CropRound bool
	// MaxPixels bounds the width×height of an image before it is decoded (0: DefaultMaxPixels). Decoding costs
	// about 4 bytes per pixel whatever the file size: a 450 KB PNG of 12000×12000 needs 2 GB. Not part of String:
	// it changes which images are refused, not the features of the others.
	MaxPixels int
}

// DefaultMaxPixels is the pixel limit when Preprocess.MaxPixels is 0: 40 Mpixel (ScienceQA's images are below
// 1 Mpixel; 40 Mpixel decodes in about 160 MB).
const DefaultMaxPixels = 40_000_000

// DINOv2Preprocess is DINOv2's standard eval transform: short side to 256 with PIL bicubic (long side
// truncated), torchvision center crop 224, ImageNet mean/std.
func DINOv2Preprocess() Preprocess {
	return Preprocess{Size: 256, CropSize: 224, Mean: ImageNetMean, Std: ImageNetStd, CropRound: true}
}

// DefaultPreprocess returns the ViT-L/14 settings: 224, 224, OpenAI mean/std.
func DefaultPreprocess() Preprocess {
	return Preprocess{Size: 224, CropSize: 224, Mean: OpenAIMean, Std: OpenAIStd}
}

// Validate checks the settings.
func (p Preprocess) Validate() error {
	if p.Size <= 0 || p.CropSize <= 0 || p.CropSize > p.Size {
		return fmt.Errorf("clip preprocess: size %d and crop %d must be positive with crop <= size", p.Size, p.CropSize)
	}
	for c := 0; c < 3; c++ {
		if !(p.Std[c] > 0) {
			return fmt.Errorf("clip preprocess: std[%d] = %g must be positive", c, p.Std[c])
		}
	}
	return nil
}

// String is a stable description of the settings (part of the feature cache key).
func (p Preprocess) String() string {
	crop := "floor" // CLIP's settings keep their historical string (and so their cache keys)
	if p.CropRound {
		crop = "round-half-even"
	}
	return fmt.Sprintf("resize-short=%d bicubic-pil-a=-0.5 uint8 crop=%d %s mean=%v std=%v rgb-drop-alpha",
		p.Size, p.CropSize, crop, p.Mean, p.Std)
}

// NumValues is the number of float32 values of one preprocessed image (3·CropSize²).
func (p Preprocess) NumValues() int { return 3 * p.CropSize * p.CropSize }

// DecodeRGB decodes a PNG, JPEG, GIF (first frame), BMP or TIFF image with imaging and converts it to 8-bit RGB
// the way PIL's Image.convert("RGB") does, returned as an NRGBA image whose alpha is 255 everywhere:
//   - alpha is dropped, not composited: a pixel keeps its stored (non-premultiplied) color whatever its alpha, as
//     PIL does. Images Go decodes as premultiplied (image.RGBA/RGBA64) are un-premultiplied by imaging first;
//     their fully transparent pixels have lost their color and come out black.
//   - palette images take their palette colors (transparency dropped); gray images are replicated to 3 channels.
//   - 16-bit images keep the high byte of each sample (PIL does the same for 16-bit RGB(A); for 16-bit grayscale
//     PIL's convert("RGB") clips the 16-bit value to 255 instead, which is rarely what one wants).
//   - EXIF orientation is ignored, as PIL's Image.open + convert (and CLIPImageProcessor) ignore it.
//
// Images over DefaultMaxPixels are refused from their header, before decoding (see DecodeRGBLimit).
func DecodeRGB(data []byte) (*image.NRGBA, error) {
	return DecodeRGBLimit(data, DefaultMaxPixels)
}

// TooLargeError is an image whose header declares more pixels than the limit.
type TooLargeError struct {
	Width, Height, Limit int
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("image is %d×%d = %.1f Mpixel, over the limit of %.1f Mpixel (decoding it would take about %d MB; raise the limit with Preprocess.MaxPixels, -max-image-pixels in the experiments)",
		e.Width, e.Height, float64(e.Width)*float64(e.Height)/1e6, float64(e.Limit)/1e6, int64(e.Width)*int64(e.Height)*4>>20)
}

// DecodeRGBLimit is DecodeRGB with a pixel limit (<= 0: DefaultMaxPixels): the header is read first
// (image.DecodeConfig), and an image over the limit is a *TooLargeError without being decoded.
func DecodeRGBLimit(data []byte, maxPixels int) (*image.NRGBA, error) {
	if maxPixels <= 0 {
		maxPixels = DefaultMaxPixels
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	if cfg.Width < 0 || cfg.Height < 0 || (cfg.Width > 0 && cfg.Height > maxPixels/cfg.Width) {
		return nil, &TooLargeError{Width: cfg.Width, Height: cfg.Height, Limit: maxPixels}
	}
	img, err := imaging.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	b := img.Bounds()
	if b.Dx() <= 0 || b.Dy() <= 0 {
		return nil, fmt.Errorf("empty image (%dx%d)", b.Dx(), b.Dy())
	}
	// imaging.Clone converts any image.Image to non-premultiplied 8-bit NRGBA.
	rgb := imaging.Clone(img)
	for i := 3; i < len(rgb.Pix); i += 4 {
		rgb.Pix[i] = 255
	}
	return rgb, nil
}

// ResizedSize returns the size after resizing the short side of a w×h image to size: the long side is
// floor(size·long/short), as CLIPImageProcessor and torchvision's Resize compute it.
func ResizedSize(w, h, size int) (int, int) {
	if w <= h {
		return size, size * h / w
	}
	return size * w / h, size
}

// Apply resizes, crops and normalizes an RGB image into dst (CHW order), which is allocated when it does not
// have 3·CropSize² values.
func (p Preprocess) Apply(img *image.NRGBA, dst []float32) ([]float32, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if img == nil || img.Bounds().Empty() {
		return nil, fmt.Errorf("clip preprocess: empty image")
	}
	nw, nh := ResizedSize(img.Bounds().Dx(), img.Bounds().Dy(), p.Size)
	return p.applySized(img, nw, nh, dst), nil
}

// applySized is Apply with an explicit resize target (tests use it to reproduce other rounding rules).
func (p Preprocess) applySized(img *image.NRGBA, nw, nh int, dst []float32) []float32 {
	w, h := img.Bounds().Dx(), img.Bounds().Dy()
	resized := img
	if nw != w || nh != h || img.Rect.Min != (image.Point{}) {
		resized = resizeBicubic(img, nw, nh)
	}
	c := p.CropSize
	// Crop offsets as CLIPImageProcessor's center_crop (floor division) or torchvision's (round half to even).
	// When the resized image is smaller than the crop (not possible with Size >= CropSize) the offset would be
	// negative; Validate forbids that.
	left, top := cropOffset(nw, c, p.CropRound), cropOffset(nh, c, p.CropRound)
	if len(dst) != 3*c*c {
		dst = make([]float32, 3*c*c)
	}
	// The 256 possible values of each channel, computed as CLIPImageProcessor does: v·(1/255) in float64 rounded
	// to float32, then (v − mean)/std in float32.
	var lut [3][256]float32
	for ch := 0; ch < 3; ch++ {
		for v := 0; v < 256; v++ {
			lut[ch][v] = (float32(float64(v)*(1.0/255)) - p.Mean[ch]) / p.Std[ch]
		}
	}
	for y := 0; y < c; y++ {
		row := resized.Pix[(top+y)*resized.Stride+left*4:]
		for x := 0; x < c; x++ {
			px := row[x*4 : x*4+3 : x*4+3]
			dst[y*c+x] = lut[0][px[0]]
			dst[c*c+y*c+x] = lut[1][px[1]]
			dst[2*c*c+y*c+x] = lut[2][px[2]]
		}
	}
	return dst
}

// cropOffset is the start of a centered crop of c out of n: floor((n−c)/2), or Python's round((n−c)/2).
func cropOffset(n, c int, round bool) int {
	d := n - c
	off := d / 2
	if round && d%2 == 1 && off%2 == 1 { // x.5 rounds to the even neighbour
		off++
	}
	return off
}

// ImageSource is one image to preprocess: its bytes, or a file to read them from. Name identifies it in errors
// (the file path when empty).
type ImageSource struct {
	Name string
	Path string
	Data []byte
}

// Label is the name used in errors and progress.
func (s ImageSource) Label() string {
	if s.Name != "" {
		return s.Name
	}
	if s.Path != "" {
		return s.Path
	}
	return "<image bytes>"
}

// Bytes returns the image bytes, reading the file when only Path is set; errors name the image.
func (s ImageSource) Bytes() ([]byte, error) {
	data, err := s.bytes()
	if err != nil {
		return nil, &ImageError{Name: s.Label(), Err: err}
	}
	return data, nil
}

func (s ImageSource) bytes() ([]byte, error) {
	if s.Data != nil {
		return s.Data, nil
	}
	if s.Path == "" {
		return nil, fmt.Errorf("neither data nor a path")
	}
	return os.ReadFile(s.Path)
}

// ImageError is the failure of one image.
type ImageError struct {
	Index int    // position in the batch (0 for a single image)
	Name  string // the image's label (file path or name)
	Err   error
}

func (e *ImageError) Error() string { return fmt.Sprintf("image %s: %v", e.Name, e.Err) }
func (e *ImageError) Unwrap() error { return e.Err }

// BatchError lists the images of a batch that failed; the others were processed.
type BatchError struct {
	Failed []*ImageError
}

func (e *BatchError) Error() string {
	if len(e.Failed) == 1 {
		return e.Failed[0].Error()
	}
	return fmt.Sprintf("%d images failed, first: %v", len(e.Failed), e.Failed[0])
}

// File decodes and preprocesses one image; errors name the image.
func (p Preprocess) File(src ImageSource, dst []float32) ([]float32, error) {
	out, err := p.file(src, dst)
	if err != nil {
		return nil, &ImageError{Name: src.Label(), Err: err}
	}
	return out, nil
}

func (p Preprocess) file(src ImageSource, dst []float32) ([]float32, error) {
	data, err := src.bytes()
	if err != nil {
		return nil, err
	}
	img, err := DecodeRGBLimit(data, p.MaxPixels)
	if err != nil {
		return nil, fmt.Errorf("decoding: %w", err)
	}
	return p.Apply(img, dst)
}

// Batch decodes and preprocesses images on all cores (workers goroutines; <= 0 means GOMAXPROCS). It returns
// one slice per image (nil for a failed one) and, when any failed, a *BatchError naming each failure.
func (p Preprocess) Batch(srcs []ImageSource, workers int) ([][]float32, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	out := make([][]float32, len(srcs))
	errs := make([]error, len(srcs))
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				out[i], errs[i] = p.file(srcs[i], nil)
			}
		}()
	}
	for i := range srcs {
		next <- i
	}
	close(next)
	wg.Wait()
	var be BatchError
	for i, err := range errs {
		if err != nil {
			be.Failed = append(be.Failed, &ImageError{Index: i, Name: srcs[i].Label(), Err: err})
		}
	}
	if len(be.Failed) > 0 {
		return out, &be
	}
	return out, nil
}
