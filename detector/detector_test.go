package detector

import (
	"context"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type recordingSink struct {
	mu     sync.Mutex
	events []Event
}

func (r *recordingSink) HandleEvents(evs []Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, evs...)
}

func newTestDetector(t *testing.T, mod func(*Config), sinks ...EventSink) (*Detector, *prometheus.Registry) {
	t.Helper()
	cfg := DefaultConfig
	cfg.AnomalyCloseAfter = 0
	// The tests' series are minutes long: scored after warm-up, as before
	// learning_period (TestLearningPeriod).
	cfg.Scoring.LearningPeriod = 0
	if mod != nil {
		mod(&cfg)
	}
	reg := prometheus.NewRegistry()
	d, err := New(cfg, slog.New(slog.DiscardHandler), reg, sinks...)
	require.NoError(t, err)
	d.SetModel(WindowMeanModel{W: 16})
	return d, reg
}

func lbls(kv ...string) Labels {
	var ls Labels
	for i := 0; i < len(kv); i += 2 {
		ls = append(ls, Label{kv[i], kv[i+1]})
	}
	return ls
}

// feed appends one sample and runs inference, like the eval harness does.
func feed(t *testing.T, d *Detector, ls Labels, ts int64, v float64) AppendStats {
	t.Helper()
	st := d.Append("", ls, []Sample{{TimestampMs: ts, Value: v}})
	require.NoError(t, d.Flush())
	return st
}

func latest(d *Detector, ls Labels) (Result, bool) {
	var out Result
	found := false
	d.Results(func(r *Result) bool {
		if slices.Equal(r.Labels, ls) {
			out, found = *r, true
			return false
		}
		return true
	})
	return out, found
}

// eventCount sums sentinel_mesh_anomaly_events_total of one kind over its
// causes.
func eventCount(d *Detector, kind string) float64 {
	var n float64
	for _, c := range append([]Cause{CauseUnknown}, Causes...) {
		n += testutil.ToFloat64(d.metrics.events.WithLabelValues(kind, c.String()))
	}
	return n
}

func TestSpikeOpensAndClosesAnomaly(t *testing.T) {
	sink := &recordingSink{}
	d, reg := newTestDetector(t, nil, sink)
	ls := lbls("__name__", "http_requests", "job", "api")
	rng := rand.New(rand.NewPCG(1, 2))
	maxBefore := 0.0
	ts := int64(1000)
	for i := range 300 {
		v := 100 + 10*math.Sin(float64(i)/5) + rng.NormFloat64()
		feed(t, d, ls, ts, v)
		ts += 1000
		if r, ok := latest(d, ls); ok {
			maxBefore = max(maxBefore, r.Score)
		}
	}
	require.Less(t, maxBefore, 0.5, "calm series must score low")
	require.Empty(t, sink.events)

	feed(t, d, ls, ts, 400)
	ts += 1000
	r, ok := latest(d, ls)
	require.True(t, ok)
	require.Greater(t, r.Score, 0.9)
	require.True(t, r.Anomalous)
	require.Greater(t, 400.0, r.Upper, "spike must lie above the upper bound")
	require.Less(t, r.Lower, r.Expected)
	require.Len(t, sink.events, 1)
	require.Equal(t, EventOpen, sink.events[0].Kind)
	require.Equal(t, 400.0, sink.events[0].Value)
	require.Equal(t, CausePrediction, sink.events[0].Cause)

	for i := range 50 {
		feed(t, d, ls, ts, 100+10*math.Sin(float64(300+i)/5)+rng.NormFloat64())
		ts += 1000
	}
	require.Len(t, sink.events, 2)
	require.Equal(t, EventClose, sink.events[1].Kind)
	require.Equal(t, sink.events[0].ID, sink.events[1].ID)
	require.Equal(t, CausePrediction, sink.events[1].Cause, "a close carries its open's cause")
	require.Equal(t, 0.0, testutil.ToFloat64(d.metrics.anomaliesOpen))
	require.Equal(t, 1.0, eventCount(d, "open"))
	require.Equal(t, 1.0, testutil.ToFloat64(d.metrics.events.WithLabelValues("close", "prediction")), "a close counts under its open's cause")
	_ = reg
}

