package nab

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The three kinds differ where it matters, in their tails: the share of
// samples beyond 5 of the Gaussian's standard deviations (15 from 100).
func TestHeavyTailCorpus(t *testing.T) {
	const series, days = 4, 2.0
	for _, tc := range []struct {
		kind            string
		minFar, maxFar  float64 // share of |v - 100| > 15
		mustBePositive  bool
		wantMedianNear  float64
		medianTolerance float64
	}{
		// P(|t3| > 5) = 0.0154; the log-normal is beyond ±15 % of its
		// median for 0.3 z > ln 1.15 or < ln 0.85, P ≈ 0.61; the
		// Gaussian's P(|z| > 5) ≈ 6e-7.
		{kind: "student-t3", minFar: 0.010, maxFar: 0.022, wantMedianNear: 100, medianTolerance: 0.5},
		{kind: "log-normal", minFar: 0.5, maxFar: 0.7, mustBePositive: true, wantMedianNear: 100, medianTolerance: 2},
		{kind: "gaussian", minFar: 0, maxFar: 1e-4, wantMedianNear: 100, medianTolerance: 0.5},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			c, err := HeavyTailCorpus(tc.kind, series, days, time.Minute, 0, 1)
			require.NoError(t, err)
			require.Len(t, c.Series, series)
			var all []float64
			for _, s := range c.Series {
				require.Len(t, s.Values, int(days*1440))
				require.Equal(t, time.Minute, s.Times[1].Sub(s.Times[0]))
				require.Empty(t, s.Windows, "noise has no labelled anomaly")
				all = append(all, s.Values...)
			}
			far := 0
			for _, v := range all {
				if math.Abs(v-100) > 15 {
					far++
				}
				if tc.mustBePositive {
					require.Positive(t, v)
				}
			}
			share := float64(far) / float64(len(all))
			require.GreaterOrEqual(t, share, tc.minFar)
			require.LessOrEqual(t, share, tc.maxFar)
			slices.Sort(all)
			require.InDelta(t, tc.wantMedianNear, all[len(all)/2], tc.medianTolerance)

			again, err := HeavyTailCorpus(tc.kind, series, days, time.Minute, 0, 1)
			require.NoError(t, err)
			require.Equal(t, c.Series[3].Values, again.Series[3].Values, "a seed draws the same series")
		})
	}
}

// Grouped, every hostSize series are the metrics of one scrape target.
func TestHeavyTailCorpusHosts(t *testing.T) {
	c, err := HeavyTailCorpus("gaussian", 10, 0.1, time.Minute, 5, 1)
	require.NoError(t, err)
	instances := map[string]int{}
	for _, s := range c.Series {
		ls := seriesLabels(s)
		require.Equal(t, "gaussian", ls.Get("job"))
		instances[ls.Get("instance")]++
	}
	require.Equal(t, map[string]int{"host000": 5, "host001": 5}, instances)

	alone, err := HeavyTailCorpus("gaussian", 2, 0.1, time.Minute, 0, 1)
	require.NoError(t, err)
	require.Empty(t, seriesLabels(alone.Series[0]).Get("instance"), "each series its own target")

	_, err = HeavyTailCorpus("cauchy", 1, 1, time.Minute, 0, 1)
	require.ErrorContains(t, err, `unknown noise kind "cauchy"`)
}

func TestHeavyTailMarkdown(t *testing.T) {
	md := HeavyTailMarkdown(time.Minute, 5, []HeavyTailResult{{Kind: "student-t3", Detector: "d", Opens: 10, HostOpens: 5, SeriesDays: 100}})
	require.Contains(t, md, "| noise every 1 min |")
	require.Contains(t, md, "| student-t3 | d | 100 | 10 (0.100) | 5 (0.050) |")
}
