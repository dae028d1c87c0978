package detector

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

func TestIsCounter(t *testing.T) {
	for _, tc := range []struct {
		name string
		typ  MetricType
		want bool
	}{
		{"http_requests_total", MetricTypeUnknown, true},
		{"http_request_duration_seconds_bucket", MetricTypeUnknown, true},
		{"http_request_duration_seconds_sum", MetricTypeUnknown, true},
		{"http_request_duration_seconds_count", MetricTypeUnknown, true},
		{"node_memory_MemAvailable_bytes", MetricTypeUnknown, false},
		{"up", MetricTypeUnknown, false},
		{"total", MetricTypeUnknown, false},
		// The input's word wins over the name.
		{"pg_stat_activity_count", MetricTypeGauge, false},
		{"process_cpu_seconds", MetricTypeCounter, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, isCounter(lbls("__name__", tc.name, "job", "x"), tc.typ))
		})
	}
}

func TestCounterRate(t *testing.T) {
	require.Equal(t, 10.0, counterRate(100, 250, 0, 15_000))
	require.Equal(t, 2.0, counterRate(100, 30, 0, 15_000), "a reset: counted from 0")
	require.Equal(t, 0.0, counterRate(100, 100, 0, 15_000))
}

// A counter is scored on its rate: an outage (no increase for a minute)
// opens an anomaly, a process restart (reset to 0) does not, and results
// and bands are per-second rates. Scored as raw values, the restart opens
// an anomaly and the outage, which only bends a rising line, does not.
func TestCounterIsScoredOnItsRate(t *testing.T) {
	for _, tc := range []struct {
		name          string
		counterRate   bool
		wantResetOpen bool
		wantOpen      bool
	}{
		{"rate", true, false, true},
		{"raw values", false, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sink := &recordingSink{}
			d, _ := newTestDetector(t, func(c *Config) { c.CounterRate = tc.counterRate }, sink)
			ls := lbls("__name__", "http_requests_total", "job", "api")
			rng := rand.New(rand.NewPCG(3, 4))
			const step = 15_000
			total, ts := 1e6, int64(1_700_000_000_000)
			sample := func(increase float64) {
				total += increase
				feed(t, d, ls, ts, total)
				ts += step
			}
			require.Equal(t, 0.0, testutil.ToFloat64(d.metrics.unscoredCounterStart))
			for i := range 3000 {
				sample(1500 + 40*rng.NormFloat64()) // 100 requests a second
				if i == 2000 {
					total = 0 // the process restarted
				}
			}
			if tc.counterRate {
				require.Equal(t, 1.0, testutil.ToFloat64(d.metrics.unscoredCounterStart), "the first value only sets the base")
				r, ok := latest(d, ls)
				require.True(t, ok)
				require.InDelta(t, 100, r.Value, 10, "scored as a rate")
				require.InDelta(t, 100, r.Expected, 10)
				require.Less(t, r.Lower, 100.0)
				require.Greater(t, r.Upper, 100.0)
			}
			require.Equal(t, tc.wantResetOpen, len(sink.events) > 0, "the restart: events %+v", sink.events)
			before := len(sink.events)
			for range 4 {
				sample(0) // the service stopped serving
			}
			outage := sink.events[before:]
			opened := len(outage) > 0 && outage[0].Kind == EventOpen
			require.Equal(t, tc.wantOpen, opened, "the outage: events %+v", outage)
			if opened {
				require.Equal(t, DirectionDown, outage[0].Direction)
				require.Zero(t, outage[0].Value)
			}
		})
	}
}

// After a stale marker a counter's next value starts afresh: it is not
// compared with the value before the target went away.
func TestCounterStartsAfreshAfterAStaleMarker(t *testing.T) {
	d, _ := newTestDetector(t, nil)
	ls := lbls("__name__", "jobs_done_total")
	feed(t, d, ls, 1000, 50)
	feed(t, d, ls, 2000, 60)
	feed(t, d, ls, 3000, math.Float64frombits(staleNaN))
	feed(t, d, ls, 4000, 5)
	require.Equal(t, 2.0, testutil.ToFloat64(d.metrics.unscoredCounterStart))
	feed(t, d, ls, 5000, 9)
	require.Equal(t, 2.0, testutil.ToFloat64(d.metrics.unscoredCounterStart))
}

