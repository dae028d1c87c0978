package nab

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
	"github.com/sentinel-mesh/sentinel-mesh/detector/onnxmodel"
)

// Most Prometheus series are counters. Scored on their raw values (counter_rate
// off) the default detector found none of these traffic anomalies and paged
// on process restarts; scored on their rates it finds them and a restart is
// not an anomaly.
func TestCountersAreScoredOnTheirRate(t *testing.T) {
	const step, days = 15 * time.Second, 4
	c := CounterCorpus(3, days, step, 5)
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
			detected, falseOpens := 0, 0
			for i, s := range c.Series {
				w := s.Windows[0]
				found := false
				for j := 2 * int(24*time.Hour/step); j < len(s.Values); j++ {
					if o.Scores[i][j] <= 0 {
						continue
					}
					if j >= w.Start && j <= w.End+incidentMerge {
						found = true
					} else {
						falseOpens++
					}
				}
				if found {
					detected++
				}
				t.Logf("%s (%s): detected %v", s.Name, CounterKinds[kindIndex(s.Name)].Name, found)
			}
			t.Logf("detected %d of %d, %d false opens in %d series-days", detected, len(c.Series), falseOpens, len(c.Series)*(days-2))
			if tc.counterRate {
				require.Equal(t, len(c.Series), detected)
				require.Zero(t, falseOpens)
			} else {
				require.Less(t, detected, len(c.Series)/2)
			}
		})
	}
}
