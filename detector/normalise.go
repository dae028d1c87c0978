package detector

import "math"

// Normalisation holds the parameters of the per-window z-score normalisation
// described in docs/model.md. Training uses the same function, so the values
// must come from the model's metadata.
type Normalisation struct {
	MinScaleRel float64 `json:"min_scale_rel"`
	MinScaleAbs float64 `json:"min_scale_abs"`
	Clip        float64 `json:"clip"`
}

// DefaultNormalisation matches the defaults of docs/model.md.
var DefaultNormalisation = Normalisation{MinScaleRel: 1e-3, MinScaleAbs: 1e-6, Clip: 10}

// NormalisationProvider is implemented by models that carry their own
// normalisation parameters.
type NormalisationProvider interface {
	Normalisation() Normalisation
}

// normaliseWindow writes the normalised window into dst (len(dst) == len(src))
// and returns the mean and scale needed to map a prediction back.
func (n Normalisation) normaliseWindow(dst []float32, src []float64) (mean, scale float64) {
	var sum float64
	for _, v := range src {
		sum += v
	}
	mean = sum / float64(len(src))
	var ss float64
	for _, v := range src {
		d := v - mean
		ss += d * d
	}
	std := math.Sqrt(ss / float64(len(src)))
	scale = max(std, n.MinScaleRel*math.Abs(mean), n.MinScaleAbs)
	for i, v := range src {
		z := (v - mean) / scale
		if z > n.Clip {
			z = n.Clip
		} else if z < -n.Clip {
			z = -n.Clip
		}
		dst[i] = float32(z)
	}
	return mean, scale
}