// A sample the deviation knobs ignore (gated out) still teaches the level
// tails how common its surprise is. Taught only the samples that pass the
// knobs, the tails had seen too few to know any of them is ordinary: error
// counters that move by one every two hours, with min_abs_deviation at one
// increment per scrape, opened 28 anomalies in 60 series-days (0 without
// the knob).
func TestGatedOutSamplesTeachTheLevelTails(t *testing.T) {
	minAbs := 1.0 / 15
	match, err := NewMatcher(MatchEqual, MetricNameLabel, "errors_total")
	require.NoError(t, err)
	sink := &recordingSink{}
	d, _ := newTestDetector(t, func(c *Config) {
		c.AnomalyCloseAfter = DefaultConfig.AnomalyCloseAfter
		c.DeviationOverrides = []DeviationOverride{{Selector: `{__name__="errors_total"}`, MinAbsDeviation: &minAbs, Match: Selector{match}}}
	}, sink)
	rng := rand.New(rand.NewPCG(1, 2))
	const step, days = 15_000, 5
	totals := make([]float64, 10)
	for j := range days * 86400_000 / step {
		ts := int64(1_700_000_000_000) + int64(j)*step
		if j == 2*86400_000/step {
			sink.events = nil // the first two days may surprise
		}
		for i := range totals {
			for range 5 {
				if rng.Float64() < step/7200_000.0/5 {
					totals[i]++
				}
			}
			d.Append("", lbls("__name__", "errors_total", "series", string(rune('a'+i))), []Sample{{TimestampMs: ts, Value: totals[i]}})
		}
		require.NoError(t, d.Flush())
	}
	opens := 0
	for _, ev := range sink.events {
		if ev.Kind == EventOpen {
			opens++
		}
	}
	require.Zero(t, opens, "anomalies opened in 30 series-days")
}

// What the input says wins over the name: a counter without _total, and a
// gauge named like a counter.
func TestAppendTypedSaysWhatASeriesIs(t *testing.T) {
	d, _ := newTestDetector(t, nil)
	served := lbls("__name__", "served")
	for i, v := range []float64{100, 130, 190} {
		d.AppendTyped("", served, []Sample{{TimestampMs: int64(i+1) * 15_000, Value: v}}, MetricTypeCounter)
	}
	require.Equal(t, 1.0, testutil.ToFloat64(d.metrics.unscoredCounterStart), "a counter's first value only sets the base")
	require.Equal(t, []float64{2, 4}, d.series(t, "", served).window(nil), "per-second increases")

	active := lbls("__name__", "pg_stat_activity_count")
	for i, v := range []float64{7, 5, 6} {
		d.AppendTyped("", active, []Sample{{TimestampMs: int64(i+1) * 15_000, Value: v}}, MetricTypeGauge)
	}
	require.Equal(t, []float64{7, 5, 6}, d.series(t, "", active).window(nil), "a gauge is scored as sent")
}

// deviation_overrides[].metric_type beats metadata, names and
// counter_rate: a gauge named like a counter whose sender sends no
// metadata, and a counter without the suffixes.
func TestMetricTypeOverride(t *testing.T) {
	gauge, counter := MetricTypeGauge, MetricTypeCounter
	queue, err := NewMatcher(MatchEqual, MetricNameLabel, "queue_count")
	require.NoError(t, err)
	served, err := NewMatcher(MatchEqual, MetricNameLabel, "served")
	require.NoError(t, err)
	for _, counterRate := range []bool{true, false} {
		t.Run(fmt.Sprintf("counter_rate=%v", counterRate), func(t *testing.T) {
			d, _ := newTestDetector(t, func(c *Config) {
				c.CounterRate = counterRate
				c.DeviationOverrides = []DeviationOverride{
					{Selector: `{__name__="queue_count"}`, MetricType: &gauge, Match: Selector{queue}},
					{Selector: `{__name__="served"}`, MetricType: &counter, Match: Selector{served}},
				}
			}, nil)
			for _, tc := range []struct {
				name string
				ls   Labels
				typ  MetricType // what the input says
				want []float64  // the window after 7, 5, 6 at 15 s
			}{
				{"a gauge named like a counter, no metadata", lbls("__name__", "queue_count"), MetricTypeUnknown, []float64{7, 5, 6}},
				{"the same, metadata saying counter", lbls("__name__", "queue_count", "sender", "wrong"), MetricTypeCounter, []float64{7, 5, 6}},
				// The first value sets the base; 7 → 5 is a restart from 0.
				{"a counter without the suffixes", lbls("__name__", "served"), MetricTypeUnknown, []float64{5.0 / 15, 1.0 / 15}},
			} {
				for i, v := range []float64{7, 5, 6} {
					d.AppendTyped("", tc.ls, []Sample{{TimestampMs: int64(i+1) * 15_000, Value: v}}, tc.typ)
				}
				require.InDeltaSlice(t, tc.want, d.series(t, "", tc.ls).window(nil), 1e-6, tc.name)
			}
		})
	}
}
