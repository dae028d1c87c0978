package detector

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

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
		score, _ := observe15s(&c, &cfg, e, 0)
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

	ts := c.timeScale(&cfg)
	adj := math.Log(ts)
	band := c.errBand(&cfg, c.longWindow(&cfg, ts))
	half := band.half(zAt(cfg.surpriseAtThreshold()+adj), cfg.surpriseAtThreshold()+adj)
	require.Greater(t, half, 12.0, "the bounds must cover the daily deviation")
	score, _ := observe15s(&c, &cfg, 2*half, 0)
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
		score, _ := observe15s(&c, &cfg, math.Abs(rng.NormFloat64()), v)
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
		score, _ := observe15s(&c, &cfg, e, 100)
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
		score, warm := observe15s(&c, &cfg, math.Abs(rng.NormFloat64()), 1000+rng.NormFloat64())
		require.True(t, warm)
		require.Less(t, score, cfg.Threshold, "sample %d", i)
	}
}

// With the variance-drop term on (it is off by default: on the dev corpora it
// changed one false alarm and no detection), a noisy series that goes flat
// inside its normal range opens an anomaly.
func TestScoringVarianceDrop(t *testing.T) {
	cfg := DefaultScoringConfig
	cfg.VarianceWindow = 5
	// Per sample: at 15 s the reference interval takes ln(20) nats off, more
	// than this term's reach above its margin in 200 samples.
	cfg.ReferenceInterval = 0
	c, _ := calmCalibration(t, &cfg, 11, 12)
	opened := false
	for range 200 {
		// Stuck at a normal value, predicted perfectly.
		score, _ := observe15s(&c, &cfg, 0.1, 10)
		opened = opened || score >= cfg.Threshold
	}
	require.True(t, opened, "a series going flat must open an anomaly")
}

