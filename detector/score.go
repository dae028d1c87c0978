package detector

import (
	"math"
)

// ScoringConfig turns prediction errors into calibrated scores.
type ScoringConfig struct {
	// WarmupSamples is how many prediction errors a series needs before it is
	// scored at all; until then its score is 0. Counted after the first full window.
	WarmupSamples int `yaml:"warmup_samples"`
	// LongWindow is the effective length (in samples) of the long-term error
	// distribution, an exponentially weighted mean and variance.
	LongWindow int `yaml:"long_window"`
	// ShortWindow is the effective length of the short-term mean error that is
	// compared with the long-term distribution.
	ShortWindow int `yaml:"short_window"`
	// PFloor is the tail probability that maps to score 1: the score is
	// log(p)/log(PFloor), clamped to [0,1], so 0.5 means p = sqrt(PFloor).
	PFloor float64 `yaml:"p_floor"`
	// Threshold is the score at which an anomaly opens.
	Threshold float64 `yaml:"threshold"`
	// Direction limits anomalies to deviations above (up) or below (down) the
	// expected value.
	Direction Direction `yaml:"direction"`
	// MinAbsDeviation and MinRelDeviation (a fraction of |expected|) are the
	// smallest deviations that may raise the score, so flat series and tiny
	// wiggles do not page anyone.
	MinAbsDeviation float64 `yaml:"min_abs_deviation"`
	MinRelDeviation float64 `yaml:"min_rel_deviation"`
}

// DefaultScoringConfig is the scoring the server runs by default.
var DefaultScoringConfig = ScoringConfig{
	WarmupSamples:   30,
	LongWindow:      8000,
	ShortWindow:     1,
	PFloor:          1e-10,
	Threshold:       0.9,
	Direction:       DirectionBoth,
	MinAbsDeviation: 0,
	MinRelDeviation: 0,
}

// calibration is the per-series error distribution. float32 keeps a series
// small; the statistics do not need more precision.
type calibration struct {
	n        uint32
	errMean  float32
	errVar   float32
	shortErr float32
}

// gaussTail returns P(Z > z) for a standard normal Z.
func gaussTail(z float64) float64 {
	return 0.5 * math.Erfc(z/math.Sqrt2)
}

// scoreOf maps a tail probability to a score in [0,1].
func (c *ScoringConfig) scoreOf(p float64) float64 {
	if p >= 1 {
		return 0
	}
	if p <= c.PFloor {
		return 1
	}
	return math.Log(p) / math.Log(c.PFloor)
}

// zAtThreshold is the z-score at which the score reaches the threshold; it
// sets the width of the bounds so that a value outside them is anomalous.
func (c *ScoringConfig) zAtThreshold() float64 {
	p := math.Pow(c.PFloor, c.Threshold)
	// Invert gaussTail by bisection: called once per configuration.
	lo, hi := 0.0, 40.0
	for range 100 {
		mid := (lo + hi) / 2
		if gaussTail(mid) > p {
			lo = mid
		} else {
			hi = mid
		}
	}
	return (lo + hi) / 2
}

// observe feeds one normalised absolute prediction error and returns the
// score. gated says the deviation passed the direction and minimum-deviation
// knobs; a gated-out error still teaches the long-term distribution but
// cannot raise the short-term signal above normal.
func (c *calibration) observe(cfg *ScoringConfig, e float64, gated bool) (score float64, warm bool) {
	c.n++
	n := float64(c.n)
	mean, variance := float64(c.errMean), float64(c.errVar)
	warm = c.n > uint32(cfg.WarmupSamples)

	eShort := e
	if !gated && e > mean {
		eShort = mean
	}
	aShort := 1 / float64(max(cfg.ShortWindow, 1))
	if c.n == 1 {
		c.shortErr = float32(eShort)
	} else {
		c.shortErr = float32((1-aShort)*float64(c.shortErr) + aShort*eShort)
	}

	if warm {
		std := math.Sqrt(variance)
		// A floor on std keeps a perfectly predicted series from turning the
		// smallest error into an anomaly.
		std = max(std, 1e-3+0.1*mean)
		z := (float64(c.shortErr) - mean) / std
		if z > 0 {
			score = cfg.scoreOf(gaussTail(z))
		}
	}

	// Update the long-term distribution after scoring, so a sample is not
	// compared with itself. Welford-style during warm-up, EWMA afterwards.
	a := max(1/n, 1/float64(max(cfg.LongWindow, 1)))
	d := e - mean
	mean += a * d
	variance = (1 - a) * (variance + a*d*d)
	c.errMean, c.errVar = float32(mean), float32(variance)
	return score, warm
}

// halfWidth returns the bounds' half width in normalised units: the single
// error that, arriving on a calm series, lifts the short-term mean to the
// threshold.
func (c *calibration) halfWidth(cfg *ScoringConfig, zThr float64) float64 {
	mean := float64(c.errMean)
	std := max(math.Sqrt(float64(c.errVar)), 1e-3+0.1*mean)
	return mean + zThr*std*float64(max(cfg.ShortWindow, 1))
}
