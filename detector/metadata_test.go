package detector

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

func TestFamilyTypesResolveSeries(t *testing.T) {
	f := NewFamilyTypes(100)
	require.Zero(t, f.Set("t", []MetricFamily{
		{"http_requests_total", FamilyTypeCounter},
		{"pg_stat_activity_count", FamilyTypeGauge},
		{"request_duration_seconds", FamilyTypeHistogram},
		{"rpc_duration_seconds", FamilyTypeSummary},
		{"queue_wait_seconds", FamilyTypeGaugeHistogram},
		{"om_events", FamilyTypeCounter}, // OpenMetrics: the family without _total
		{"build_info", FamilyTypeInfo},
		{"legacy_thing", FamilyTypeUnknown},
		{"", FamilyTypeCounter}, // ignored
	}))
	for _, tc := range []struct {
		tenant, name string
		want         MetricType
	}{
		{"t", "http_requests_total", MetricTypeCounter},
		{"t", "pg_stat_activity_count", MetricTypeGauge},
		{"t", "request_duration_seconds_bucket", MetricTypeCounter},
		{"t", "request_duration_seconds_sum", MetricTypeCounter},
		{"t", "request_duration_seconds_count", MetricTypeCounter},
		{"t", "rpc_duration_seconds", MetricTypeGauge}, // a summary's quantiles
		{"t", "rpc_duration_seconds_count", MetricTypeCounter},
		{"t", "queue_wait_seconds_bucket", MetricTypeGauge},
		{"t", "om_events_total", MetricTypeCounter},
		{"t", "build_info", MetricTypeGauge},
		{"t", "legacy_thing", MetricTypeUnknown},
		{"t", "unknown_total", MetricTypeUnknown},
		{"other", "pg_stat_activity_count", MetricTypeUnknown}, // per tenant
	} {
		require.Equal(t, tc.want, f.SeriesType(tc.tenant, tc.name), "%s/%s", tc.tenant, tc.name)
	}

	// Resending the same types does not move the epoch; a change does.
	e := f.epoch.Load()
	f.Set("t", []MetricFamily{{"http_requests_total", FamilyTypeCounter}})
	require.Equal(t, e, f.epoch.Load())
	f.Set("t", []MetricFamily{{"http_requests_total", FamilyTypeGauge}})
	require.Equal(t, e+1, f.epoch.Load())
	require.Equal(t, MetricTypeGauge, f.SeriesType("t", "http_requests_total"))
}

func TestMetadataIsBoundedByMaxMetricFamilies(t *testing.T) {
	d, _ := newTestDetector(t, func(c *Config) { c.MaxMetricFamilies = 2 })
	d.AppendMetadata("t", []MetricFamily{{"a", FamilyTypeGauge}, {"b", FamilyTypeGauge}, {"c_total", FamilyTypeGauge}})
	require.Equal(t, 2, d.families.Len())
	require.Equal(t, 1.0, testutil.ToFloat64(d.metrics.familiesRefused))
	// A known family may still change type at the limit.
	d.AppendMetadata("t", []MetricFamily{{"a", FamilyTypeCounter}})
	require.Equal(t, MetricTypeCounter, d.families.SeriesType("t", "a"))
	require.Equal(t, 1.0, testutil.ToFloat64(d.metrics.familiesRefused))
	require.Error(t, (&Config{MaxMetricFamilies: 0}).Validate())
}

// A gauge named like a counter, as Remote-Write 1.0 sends it (its type in a
// metadata request of its own): scored on its values once the metadata
// says so, whether that came before its samples or after. By its name
// alone, every decrease reads as a restart and its "rate" as a surge.
func TestMetadataDeclaresAGaugeNamedLikeACounter(t *testing.T) {
	gauge := []MetricFamily{{"pg_stat_activity_count", FamilyTypeGauge}}
	for _, tc := range []struct {
		name           string
		metadataBefore bool
		metadataAfter  int // samples before the metadata arrives; 0: never
		wantRaw        bool
	}{
		{"metadata first", true, 0, true},
		{"metadata after 100 samples", false, 100, true},
		{"no metadata", false, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sink := &recordingSink{}
			d, _ := newTestDetector(t, nil, sink)
			if tc.metadataBefore {
				d.AppendMetadata("", gauge)
			}
			ls := lbls("__name__", "pg_stat_activity_count", "job", "db")
			rng := rand.New(rand.NewPCG(5, 6))
			ts := int64(1_700_000_000_000)
			for i := range 1500 {
				if tc.metadataAfter > 0 && i == tc.metadataAfter {
					d.AppendMetadata("", gauge)
				}
				// Connections: about 50, moving up and down by a few.
				feed(t, d, ls, ts, math.Round(50+3*rng.NormFloat64()))
				ts += 15_000
			}
			r, ok := latest(d, ls)
			require.True(t, ok)
			if tc.wantRaw {
				require.InDelta(t, 50, r.Value, 15, "scored as sent")
				require.InDelta(t, 50, r.Expected, 10)
				require.Empty(t, sink.events, "a gauge moving by a few connections opens nothing")
			} else {
				require.Greater(t, math.Abs(r.Expected-50), 10.0, "by its name, scored on a made-up rate: expected %g", r.Expected)
			}
		})
	}
}

