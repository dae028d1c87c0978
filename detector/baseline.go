package detector

import "fmt"

// WindowMeanModel predicts that the next value equals the window's mean: in
// normalised units, always 0. Together with the calibration it is the
// windowed-Gaussian baseline that evaluations compare the LSTM with, and it
// lets the detector run where ONNX Runtime is not installed.
type WindowMeanModel struct{ W int }

func (m WindowMeanModel) Window() int     { return m.W }
func (m WindowMeanModel) Version() string { return fmt.Sprintf("window-mean-w%d", m.W) }
func (m WindowMeanModel) Close() error    { return nil }

func (m WindowMeanModel) Predict(in []float32, batch int, out []float32) error {
	if len(in) != batch*m.W || len(out) < batch {
		return fmt.Errorf("cannot predict: got %d inputs and %d outputs for batch %d of window %d", len(in), len(out), batch, m.W)
	}
	clear(out[:batch])
	return nil
}