// SeriesState carries the whole calibration, what the series is scored as
// and a counter's base (format 7), and still decodes format 6, whose series
// resolve their kind again and restart a counter's base, format 5, whose series restart the point term's short mean, format 4,
// whose series restart the profile's spread, format 3, whose series restart the daily profile, format 2, whose range
// comes from the value moments, and format 1, whose series restart the value
// statistics and tails.
func TestSeriesStateCarriesCalibration(t *testing.T) {
	c := noisyCalibration(1000, 13)
	require.NotZero(t, c.daily.visited)
	s := &series{cal: c, kind: MetricTypeCounter, kindDeclared: true, prevRaw: 1234.5}
	st := exportSeries(s)
	require.Equal(t, SeriesState{Kind: MetricTypeCounter, KindDeclared: true, HasCounterBase: true, CounterBase: 1234.5},
		SeriesState{Kind: st.Kind, KindDeclared: st.KindDeclared, HasCounterBase: st.HasCounterBase, CounterBase: st.CounterBase})
	b7, err := st.MarshalBinary()
	require.NoError(t, err)
	require.Equal(t, byte(stateFormatV7), b7[0])
	var got SeriesState
	require.NoError(t, got.UnmarshalBinary(b7))
	require.Equal(t, st, got)

	// Format 6: the same bytes without the kind, cause and counter base.
	b := append([]byte(nil), b7[:len(b7)-2-8]...)
	b[0] = stateFormatV6
	got = SeriesState{}
	require.NoError(t, got.UnmarshalBinary(b))
	st.Kind, st.KindDeclared, st.HasCounterBase, st.CounterBase = MetricTypeUnknown, false, false, 0
	require.Equal(t, st, got)

	require.Equal(t, c, restoreCalibration(&got))
	require.Nil(t, c.daily.tails, "a series without a daily cycle has no cycle tails")

	// A series with a daily cycle carries its cycle tails.
	cyc := c
	cyc.daily.tails = &cycleTails{}
	cyc.daily.tails.res.learn(1.5, 0.5, 100, true)
	cyc.daily.tails.pt.learn(2.5, 0.25, 100, true)
	stCyc := exportSeries(&series{cal: cyc})
	cb, err := stCyc.MarshalBinary()
	require.NoError(t, err)
	var gotCyc SeriesState
	require.NoError(t, gotCyc.UnmarshalBinary(cb))
	require.Equal(t, cyc, restoreCalibration(&gotCyc))

	// Format 5: the same bytes without the point term's short mean.
	b5 := append([]byte(nil), b[:len(b)-4]...)
	b5[0] = stateFormatV5
	var got5 SeriesState
	require.NoError(t, got5.UnmarshalBinary(b5))
	want5 := st
	want5.CalPointShort = 0
	require.Equal(t, want5, got5)

	// Format 4: the same bytes without the format 5 tail (the profile's
	// spread, the point tail, the interval and the cycle flag).
	const v5Tail = 4*(profileBins+histBins+1+1) + 1
	b4 := append([]byte(nil), b5[:len(b5)-v5Tail]...)
	b4[0] = stateFormatV4
	var got4 SeriesState
	require.NoError(t, got4.UnmarshalBinary(b4))
	want4 := want5
	want4.CalProfileVar, want4.CalPointTail, want4.CalIntervalMs, want4.CalCycle = [profileBins]float32{}, [histBins + 1]float32{}, 0, false
	require.Equal(t, want4, got4)

	// Format 3: the same bytes without the daily profile (CalResN 0 is the
	// last byte of a format 4 record without one).
	noDaily := st
	noDaily.CalResN, noDaily.CalResMean, noDaily.CalResVar, noDaily.CalResShort = 0, 0, 0, 0
	noDaily.CalResTail, noDaily.CalProfile, noDaily.CalProfileVisited, noDaily.CalProfileStart = [histBins + 1]float32{}, [profileBins]float32{}, 0, 0
	noDaily.CalProfileVar, noDaily.CalPointTail, noDaily.CalIntervalMs, noDaily.CalCycle = [profileBins]float32{}, [histBins + 1]float32{}, 0, false
	noDaily.CalPointShort = 0
	b, err = noDaily.MarshalBinary()
	require.NoError(t, err)
	b3 := append([]byte(nil), b[:len(b)-1-2]...) // CalResN 0, kind, cause
	b3[0] = stateFormatV3
	var got3 SeriesState
	require.NoError(t, got3.UnmarshalBinary(b3))
	require.Equal(t, noDaily, got3)
	restored := restoreCalibration(&got3)
	// bandMax, the calibration's state in the profile's padding, restarts
	// from the error tail's maximum (the same on calm noise).
	require.Equal(t, c.daily.bandMax, restored.daily.bandMax)
	require.Equal(t, dailyProfile{bandMax: c.daily.bandMax}, restored.daily, "the daily profile restarts")
	restored.daily = c.daily
	require.Equal(t, c, restored)

	// Format 2: the format 3 bytes without the range at the end.
	st = noDaily
	b2 := append([]byte(nil), b3[:len(b3)-8]...)
	b2[0] = stateFormatV2
	var got2 SeriesState
	require.NoError(t, got2.UnmarshalBinary(b2))
	sd := float32(math.Sqrt(float64(st.CalValVar)))
	require.InDelta(t, st.CalValMean+3*sd, got2.CalValMax, 1e-4)
	require.InDelta(t, st.CalValMean-3*sd, got2.CalValMin, 1e-4)
	got2.CalValMax, got2.CalValMin = st.CalValMax, st.CalValMin
	require.Equal(t, st, got2)

	// Format 1: the same bytes up to the end of the V1 fields.
	v1 := SeriesState{Tenant: "t", CalN: 7, CalErrMean: 1, CalErrVar: 2, CalShortErr: 3, Value: 4, LastAboveTs: 9}
	b, err = v1.MarshalBinary()
	require.NoError(t, err)
	b = b[:len(b)-1-2] // CalVN 0, kind, cause
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
		score, _ := observe15s(&c, cfg, math.Abs(rng.NormFloat64()), v)
		maxCalm = max(maxCalm, score)
	}
	require.Less(t, maxCalm, cfg.Threshold)
	return c, rng
}

