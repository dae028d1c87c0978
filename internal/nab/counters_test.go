package nab

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
	"github.com/sentinel-mesh/sentinel-mesh/detector/onnxmodel"
)

// Most Prometheus series are counters. Scored on their raw values (counter_rate
// off) the default detector found none of these traffic anomalies; scored on
// their rates it finds them all and a restart is not an anomaly (eval
// --counters measures more: docs/detection.md).
func TestCountersAreScoredOnTheirRate(t *testing.T) {
	const step = 15 * time.Second
	c := CounterCorpus(3, 4, step, 5)
	for _, tc := range []struct {
		name        string
		counterRate bool
	}{{"rate", true}, {"raw values", false}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := detector.DefaultConfig
			cfg.CounterRate = tc.counterRate
			// ONNX Runtime is required: make test installs it.
			m, err := onnxmodel.LoadDefault(onnxmodel.Options{IntraOpThreads: 1})
			require.NoError(t, err)
			o, err := Run(c, Detector{Name: "default", Config: cfg, Model: m, Mode: ModeEvents})
			require.NoError(t, m.Close())
			require.NoError(t, err)
			r := ScoreCounters(c, o, step)
			t.Logf("detected %d of %d, %d false opens in %.0f series-days", r.Detected, r.Series, r.FalseOpens, r.SeriesDays)
			require.Equal(t, 12, r.Series)
			if tc.counterRate {
				require.Equal(t, r.Series, r.Detected)
				require.Zero(t, r.FalseOpens)
			} else {
				require.Less(t, r.Detected, r.Series/2)
			}
		})
	}
}

// ScoreCounters counts a detection on the anomaly's samples (and the grace
// after it), and every other open after day 2 as false.
func TestScoreCounters(t *testing.T) {
	const step = time.Minute
	c := CounterCorpus(1, 4, step, 1)
	o := &Output{Scores: make([][]float64, len(c.Series))}
	for i, s := range c.Series {
		o.Scores[i] = make([]float64, len(s.Values))
	}
	w := c.Series[0].Windows[0]
	o.Scores[0][w.End+incidentMerge] = 0.8 // detects, at the end of the grace
	o.Scores[1][w.Start] = 0.8             // series 1's own window starts elsewhere: false
	o.Scores[2][10] = 0.8                  // on day 1: not counted
	got := ScoreCounters(c, o, step)
	require.Equal(t, CounterResult{Series: 4, Detected: 1, FalseOpens: 1, SeriesDays: 8}, got)
	require.Contains(t, CounterMarkdown([]string{"x"}, []CounterResult{got}), "| x | 1 / 4 | 1 in 8 series-days |")
}
