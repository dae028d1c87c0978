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