// A value outside the series' whole range adds RangeSurprise to a sample that
// is already surprising, and nothing to one inside the range.
func TestRangeSurprise(t *testing.T) {
	cfg := DefaultScoringConfig
	cfg.InRangeErrorCap = false // the range term's own addition, not the cap it enables
	off := cfg
	off.RangeSurprise = 0
	c, _ := calmCalibration(t, &cfg, 21, 22)
	require.Less(t, c.valMax, float32(16))
	require.Greater(t, c.valMin, float32(4))
	bonus := cfg.RangeSurprise / -math.Log(cfg.PFloor)
	for _, tc := range []struct {
		name       string
		value, e   float64
		withRecord bool    // RangeWithErrorRecord
		added      float64 // score added by the range term
	}{
		// e = 3: a surprising error, but within the calm series' largest.
		{"above the range", 25, 3, false, bonus},
		{"below the range", -5, 3, false, bonus},
		{"inside the range", 10, 3, false, 0},
		// e = 5: beyond the largest error seen, which the error term's
		// extrapolation scores; the same record is not counted twice.
		{"above the range, record error", 25, 5, false, 0},
		{"above the range, record error, range_with_error_record", 25, 5, true, bonus},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.e > math.Exp2(float64(c.errTail.max)), tc.e == 5, "is e a record")
			on, base := cfg, off
			on.RangeWithErrorRecord, base.RangeWithErrorRecord = tc.withRecord, tc.withRecord
			withTerm, without := c, c
			got, _ := observe15s(&withTerm, &on, tc.e, tc.value)
			want, _ := observe15s(&without, &base, tc.e, tc.value)
			require.Greater(t, want, 0.0)
			require.InDelta(t, tc.added, got-want, 1e-9)
		})
	}
}

// A series that trends to new highs in small steps gets nothing from the
// range term: each new high is within the margin.
func TestRangeSurpriseIgnoresSteadyTrends(t *testing.T) {
	cfg := DefaultScoringConfig
	cfg.InRangeErrorCap = false // the range term's own addition, not the cap it enables
	off := cfg
	off.RangeSurprise = 0
	var with, without calibration
	rng := rand.New(rand.NewPCG(23, 24))
	for i := range 3000 {
		e := 0.5 * math.Abs(rng.NormFloat64())
		got, _ := observe15s(&with, &cfg, e, float64(i))
		base, _ := observe15s(&without, &off, e, float64(i))
		require.Equal(t, base, got, "sample %d", i)
	}
	require.Equal(t, float32(2999), with.valMax)
}

// An error far beyond anything seen scores at most ln(n) nats, plus
// InRangeErrorExcess of the rest, while the value stays inside the series'
// range, and is extrapolated as before once the value leaves it; the band
// reaches at least to the range's edges.
func TestInRangeErrorCap(t *testing.T) {
	nats := -math.Log(DefaultScoringConfig.PFloor)
	for _, excess := range []float64{0, DefaultScoringConfig.InRangeErrorExcess} {
		cfg := DefaultScoringConfig
		cfg.InRangeErrorExcess = excess
		uncapped := cfg
		uncapped.InRangeErrorCap = false
		c, _ := calmCalibration(t, &cfg, 31, 32)
		lower, upper := c.bounds(&cfg, new(cfg.bandZ()), 10, 1)
		require.GreaterOrEqual(t, upper, float64(c.valMax), "the band reaches the range's top")
		require.LessOrEqual(t, lower, float64(c.valMin), "the band reaches the range's bottom")
		for _, tc := range []struct {
			name       string
			value      float64
			wantCapped bool
		}{
			{"inside the range", 10, true},
			{"beyond the range", 30, false},
		} {
			t.Run(fmt.Sprintf("%s, excess %g", tc.name, excess), func(t *testing.T) {
				capped, free := c, c
				const e = 40 // an error far beyond the calm series' largest
				got, _ := observe15s(&capped, &cfg, e, tc.value)
				want, _ := observe15s(&free, &uncapped, e, tc.value)
				if !tc.wantCapped {
					require.Equal(t, want, got)
					require.GreaterOrEqual(t, got, cfg.Threshold)
					return
				}
				require.Less(t, got, want)
				require.Less(t, got, cfg.Threshold)
				if excess == 0 {
					// The error term is at most ln(warm samples before
					// this one); the level terms of one normal value add
					// little.
					require.LessOrEqual(t, got*nats, math.Log(float64(c.warmCount(&cfg)))+1)
					return
				}
				hard := cfg
				hard.InRangeErrorExcess = 0
				hardCapped := c
				floor, _ := observe15s(&hardCapped, &hard, e, tc.value)
				require.Greater(t, got, floor, "the excess still counts")
				// Up to twice the cap: at most (1 + excess) ln(n).
				require.LessOrEqual(t, got*nats, (1+excess)*math.Log(float64(c.warmCount(&cfg)))+1)
			})
		}
	}
}

