package train

import "math"

// LearningRate returns the learning rate at a fractional epoch, as the official LLaMA-Adapter code schedules it:
// linear warmup from 0 to lr over warmup epochs, then a half-cycle cosine from lr down to minLR at the end of
// training. It is evaluated per iteration (epoch = completed epochs + fraction of the current one).
func LearningRate(epoch, lr, minLR, warmup, epochs float64) float64 {
	if epoch < warmup {
		return lr * epoch / warmup
	}
	span := epochs - warmup
	if span <= 0 {
		return lr
	}
	progress := math.Min(1, (epoch-warmup)/span)
	return minLR + (lr-minLR)*0.5*(1+math.Cos(math.Pi*progress))
}

// ScaledLR is the official rule: absolute lr = base lr × effective batch / 256.
func ScaledLR(baseLR float64, effectiveBatch int) float64 {
	return baseLR * float64(effectiveBatch) / 256
}
