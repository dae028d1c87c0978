package detector

// Model predicts the next normalised value of many windows at once.
//
// The input holds batch windows of Window() float32 values each, laid out
// row-major ([batch, window, 1]); each window is z-normalised as described in
// docs/model.md. Predict writes one normalised prediction per window into out.
// Predict may be called from one goroutine at a time.
type Model interface {
	Window() int
	Version() string
	Predict(in []float32, batch int, out []float32) error
	Close() error
}

// DistributionModel is a Model that also predicts how uncertain each
// prediction is, so the band and the surprise come from the model rather
// than from a per-series error history alone (model.json format
// sentinel-mesh/v2, docs/model.md).
//
// PredictDistribution writes, per window, the predicted mean of the next
// normalised value into mean and its predicted scale (the standard deviation
// of a Gaussian, in the same normalised units, > 0) into scale.
type DistributionModel interface {
	Model
	PredictDistribution(in []float32, batch int, mean, scale []float32) error
}