// With an InRangeErrorExcess large enough for an in-range error to reach
// the threshold (the default's stays below it, but a series scraped every
// 15 s that has seen weeks of samples, or a larger excess, can), an error
// far enough beyond the calm series' largest opens even inside the range,
// and the band says where: after one value of 1,000 widened the range of a
// series at 10 ± 1, the band ends inside it; an error beyond its edge
// opens, one inside it does not. With the default the band reaches the
// range's edge.
func TestBandInsideAWideRange(t *testing.T) {
	cfg := DefaultScoringConfig
	c, rng := calmCalibration(t, &cfg, 33, 34)
	cfg.InRangeErrorExcess = 1
	observe15s(&c, &cfg, math.Abs(rng.NormFloat64()), 1000)
	for range 300 {
		observe15s(&c, &cfg, math.Abs(rng.NormFloat64()), 10+rng.NormFloat64())
	}
	lo, hi := c.rangeEdges(&cfg)
	def := DefaultScoringConfig
	_, upperDefault := c.bounds(&def, new(def.bandZ()), 10, 1)
	require.GreaterOrEqual(t, upperDefault, hi, "the default's band reaches the range's edge")
	lower, upper := c.bounds(&cfg, new(cfg.bandZ()), 10, 1)
	require.Less(t, upper, hi, "the band ends inside the range")
	require.Greater(t, lower, lo)
	require.Greater(t, upper-10, math.Exp2(float64(c.errTail.max)), "beyond the calm errors")
	for _, tc := range []struct {
		factor float64
		opens  bool
	}{{0.8, false}, {1.25, true}} {
		t.Run(fmt.Sprint(tc.factor), func(t *testing.T) {
			probe := c
			score, _ := observe15s(&probe, &cfg, tc.factor*(upper-10), 10)
			require.Equal(t, tc.opens, score >= cfg.Threshold, "score %.3f", score)
		})
	}
}

// zAtLarge inverts the Gaussian surprise as zAt does, without bisection.
func TestZAtLarge(t *testing.T) {
	for s := 5.0; s <= 400; s *= 1.13 {
		require.InDelta(t, s, -logGaussTail(zAtLarge(s)), 0.03, "s = %g", s)
	}
}

// noisyCalibration is the calibration after n samples of noise around 5,
// 15 s apart, with the default scoring.
func noisyCalibration(n int, seed uint64) calibration {
	cfg := DefaultScoringConfig
	var c calibration
	rng := rand.New(rand.NewPCG(seed, seed+1))
	for range n {
		observe15s(&c, &cfg, math.Abs(rng.NormFloat64()), 5+rng.NormFloat64())
	}
	return c
}

// observe15s feeds c one sample 15 s after its previous one.
func observe15s(c *calibration, cfg *ScoringConfig, e, v float64) (float64, bool) {
	const step = 15000
	score, warm, _ := c.observe(cfg, e, v, int64(c.n+1)*step, step, true)
	return score, warm
}

// The typical sampling interval (ReferenceInterval) follows a change of
// scrape interval but not an outage: after an hour without samples a 15 s
// series is still scored as one.
func TestTypicalIntervalIgnoresOutages(t *testing.T) {
	cfg := DefaultScoringConfig
	var c calibration
	const step = 15_000
	for range 100 {
		c.observeInterval(step)
	}
	require.InDelta(t, 20, c.timeScale(&cfg), 0.01)
	c.observeInterval(3600_000)
	require.Greater(t, c.timeScale(&cfg), 18.0, "right after an hour's outage")
	for range 100 {
		c.observeInterval(60_000)
	}
	require.InDelta(t, 5, c.timeScale(&cfg), 0.05, "after the scrape interval moved to 1 m")
	for range 100 {
		c.observeInterval(600_000)
	}
	require.Equal(t, 1.0, c.timeScale(&cfg), "a series slower than the reference is scored per sample")
}

