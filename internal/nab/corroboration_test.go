package nab

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
	"github.com/sentinel-mesh/sentinel-mesh/detector/onnxmodel"
)

// TestCorroborationOnOneServer scores the eight development metrics of one
// ASD server (testdata/corroboration, files named <instance>__<metric>.csv,
// so they share job and instance) with and without corroboration. ASD's
// incidents show on several metrics of a server at once, each at 0.6-0.7;
// corroboration is what opens them, and it keeps one metric's excursion
// that the others do not share from paging (measured: F1 0.635 -> 0.771,
// precision 0.74 -> 0.87). Development data: this guards the
// mechanism, docs/detection.md has the figures on both folds.
func TestCorroborationOnOneServer(t *testing.T) {
	c, err := LoadCorpus("testdata/corroboration")
	require.NoError(t, err)
	score := func(lift float64) EventScore {
		m, err := onnxmodel.LoadDefault(onnxmodel.Options{IntraOpThreads: 1})
		require.NoError(t, err)
		defer func() { require.NoError(t, m.Close()) }()
		cfg := detector.DefaultConfig
		cfg.Scoring.CorroborationLift = lift
		o, err := Run(c, Detector{Name: "default", Config: cfg, Model: m, Mode: ModeEvents})
		require.NoError(t, err)
		return ScoreEvents(c, o)
	}
	off := score(0)
	on := score(detector.DefaultScoringConfig.CorroborationLift)
	t.Logf("without corroboration: precision %.2f recall %.2f F1 %.3f (%d opens); with: %.2f %.2f %.3f (%d opens)",
		off.Precision, off.Recall, off.F1, off.Opens, on.Precision, on.Recall, on.F1, on.Opens)
	require.GreaterOrEqual(t, on.F1-off.F1, 0.05, "event F1 gained by corroboration")
	require.GreaterOrEqual(t, on.Precision, off.Precision-0.02, "corroboration must not buy recall with precision")
}
