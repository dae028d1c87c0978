package nab

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
	"github.com/sentinel-mesh/sentinel-mesh/detector/onnxmodel"
)

// qualityFloor is what the default detector (embedded model, default
// configuration) reaches on the fixed subset in testdata/quality, worse
// inner fold, less a margin of 0.03 F1 and 3 NAB points: a change that
// loses more than that fails here before anyone runs make eval.
var qualityFloor = map[string]struct{ f1, transfer, scoresTransfer float64 }{
	"nab-dev": {f1: 0.41, transfer: 29.1, scoresTransfer: 47.3}, // measured 0.444, 32.1, 50.3
	"ops-dev": {f1: 0.64, transfer: 51.3, scoresTransfer: 58.6}, // measured 0.677, 54.3, 61.6
}

func TestQualityRegression(t *testing.T) {
	for corpus, floor := range qualityFloor {
		t.Run(corpus, func(t *testing.T) {
			c, err := LoadCorpus("testdata/quality/" + corpus)
			require.NoError(t, err)
			w := worseFold(t, corpus, c, detector.DefaultConfig)
			t.Logf("%s: worse fold event F1 %.3f, precision %.3f, NAB transfer standard on opens %.1f, on scores %.1f", corpus, w.F1, w.Precision, w.Transfer[0], w.ScoresTransfer[0])
			require.GreaterOrEqual(t, w.F1, floor.f1, "event F1, worse fold")
			require.GreaterOrEqual(t, w.Transfer[0], floor.transfer, "NAB transfer standard on opens, worse fold")
			require.GreaterOrEqual(t, w.ScoresTransfer[0], floor.scoresTransfer, "NAB transfer standard on scores, worse fold")
		})
	}
}

// worseFold scores both inner folds of c with the embedded model and cfg,
// in event mode, and returns the worse fold of each figure.
func worseFold(t *testing.T, corpus string, c *Corpus, cfg detector.Config) Worst {
	t.Helper()
	var pair [2]*FoldReport
	for i, fold := range Folds {
		fc, err := c.Fold(fold)
		require.NoError(t, err)
		// ONNX Runtime is required: make test installs it, and a missing
		// library fails here rather than skipping.
		m, err := onnxmodel.LoadDefault(onnxmodel.Options{IntraOpThreads: 1})
		require.NoError(t, err)
		o, err := Run(fc, Detector{Name: "default", Config: cfg, Model: m, Mode: ModeEvents})
		require.NoError(t, m.Close())
		require.NoError(t, err)
		pair[i] = EvaluateFold(corpus, fold, fc, o)
	}
	SetTransfer(pair[0], pair[1])
	return WorstFolds(pair[:])[0]
}
