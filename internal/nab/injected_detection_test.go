package nab

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
	"github.com/sentinel-mesh/sentinel-mesh/detector/onnxmodel"
)

// injectedFloor is the share of series whose injected anomaly the default
// detector must open on, per kind, at both scrape intervals, on the
// Gaussian bases (flat and daily); kinds not listed, and the heavy-tailed
// base, are measured (docs/detection.md) but not held: their detection
// rates sit between 0 and 1 and move with the seed (noise × 5 at 5
// minutes: 17 of 20 with the docs' seed, 3 of 5 with this one).
var injectedFloor = map[string]float64{
	"spike 20σ":            1,
	"level shift 10σ, 1 h": 1,
	"drop to 0, 15 min":    1,
}

// TestInjectedDetection holds what the README says the default detector
// catches on series it was never tuned on (make eval-injected measures the
// full table): a different seed from the docs' table, and fewer series per
// kind and base at 15 s, whose 28,800 samples a series take a minute under
// the race detector.
func TestInjectedDetection(t *testing.T) {
	for step, perCell := range map[time.Duration]int{15 * time.Second: 3, 5 * time.Minute: 10} {
		t.Run(step.String(), func(t *testing.T) {
			c := InjectedCorpus(perCell, step, 2)
			// ONNX Runtime is required: make test installs it.
			m, err := onnxmodel.LoadDefault(onnxmodel.Options{IntraOpThreads: 1})
			require.NoError(t, err)
			o, err := Run(c, Detector{Name: "default", Config: detector.DefaultConfig, Model: m, Mode: ModeEvents})
			require.NoError(t, m.Close())
			require.NoError(t, err)
			held := 0
			for _, r := range ScoreInjected(c, o, step) {
				t.Logf("%s, %s: %d of %d detected, median delay %s", r.Base, r.Kind, r.Detected, r.Series, r.DelayMedian)
				floor, ok := injectedFloor[r.Kind]
				if !ok || r.Base == "heavy-tailed" {
					continue
				}
				held++
				require.GreaterOrEqual(t, float64(r.Detected)/float64(r.Series), floor, "%s, %s", r.Base, r.Kind)
				if r.Base == "flat" && r.Kind != "level shift 10σ, 1 h" {
					// A spike or a drop on a flat series is the model's
					// prediction error (its event says cause=prediction).
					require.Equal(t, r.Detected, r.Causes[detector.CausePrediction], "%s, %s: causes %v", r.Base, r.Kind, r.Causes)
				}
			}
			require.Equal(t, 2*len(injectedFloor), held, "kinds held")
			// Measured with 20 series per kind: at most 0.001 at 15 s and 0
			// at 5 min on the Gaussian bases; 0.18 and 0.12 on the
			// heavy-tailed one (a known weakness, held against getting worse).
			limit := map[string]float64{"flat": 0.02, "daily": 0.02, "heavy-tailed": 0.4}
			for b, fa := range InjectedFalseAlarms(c, o, step) {
				base := InjectedBases[b]
				t.Logf("%s: false alarms per series-day: %.4f", base, fa)
				require.LessOrEqual(t, fa, limit[base], "%s: false alarms per series-day", base)
			}
		})
	}
}
