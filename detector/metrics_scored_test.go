package detector

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// TestSamplesScoredExcludesWarmup checks that a sample is counted once:
// scored after warm-up, unscored{reason="warmup"} during it.
func TestSamplesScoredExcludesWarmup(t *testing.T) {
	const warmup, window, total = 5, 16, 40
	d, _ := newTestDetector(t, func(c *Config) { c.Scoring.WarmupSamples = warmup })
	ls := lbls("__name__", "x")
	for i := range total {
		feed(t, d, ls, int64(i+1)*1000, float64(100+i%3))
	}
	scored := testutil.ToFloat64(d.metrics.samplesScored)
	warm := testutil.ToFloat64(d.metrics.unscoredWarmup)
	// The first window fills without a prediction; every later sample is
	// compared with one, and the first warmup of those are warm-up.
	require.Equal(t, float64(warmup), warm)
	require.Equal(t, float64(total-window-warmup), scored)
}
