package detector

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// A deviation that recurs every day is learnt by the empirical tail, while a
// larger one never seen before still opens an anomaly.
func TestScoringLearnsRecurringDeviations(t *testing.T) {
	cfg := DefaultScoringConfig
	cfg.LevelWindow = 0
	var c calibration
	rng := rand.New(rand.NewPCG(3, 4))
	const day = 288
	var first, last float64
	for i := range 20 * day {
		e := math.Abs(rng.NormFloat64())
		if i%day == day-1 {
			e = 12 // a daily batch job
		}
		score, _ := c.observe(&cfg, e, 0, true)
		require.GreaterOrEqual(t, score, 0.0)
		require.LessOrEqual(t, score, 1.0)
		if i == 2*day-1 {
			first = score
		}
		if i == 20*day-1 {
			last = score
		}
	}
	require.Less(t, last, cfg.Threshold, "a daily deviation must stop being anomalous")
	require.Less(t, last, first)

	zThr := cfg.zAtThreshold()
	half := c.halfWidth(&cfg, zThr)
	require.Greater(t, half, 12.0, "the bounds must cover the daily deviation")
	score, _ := c.observe(&cfg, 2*half, 0, true)
	require.GreaterOrEqual(t, score, cfg.Threshold, "an error twice the bounds must be anomalous")
}

// A level shift opens an anomaly through the level term even where the
// prediction error alone stays below the threshold.
func TestScoringLevelShift(t *testing.T) {
	cfg := DefaultScoringConfig
	c, rng := calmCalibration(t, &cfg, 5, 6)
	opened := false
	for range 20 {
		// The model follows the shift (small errors); the values do not
		// return.
		v := 16 + rng.NormFloat64()
		score, _ := c.observe(&cfg, math.Abs(rng.NormFloat64()), v, true)
		opened = opened || score >= cfg.Threshold
	}
	require.True(t, opened, "a sustained 6σ level shift must open an anomaly")
}

// The first warm samples have no history: they must not score high however
// large their error looks against a barely estimated distribution.
func TestScoringFirstWarmSamplesAreCautious(t *testing.T) {
	cfg := DefaultScoringConfig
	var c calibration
	rng := rand.New(rand.NewPCG(7, 8))
	for i := range cfg.WarmupSamples + 5 {
		e := 0.1 * math.Abs(rng.NormFloat64())
		if i >= cfg.WarmupSamples {
			e = 3 // heavy-tailed but ordinary
		}
		score, _ := c.observe(&cfg, e, 100, true)
		require.Less(t, score, cfg.Threshold, "sample %d", i)
	}
}

// A calibration restored with only the error statistics (SeriesState from an
// older replica) restarts the value statistics and tails instead of scoring
// every value against zeros.
func TestScoringRestoredCalibrationIsCautious(t *testing.T) {
	cfg := DefaultScoringConfig
	c := calibration{n: 5000, errMean: 0.8, errVar: 0.36, shortErr: 0.8}
	rng := rand.New(rand.NewPCG(9, 10))
	for i := range 500 {
		score, warm := c.observe(&cfg, math.Abs(rng.NormFloat64()), 1000+rng.NormFloat64(), true)
		require.True(t, warm)
		require.Less(t, score, cfg.Threshold, "sample %d", i)
	}
}

// A noisy series that goes flat inside its normal range opens an anomaly
// through the variance-drop term; the same series staying noisy does not.
func TestScoringVarianceDrop(t *testing.T) {
	cfg := DefaultScoringConfig
	c, _ := calmCalibration(t, &cfg, 11, 12)
	opened := false
	for range 200 {
		// Stuck at a normal value, predicted perfectly.
		score, _ := c.observe(&cfg, 0.1, 10, true)
		opened = opened || score >= cfg.Threshold
	}
	require.True(t, opened, "a series going flat must open an anomaly")
}

// SeriesState carries the whole calibration (format 2) and still decodes
// format 1, whose series restart the value statistics and tails.
func TestSeriesStateCarriesCalibration(t *testing.T) {
	cfg := DefaultScoringConfig
	var c calibration
	rng := rand.New(rand.NewPCG(13, 14))
	for range 1000 {
		c.observe(&cfg, math.Abs(rng.NormFloat64()), 5+rng.NormFloat64(), true)
	}
	s := &series{cal: c}
	st := exportSeries(s)
	b, err := st.MarshalBinary()
	require.NoError(t, err)
	require.Equal(t, byte(stateFormatV2), b[0])
	var got SeriesState
	require.NoError(t, got.UnmarshalBinary(b))
	require.Equal(t, st, got)

	require.Equal(t, c, restoreCalibration(&got))

	// Format 1: the same bytes up to the end of the V1 fields.
	v1 := SeriesState{Tenant: "t", CalN: 7, CalErrMean: 1, CalErrVar: 2, CalShortErr: 3, Value: 4, LastAboveTs: 9}
	b, err = v1.MarshalBinary()
	require.NoError(t, err)
	b = b[:len(b)-1] // CalVN 0
	b[0] = stateFormatV1
	got = SeriesState{}
	require.NoError(t, got.UnmarshalBinary(b))
	require.Equal(t, v1, got)
}

// calmCalibration feeds 2000 calm samples (values around 10, small errors)
// and checks that none of them reaches the threshold. It returns the
// calibration and the random stream, which the caller continues.
func calmCalibration(t *testing.T, cfg *ScoringConfig, seed1, seed2 uint64) (calibration, *rand.Rand) {
	t.Helper()
	var c calibration
	rng := rand.New(rand.NewPCG(seed1, seed2))
	maxCalm := 0.0
	for range 2000 {
		v := 10 + rng.NormFloat64()
		score, _ := c.observe(cfg, math.Abs(rng.NormFloat64()), v, true)
		maxCalm = max(maxCalm, score)
	}
	require.Less(t, maxCalm, cfg.Threshold)
	return c, rng
}