func TestAppendDropsAndCounts(t *testing.T) {
	tests := []struct {
		name    string
		mod     func(*Config)
		samples []Sample
		want    AppendStats
	}{
		{"in order", nil, []Sample{{1, 1}, {2, 2}}, AppendStats{Accepted: 2}},
		{"out of order", nil, []Sample{{2, 1}, {1, 2}, {2, 3}}, AppendStats{Accepted: 1, OutOfOrder: 2}},
		{"nan and inf", nil, []Sample{{1, math.NaN()}, {2, math.Inf(1)}, {3, 1}}, AppendStats{Accepted: 1, NaN: 2}},
		{"stale marker", nil, []Sample{{1, 1}, {2, math.Float64frombits(staleNaN)}, {3, 1}}, AppendStats{Accepted: 2, Stale: 1}},
		{"unselected", func(c *Config) {
			m, _ := NewMatcher(MatchEqual, "job", "other")
			c.Selection = Selection{{m}}
		}, []Sample{{1, 1}}, AppendStats{Unselected: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, _ := newTestDetector(t, tc.mod)
			got := d.Append("", lbls("__name__", "up", "job", "api"), tc.samples)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestSeriesCapAndExpiry(t *testing.T) {
	d, reg := newTestDetector(t, func(c *Config) { c.MaxSeries = 2 })
	for i, name := range []string{"a", "b", "c"} {
		st := d.Append("", lbls("__name__", name), []Sample{{int64(i + 1), 1}})
		if name == "c" {
			require.Equal(t, 1, st.SeriesCap)
		} else {
			require.Equal(t, 1, st.Accepted)
		}
	}
	require.Equal(t, 2, d.NumSeries())
	require.Equal(t, 1.0, testutil.ToFloat64(d.metrics.seriesLimitReached))
	n, err := testutil.GatherAndCount(reg, "sentinel_mesh_series_active")
	require.NoError(t, err)
	require.Equal(t, 1, n)

	d.Expire(time.Now().Add(time.Hour))
	require.Equal(t, 0, d.NumSeries())
	require.Equal(t, 1, d.Append("", lbls("__name__", "c"), []Sample{{1, 1}}).Accepted)
}

func TestTenantsAreSeparateSeries(t *testing.T) {
	d, _ := newTestDetector(t, nil)
	ls := lbls("__name__", "up")
	require.Equal(t, 1, d.Append("a", ls, []Sample{{5, 1}}).Accepted)
	require.Equal(t, 1, d.Append("b", ls, []Sample{{5, 1}}).Accepted)
	require.Equal(t, 2, d.NumSeries())
}

func TestAppendDoesNotRetainLabels(t *testing.T) {
	d, _ := newTestDetector(t, nil)
	buf := []byte("up")
	name := string(buf)
	ls := Labels{{Name: "__name__", Value: name}}
	for i := range 20 {
		feed(t, d, ls, int64(i+1), 1)
	}
	ls[0].Value = "changed"
	_, ok := latest(d, lbls("__name__", "up"))
	require.True(t, ok)
}

func TestDirectionAndMinDeviation(t *testing.T) {
	tests := []struct {
		name   string
		mod    func(*Config)
		spike  float64
		opened bool
	}{
		{"both catches a drop", nil, -200, true},
		{"up ignores a drop", func(c *Config) { c.Scoring.Direction = DirectionUp }, -200, false},
		{"up catches a rise", func(c *Config) { c.Scoring.Direction = DirectionUp }, 400, true},
		{"min abs deviation ignores a small step", func(c *Config) { c.Scoring.MinAbsDeviation = 1000 }, 400, false},
		{"an override for the series sets the direction", overrideFor("x", ptr(DirectionUp), nil), -200, false},
		{"an override for the series keeps the rest", overrideFor("x", ptr(DirectionDown), nil), -200, true},
		{"an override for the series sets a minimum", overrideFor("x", nil, ptr(5.0)), 400, false},
		{"an override for another series changes nothing", overrideFor("y", ptr(DirectionUp), ptr(5.0)), -200, true},
		{"the first matching override wins", func(c *Config) {
			overrideFor("x", ptr(DirectionBoth), nil)(c)
			overrideFor("x", ptr(DirectionUp), nil)(c)
		}, -200, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sink := &recordingSink{}
			d, _ := newTestDetector(t, tc.mod, sink)
			ls := lbls("__name__", "x")
			rng := rand.New(rand.NewPCG(3, 4))
			for i := range 200 {
				feed(t, d, ls, int64(i+1)*1000, 100+rng.NormFloat64())
			}
			feed(t, d, ls, 201_000, tc.spike)
			require.Equal(t, tc.opened, len(sink.events) == 1)
		})
	}
}

// overrideFor adds a deviation override for the series named name.
func overrideFor(name string, dir *Direction, minRel *float64) func(*Config) {
	return func(c *Config) {
		m, err := NewMatcher(MatchEqual, MetricNameLabel, name)
		if err != nil {
			panic(err)
		}
		c.DeviationOverrides = append(c.DeviationOverrides, DeviationOverride{
			Selector: name, Direction: dir, MinRelDeviation: minRel, Match: Selector{m},
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestConcurrentAppend(t *testing.T) {
	d, _ := newTestDetector(t, nil)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				ls := lbls("__name__", "m", "g", string(rune('a'+g)), "i", string(rune('a'+i%20)))
				d.Append("", ls, []Sample{{int64(i + 1), float64(i)}})
				if i%50 == 0 {
					_ = d.Flush()
				}
			}
		}()
	}
	wg.Wait()
	require.Equal(t, 80, d.NumSeries())
}

func TestConfigValidateNamesKeys(t *testing.T) {
	cfg := DefaultConfig
	cfg.MaxSeries = 0
	cfg.Scoring.Threshold = 2
	cfg.AnomalyCloseBelow = -1
	cfg.Scoring.RangeMargin = -0.1
	cfg.Scoring.InRangeErrorExcess = 1.5
	cfg.Scoring.DailyProfileRatio = 1.5
	cfg.Scoring.CorroborationLift = 3
	cfg.EntityLabels = []string{"instance", "not a label"}
	cfg.DeviationOverrides = []DeviationOverride{{Selector: "up"}, {Selector: "up", MetricType: ptr(MetricTypeUnknown)}}
	err := cfg.Validate()
	require.ErrorContains(t, err, "detector.max_series")
	require.ErrorContains(t, err, "detector.scoring.threshold")
	require.ErrorContains(t, err, "detector.anomaly_close_below")
	require.ErrorContains(t, err, "detector.scoring.range_margin")
	require.ErrorContains(t, err, "detector.scoring.in_range_error_excess")
	require.ErrorContains(t, err, "detector.scoring.daily_profile_ratio")
	require.ErrorContains(t, err, "detector.scoring.corroboration_lift")
	require.ErrorContains(t, err, "detector.entity_labels[1]")
	require.ErrorContains(t, err, "detector.deviation_overrides[1].metric_type")
}

func TestHistoryStartsWithTheOpeningSample(t *testing.T) {
	d, _ := newTestDetector(t, nil)
	ls := lbls("__name__", "x")
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range 200 {
		feed(t, d, ls, int64(i+1)*1000, 100+rng.NormFloat64())
	}
	feed(t, d, ls, 201_000, 400)
	var got []HistoryPoint
	d.Recent(nil, "", 0, 1<<62, func(_ string, _ Labels, pts []HistoryPoint) bool {
		got = append(got, pts...)
		return true
	})
	require.Len(t, got, 1, "history begins with the sample that opened the anomaly")
	require.Equal(t, int64(201_000), got[0].TimestampMs)
	require.Equal(t, 400.0, got[0].Value)
	require.GreaterOrEqual(t, got[0].Score, d.Threshold())
}

func TestAnomalyHysteresis(t *testing.T) {
	for _, tc := range []struct {
		name       string
		closeBelow float64
		scores     []float64
		want       []EventKind
	}{
		{"wavering score is one anomaly", 0.15, []float64{0.6, 0.3, 0.45, 0.55, 0.2, 0.1, 0.1}, []EventKind{EventOpen, EventClose}},
		{"below close_below closes", 0.15, []float64{0.6, 0.1, 0.6, 0.1}, []EventKind{EventOpen, EventClose, EventOpen, EventClose}},
		{"hysteresis off", 0.5, []float64{0.6, 0.3, 0.55, 0.1}, []EventKind{EventOpen, EventClose, EventOpen, EventClose}},
		{"below close_below never opens", 0.15, []float64{0.3, 0.45, 0.2}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, _ := newTestDetector(t, func(c *Config) {
				// The scores below are written for a threshold of 0.5.
				c.Scoring.Threshold = 0.5
				c.AnomalyCloseBelow = tc.closeBelow
			})
			s := d.newSeries(1, "", lbls("__name__", "x"))
			var got []EventKind
			for i, sc := range tc.scores {
				if ev, ok := d.transition(s, sc, Sample{TimestampMs: int64(i+1) * 1000, Value: 1}, nil, DirectionUp, CauseLevel); ok {
					got = append(got, ev.Kind)
				}
			}
			require.Equal(t, tc.want, got)
		})
	}
}

func TestBatchHandsEventsAndCountsOnAtCommit(t *testing.T) {
	sink := &recordingSink{}
	d, _ := newTestDetector(t, nil, sink)
	ls := lbls("__name__", "x")
	rng := rand.New(rand.NewPCG(3, 4))
	ts := int64(1000)
	for i := range 300 {
		feed(t, d, ls, ts, 100+10*math.Sin(float64(i)/5)+rng.NormFloat64())
		ts += 1000
	}
	require.Empty(t, sink.events)
	scored := testutil.ToFloat64(d.metrics.samplesScored)

	b := d.Begin()
	st := b.Append("", ls, []Sample{{TimestampMs: ts, Value: 400}})
	require.Equal(t, 1, st.Accepted)
	st = b.Append("", ls, []Sample{{TimestampMs: ts - 1, Value: 1}})
	require.Equal(t, 1, st.OutOfOrder)
	require.Empty(t, sink.events, "events wait for Commit")
	require.Equal(t, scored, testutil.ToFloat64(d.metrics.samplesScored))

	require.NoError(t, b.Commit(context.Background()))
	require.Len(t, sink.events, 1)
	require.Equal(t, EventOpen, sink.events[0].Kind)
	require.Equal(t, scored+1, testutil.ToFloat64(d.metrics.samplesScored))
	require.Equal(t, 1.0, testutil.ToFloat64(d.metrics.dropped.outOfOrder))
}

// AppendMany routes a request's series in shard order; the outcome must be
// what one Append per series gives.
func TestAppendManyMatchesAppend(t *testing.T) {
	sel := func(c *Config) {
		m, err := NewMatcher(MatchNotEqual, "job", "skip")
		require.NoError(t, err)
		c.Selection = Selection{Selector{m}}
	}
	one, _ := newTestDetector(t, sel)
	many, _ := newTestDetector(t, sel)
	rng := rand.New(rand.NewPCG(5, 6))
	var series []SeriesSamples
	for i := range 600 {
		job := "api"
		if i%50 == 0 {
			job = "skip"
		}
		series = append(series, SeriesSamples{Labels: lbls("__name__", "m", "job", job, "pod", strconv.Itoa(i))})
	}
	var wantStats, gotStats AppendStats
	for step := range 80 {
		for i := range series {
			v := 10 + rng.NormFloat64()
			if step == 70 && i%7 == 0 {
				v += 50
			}
			smp := []Sample{{TimestampMs: int64(step+1) * 15_000, Value: v}}
			if i%13 == 0 && step%5 == 0 {
				smp = append(smp, Sample{TimestampMs: int64(step) * 15_000, Value: v}) // out of order
			}
			if i == 3 {
				smp = nil // an empty series is skipped
			}
			series[i].Samples = smp
		}
		b := one.Begin()
		for _, ss := range series {
			wantStats.Add(b.Append("", ss.Labels, ss.Samples))
		}
		require.NoError(t, b.Commit(context.Background()))
		bm := many.Begin()
		gotStats.Add(bm.(ManyAppender).AppendMany("", series))
		require.NoError(t, bm.Commit(context.Background()))
		require.NoError(t, one.Flush())
		require.NoError(t, many.Flush())
	}
	require.Equal(t, wantStats, gotStats)
	require.NotZero(t, gotStats.Unselected)
	require.NotZero(t, gotStats.OutOfOrder)
	results := func(d *Detector) map[string]Result {
		out := map[string]Result{}
		d.Results(func(r *Result) bool {
			out[r.Labels.String()] = *r
			return true
		})
		return out
	}
	want, got := results(one), results(many)
	require.Len(t, got, len(want))
	for k, w := range want {
		g := got[k]
		require.Equal(t, w.Score, g.Score, k)
		require.Equal(t, w.Expected, g.Expected, k)
		require.Equal(t, w.Anomalous, g.Anomalous, k)
	}
	require.Equal(t, eventCount(one, "open"), eventCount(many, "open"))
	require.NotZero(t, eventCount(many, "open"))
}

// A series is not scored in its learning period, however surprising its
// samples; its statistics learn meanwhile, and a replaced pod's series
// inherits its predecessor's age with its calibration.
func TestLearningPeriod(t *testing.T) {
	sink := &recordingSink{}
	d, _ := newTestDetector(t, func(c *Config) { c.Scoring.LearningPeriod = model.Duration(time.Hour) }, sink)
	const step = 15_000
	rng := rand.New(rand.NewPCG(1, 2))
	early := lbls("__name__", "rps", "instance", "10.0.0.1:80", "job", "api", "pod", "api-1")
	late := lbls("__name__", "rps", "instance", "10.0.0.9:80", "job", "web", "pod", "web-1")
	ts := int64(1_700_000_000_000)
	spikeAt := map[int]Labels{120: early, 300: late} // at 30 and 75 minutes
	var learning float64
	for i := range 320 {
		for _, ls := range []Labels{early, late} {
			v := 100 + 5*rng.NormFloat64()
			if spikeAt[i].Get("pod") == ls.Get("pod") {
				v = 400
			}
			feed(t, d, ls, ts, v)
		}
		ts += step
		if i == 120 {
			r, ok := latest(d, early)
			require.True(t, ok)
			require.Zero(t, r.Score, "a spike in the learning period scores 0")
			require.Empty(t, sink.events)
			learning = testutil.ToFloat64(d.metrics.unscoredLearning)
			require.Greater(t, learning, 100.0, "the learning period's samples count as unscored")
			require.Zero(t, testutil.ToFloat64(d.metrics.samplesScored))
		}
	}
	opened := func() (pods []string) {
		for _, ev := range sink.events {
			if ev.Kind == EventOpen {
				pods = append(pods, ev.Labels.Get("pod"))
			}
		}
		return pods
	}
	require.Equal(t, []string{"web-1"}, opened(), "the same spike after the learning period opens")
	learning = testutil.ToFloat64(d.metrics.unscoredLearning)

	// The next pod's series starts from web-1's calibration, age included:
	// a spike right after its first window opens.
	next := lbls("__name__", "rps", "instance", "10.0.0.10:80", "job", "web", "pod", "web-2")
	for range 20 {
		feed(t, d, next, ts, 100+5*rng.NormFloat64())
		ts += step
	}
	feed(t, d, next, ts, 1000)
	require.Equal(t, []string{"web-1", "web-2"}, opened())
	require.Equal(t, learning, testutil.ToFloat64(d.metrics.unscoredLearning), "the successor did not learn again")
}