// Metadata that arrives after a series was scored by its name restarts the
// series' window and calibration at its next sample, and closes an open
// anomaly: the rates it learnt say nothing about its values.
func TestKindChangeRestartsTheSeries(t *testing.T) {
	sink := &recordingSink{}
	d, _ := newTestDetector(t, nil, sink)
	ls := lbls("__name__", "jobs_count", "job", "batch")
	ts := int64(1_700_000_000_000)
	v := 1000.0
	for range 200 {
		v += 10
		feed(t, d, ls, ts, v)
		ts += 15_000
	}
	s := d.lookupForTest("", ls)
	require.Equal(t, MetricTypeCounter, s.kind)
	require.False(t, s.kindDeclared)
	require.NotZero(t, s.cal.n)

	d.AppendMetadata("", []MetricFamily{{"jobs_count", FamilyTypeGauge}})
	feed(t, d, ls, ts, v)
	s = d.lookupForTest("", ls)
	require.Equal(t, MetricTypeGauge, s.kind)
	require.True(t, s.kindDeclared)
	require.Equal(t, int16(1), s.count, "the window restarted at the sample")
	require.Zero(t, s.cal.n, "the calibration restarted")

	// Samples that do not say keep the declared kind; a later change of the
	// family's type moves it again.
	ts += 15_000
	feed(t, d, ls, ts, v)
	require.Equal(t, MetricTypeGauge, d.lookupForTest("", ls).kind)
	d.AppendMetadata("", []MetricFamily{{"jobs_count", FamilyTypeCounter}})
	ts += 15_000
	feed(t, d, ls, ts, v)
	s = d.lookupForTest("", ls)
	require.Equal(t, MetricTypeCounter, s.kind)
	require.Zero(t, s.count, "restarted; a counter's first value only sets its base")
}

// A checkpoint carries what a series is scored as and a counter's base: a
// restored counter's first sample is scored, not taken as its base again.
func TestCheckpointCarriesTheCounterBase(t *testing.T) {
	d, _ := newTestDetector(t, nil)
	ls := lbls("__name__", "http_requests_total", "job", "api")
	rng := rand.New(rand.NewPCG(7, 8))
	ts, total := int64(1_700_000_000_000), 0.0
	for range 300 {
		total += 1500 + 40*rng.NormFloat64()
		feed(t, d, ls, ts, total)
		ts += 15_000
	}
	var states []SeriesState
	d.ExportState(nil, func(st SeriesState) bool { states = append(states, st); return true })
	require.Len(t, states, 1)
	require.True(t, states[0].HasCounterBase)
	require.Equal(t, total, states[0].CounterBase)
	b, err := states[0].MarshalBinary()
	require.NoError(t, err)
	var st SeriesState
	require.NoError(t, st.UnmarshalBinary(b))

	restored, _ := newTestDetector(t, nil)
	require.True(t, restored.ImportState(st))
	require.NoError(t, restored.Flush())
	feed(t, restored, ls, ts, total+1500)
	require.Zero(t, testutil.ToFloat64(restored.metrics.unscoredCounterStart))
	r, ok := latest(restored, ls)
	require.True(t, ok)
	require.Equal(t, ts, r.TimestampMs, "the first sample after the restore is scored")
	require.InDelta(t, 100, r.Value, 1e-9, "as a rate from the checkpointed base")
}

// lookupForTest returns the series of tenant and ls; the caller must not
// append concurrently.
func (d *Detector) lookupForTest(tenant string, ls Labels) *series {
	h := hashSeries(tenant, ls)
	sh := &d.shards[h%numShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return d.lookup(sh, h, tenant, ls)
}
