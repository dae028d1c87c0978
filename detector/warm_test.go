package detector

import (
	"context"
	"log/slog"
	"math"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// history is n samples 15 s apart ending before endMs: a noisy daily
// sine, so the daily profile and the seasonal terms take part.
func history(seed uint64, n int, endMs int64) []Sample {
	rng := rand.New(rand.NewPCG(seed, 7))
	out := make([]Sample, n)
	for i := range out {
		ts := endMs - int64(n-i)*15_000
		out[i] = Sample{TimestampMs: ts, Value: 100 + 20*math.Sin(2*math.Pi*float64(ts)/86_400_000) + rng.NormFloat64()}
	}
	return out
}

func warmOne(t *testing.T, d *Detector, tenant string, ls Labels, smps []Sample) WarmOutcome {
	t.Helper()
	out := make([]WarmOutcome, 1)
	require.NoError(t, d.Warm(context.Background(), []WarmSeries{{Tenant: tenant, Labels: ls, Samples: smps}}, out))
	return out[0]
}

// A warmed series must score its next samples exactly as a series that
// received the same history live: calibrate mirrors score.
func TestWarmMatchesLiveScoring(t *testing.T) {
	ls := lbls("__name__", "cpu", "job", "api")
	hist := history(1, 6500, 1_700_000_000_000) // 27 h: the daily terms take part
	next := history(2, 50, 1_700_000_000_000+50*15_000)

	live, warmed := warmAndLive(t, ls, hist, next, nil)
	ws := warmed.series(t, "", ls)
	ls2 := live.series(t, "", ls)
	require.True(t, ws.cal.daily.cycle, "the history must reach the seasonal terms")
	require.Empty(t, cmp.Diff(ls2.cal, ws.cal, cmp.AllowUnexported(calibration{}, dailyProfile{}, cycleTails{}, tailHist{})))
}

// series returns the state of one series (test helper).
func (d *Detector) series(t *testing.T, tenant string, ls Labels) *series {
	t.Helper()
	h := hashSeries(tenant, ls)
	sh := &d.shards[h%numShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	s := d.lookup(sh, h, tenant, ls)
	require.NotNil(t, s)
	return s
}

// A series first seen live while its history is fetched: the hook reports
// it with its first sample's time, and Warm scores that sample against the
// warmed prediction, opening an anomaly on a spike.
func TestWarmScoresTheFirstLiveSample(t *testing.T) {
	type seen struct {
		tenant  string
		ls      Labels
		firstTs int64
	}
	var (
		mu    sync.Mutex
		hooks []seen
	)
	sink := &recordingSink{}
	d, reg := newTestDetector(t, func(c *Config) {
		c.NewSeries = func(tenant string, ls Labels, firstTs int64) {
			mu.Lock()
			defer mu.Unlock()
			hooks = append(hooks, seen{tenant, ls, firstTs})
		}
	}, sink)
	ls := lbls("__name__", "cpu", "job", "api")
	end := int64(1_700_000_000_000)
	hist := history(3, 1440, end)

	d.Append("team-a", ls, []Sample{{TimestampMs: end, Value: 400}})
	require.NoError(t, d.Flush())
	d.Append("team-a", ls, []Sample{{TimestampMs: end + 1, Value: 401}}) // not a new series
	require.Equal(t, []seen{{"team-a", ls, end}}, hooks)
	_, scored := latest(d, ls)
	require.False(t, scored)

	require.Equal(t, WarmInstalled, warmOne(t, d, "team-a", ls, hist))
	r, ok := latest(d, ls)
	require.True(t, ok)
	require.Equal(t, end+1, r.TimestampMs, "the newest live sample is scored")
	require.Greater(t, r.Score, 0.9)
	require.True(t, r.Anomalous)
	require.Len(t, sink.events, 1)
	require.Equal(t, EventOpen, sink.events[0].Kind)
	require.Equal(t, "team-a", sink.events[0].Tenant)
	require.Equal(t, 1.0, testutil.ToFloat64(d.metrics.samplesScored))
	_ = reg

	// The window goes on from the live sample: the next one is scored too.
	require.NoError(t, d.Flush())
	d.Append("team-a", ls, []Sample{{TimestampMs: end + 15_000, Value: 100}})
	r, _ = latest(d, ls)
	require.Equal(t, end+15_000, r.TimestampMs)
}

func TestWarmOutcomes(t *testing.T) {
	end := int64(1_700_000_000_000)
	for _, tc := range []struct {
		name  string
		mod   func(*Config)
		setup func(t *testing.T, d *Detector)
		ls    Labels
		hist  []Sample
		want  WarmOutcome
	}{
		{
			name: "new series",
			ls:   lbls("__name__", "a"), hist: history(1, 100, end), want: WarmInstalled,
		},
		{
			name: "history shorter than a window",
			ls:   lbls("__name__", "a"), hist: history(1, 15, end), want: WarmTooShort,
		},
		{
			name: "series scored live keeps its state",
			ls:   lbls("__name__", "a"), hist: history(1, 100, end),
			setup: func(t *testing.T, d *Detector) {
				for _, s := range history(2, 40, end+100*15_000) {
					feed(t, d, lbls("__name__", "a"), s.TimestampMs, s.Value)
				}
			},
			want: WarmHasState,
		},
		{
			name: "unselected",
			mod:  func(c *Config) { c.Selection = Selection{{mustMatcher(t, MatchEqual, "job", "api")}} },
			ls:   lbls("__name__", "a"), hist: history(1, 100, end), want: WarmUnselected,
		},
		{
			name: "series cap",
			mod:  func(c *Config) { c.MaxSeries = 1 },
			setup: func(t *testing.T, d *Detector) {
				feed(t, d, lbls("__name__", "other"), end, 1)
			},
			ls: lbls("__name__", "a"), hist: history(1, 100, end), want: WarmRefused,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sink := &recordingSink{}
			d, _ := newTestDetector(t, tc.mod, sink)
			if tc.setup != nil {
				tc.setup(t, d)
			}
			scoredBefore := testutil.ToFloat64(d.metrics.samplesScored)
			require.Equal(t, tc.want, warmOne(t, d, "", tc.ls, tc.hist))
			require.Equal(t, scoredBefore, testutil.ToFloat64(d.metrics.samplesScored), "history is not counted as scored")
			require.Empty(t, sink.events)
		})
	}
}

// A spike in the history teaches the calibration but opens nothing.
func TestWarmHistoryOpensNoAnomaly(t *testing.T) {
	sink := &recordingSink{}
	d, _ := newTestDetector(t, nil, sink)
	hist := history(4, 500, 1_700_000_000_000)
	hist[400].Value = 1e4
	ls := lbls("__name__", "a")
	require.Equal(t, WarmInstalled, warmOne(t, d, "", ls, hist))
	require.Empty(t, sink.events)
	require.Equal(t, 0.0, testutil.ToFloat64(d.metrics.anomaliesOpen))
	require.False(t, d.NeedsWarm("", ls))
	require.True(t, d.NeedsWarm("", lbls("__name__", "b")))
}

func TestWarmWithoutModel(t *testing.T) {
	d, err := New(DefaultConfig, slog.New(slog.DiscardHandler), nil)
	require.NoError(t, err)
	require.ErrorContains(t, d.Warm(context.Background(), []WarmSeries{{Labels: lbls("__name__", "a")}}, make([]WarmOutcome, 1)), "no model")
}

func mustMatcher(t *testing.T, mt MatchType, name, value string) *Matcher {
	t.Helper()
	m, err := NewMatcher(mt, name, value)
	require.NoError(t, err)
	return m
}

// The same for a counter: history and live samples are raw counter values
// (with a reset in the history), scored on their rates both ways; the first
// live sample's rate spans from the history's last value.
func TestWarmMatchesLiveScoringForACounter(t *testing.T) {
	ls := lbls("__name__", "requests_total", "job", "api")
	cumulative := func(smps []Sample, from float64) []Sample {
		out := make([]Sample, len(smps))
		total := from
		for i, s := range smps {
			total += s.Value * 15 // the gauge above, as a per-second rate
			if i == len(smps)/2 {
				total = s.Value // a restart
			}
			out[i] = Sample{TimestampMs: s.TimestampMs, Value: total}
		}
		return out
	}
	hist := cumulative(history(1, 3000, 1_700_000_000_000), 5e6)
	next := history(2, 50, 1_700_000_000_000+50*15_000)
	for i := range next {
		next[i].Value = hist[len(hist)-1].Value + float64(i+1)*1500
	}

	warmAndLive(t, ls, hist, next, func(got Result) {
		require.InDelta(t, 100, got.Value, 1e-9, "a rate, spanning from the history's last value")
	})
}

// warmAndLive feeds hist to one detector live and warms another with it,
// then feeds both next and requires the same result after every sample
// (check, if set, sees each).
func warmAndLive(t *testing.T, ls Labels, hist, next []Sample, check func(Result)) (live, warmed *Detector) {
	t.Helper()
	live, _ = newTestDetector(t, nil)
	for _, s := range hist {
		feed(t, live, ls, s.TimestampMs, s.Value)
	}
	warmed, _ = newTestDetector(t, nil)
	require.Equal(t, WarmInstalled, warmOne(t, warmed, "", ls, hist))
	_, scored := latest(warmed, ls)
	require.False(t, scored, "history yields no result")
	for _, s := range next {
		feed(t, live, ls, s.TimestampMs, s.Value)
		feed(t, warmed, ls, s.TimestampMs, s.Value)
		want, ok := latest(live, ls)
		require.True(t, ok)
		got, ok := latest(warmed, ls)
		require.True(t, ok, "the first live sample after the history is scored")
		require.Equal(t, want, got)
		if check != nil {
			check(got)
		}
	}
	return live, warmed
}

// A counter whose first live value (only its base) arrived before its
// history was installed: the next rate spans from that live value.
func TestWarmKeepsACounterLiveBase(t *testing.T) {
	ls := lbls("__name__", "requests_total")
	hist := make([]Sample, 200)
	for i := range hist {
		hist[i] = Sample{TimestampMs: int64(i+1) * 15_000, Value: float64(i+1) * 1500}
	}
	d, _ := newTestDetector(t, nil)
	base := Sample{TimestampMs: 300 * 15_000, Value: 300 * 1500}
	feed(t, d, ls, base.TimestampMs, base.Value)
	require.Equal(t, WarmInstalled, warmOne(t, d, "", ls, hist))
	feed(t, d, ls, base.TimestampMs+15_000, base.Value+3000)
	r, ok := latest(d, ls)
	require.True(t, ok)
	require.Equal(t, 200.0, r.Value, "3000 more in 15 s since the live base")
}

// A series' history counts towards its learning period: warmed from a
// day of it, its first live sample is scored; from 6 hours, it is still
// learning.
func TestWarmHistoryCountsTowardsTheLearningPeriod(t *testing.T) {
	for _, tc := range []struct {
		name   string
		hist   int // samples at 15 s
		scored bool
	}{
		{"25 h of history", 6000, true},
		{"6 h of history", 1440, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, _ := newTestDetector(t, func(c *Config) { c.Scoring.LearningPeriod = DefaultScoringConfig.LearningPeriod })
			ls := lbls("__name__", "cpu", "job", "api")
			end := int64(1_700_000_000_000)
			d.Append("", ls, []Sample{{TimestampMs: end, Value: 400}})
			require.NoError(t, d.Flush())
			require.Equal(t, WarmInstalled, warmOne(t, d, "", ls, history(3, tc.hist, end)))
			r, ok := latest(d, ls)
			require.True(t, ok)
			require.Equal(t, tc.scored, r.Score > 0.9, "score %.2f", r.Score)
			want := 0.0
			if tc.scored {
				want = 1
			}
			require.Equal(t, want, testutil.ToFloat64(d.metrics.samplesScored))
			require.Equal(t, 1-want, testutil.ToFloat64(d.metrics.unscoredLearning))
		})
	}
}