// An anomaly does not widen the band it is shown against through the error
// tail: the band extrapolates from the largest error of the samples that
// scored below the threshold, while the tail itself learns the anomaly. (The
// band still reaches to the series' range, which the anomaly's value
// widens.)
func TestAnomalyDoesNotWidenTheBand(t *testing.T) {
	cfg := DefaultScoringConfig
	c, _ := calmCalibration(t, &cfg, 41, 42)
	half := func() float64 {
		ts := c.timeScale(&cfg)
		band := c.errBand(&cfg, c.longWindow(&cfg, ts))
		return band.half(zAt(cfg.surpriseAtThreshold()), cfg.surpriseAtThreshold()+math.Log(ts))
	}
	before, maxBefore := half(), c.errTail.max
	score, _ := observe15s(&c, &cfg, 200, 500) // far beyond anything seen
	require.GreaterOrEqual(t, score, cfg.Threshold)
	require.Greater(t, c.errTail.max, maxBefore+5, "the tail learns the anomaly")
	// Extrapolated from the tail's maximum it would be about 2^5 times as
	// wide; the anomaly's share of the tail moves it by a few per cent.
	require.Less(t, half(), 1.1*before, "the band's half width after the anomaly")

	// A calm sample after it: the band's maximum follows the calm errors.
	observe15s(&c, &cfg, 1, 10)
	require.Less(t, half(), 1.1*before)
}

// An anomaly's cause is the term that contributed most to its opening
// sample: a spike the model did not predict, a level the recent values left,
// or a value unusual for its time of day though usual overall.
func TestCauseOfAnOpen(t *testing.T) {
	for _, tc := range []struct {
		name string
		feed func(t *testing.T, cfg *ScoringConfig) (score float64, cause Cause)
		want Cause
	}{
		{"spike", func(t *testing.T, cfg *ScoringConfig) (float64, Cause) {
			c, _ := calmCalibration(t, cfg, 5, 6)
			score, _, cause := c.observe(cfg, 40, 50, int64(c.n+1)*15000, 15000, true)
			return score, cause
		}, CausePrediction},
		{"level shift", func(t *testing.T, cfg *ScoringConfig) (float64, Cause) {
			c, rng := calmCalibration(t, cfg, 5, 6)
			for range 20 {
				// The model follows the new level (8σ up); the values stay.
				v := 18 + rng.NormFloat64()
				score, _, cause := c.observe(cfg, math.Abs(rng.NormFloat64()), v, int64(c.n+1)*15000, 15000, true)
				if score >= cfg.Threshold {
					return score, cause
				}
			}
			return 0, CauseUnknown
		}, CauseLevel},
		{"daily pattern", func(t *testing.T, cfg *ScoringConfig) (float64, Cause) {
			var c calibration
			rng := rand.New(rand.NewPCG(7, 32))
			const step = 5 * 60 * 1000
			ts := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
			for range 8 * 86400_000 / step {
				score, _, _ := c.observe(cfg, 0.8, dailySeries(rng, ts, 50), ts, step, true)
				require.Less(t, score, cfg.Threshold)
				ts += step
			}
			// 18:00 UTC is the cycle's trough (50); the series' mean, 100,
			// is usual overall but not then.
			ts += (18*3600_000 - ts%86400_000 + 86400_000) % 86400_000
			for range 12 {
				score, _, cause := c.observe(cfg, 0.8, 100+3*rng.NormFloat64(), ts, step, true)
				if score >= cfg.Threshold {
					return score, cause
				}
				ts += step
			}
			return 0, CauseUnknown
		}, CauseSeasonal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultScoringConfig
			score, cause := tc.feed(t, &cfg)
			require.GreaterOrEqual(t, score, cfg.Threshold, "no anomaly opened")
			require.Equal(t, tc.want, cause)
		})
	}
}

// inRangeSurpriseFor inverts inRangeError where an in-range error can reach
// the target, and says so where none can.
func TestInRangeSurpriseFor(t *testing.T) {
	for _, excess := range []float64{0, 0.2, 1} {
		cfg := DefaultScoringConfig
		cfg.InRangeErrorExcess = excess
		const n, lw = 5000, 8000
		capped := math.Log(n)
		for _, target := range []float64{2, capped, capped + 0.5, 1.19 * capped, 1.21 * capped, 3 * capped} {
			s, ok := cfg.inRangeSurpriseFor(target, n, lw)
			reachable := target <= capped*(1+excess)
			require.Equal(t, reachable, ok, "excess %g, target %g", excess, target)
			if ok {
				require.InDelta(t, target, cfg.inRangeError(s, n, lw), 1e-9)
			}
		}
	}
}
