package remotewrite

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
	"github.com/sentinel-mesh/sentinel-mesh/detector/onnxmodel"
	"github.com/sentinel-mesh/sentinel-mesh/internal/metrictest"
	"github.com/sentinel-mesh/sentinel-mesh/limits"
)

// eventLog records the detector's anomaly events.
type eventLog struct {
	mu     sync.Mutex
	events []detector.Event
}

func (l *eventLog) HandleEvents(evs []detector.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, evs...)
}

func (l *eventLog) opens() []int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var ts []int64
	for _, e := range l.events {
		if e.Kind == detector.EventOpen {
			ts = append(ts, e.TimestampMs)
		}
	}
	return ts
}

// liveDetector is the real detector with the embedded LSTM, its scheduler
// running, behind the real handler; all metrics in one registry.
func liveDetector(t *testing.T, dcfg detector.Config, hcfg Config, sinks ...detector.EventSink) (*detector.Detector, *Handler, *prometheus.Registry) {
	t.Helper()
	m, err := onnxmodel.LoadDefault(onnxmodel.Options{IntraOpThreads: 1})
	require.NoError(t, err, "ONNX Runtime is needed: make ort, or set SENTINEL_ORT_LIB")
	t.Cleanup(func() { _ = m.Close() })
	reg := prometheus.NewRegistry()
	dcfg.Scoring.LearningPeriod = 0 // the series are seconds old
	d, err := detector.New(dcfg, slog.New(slog.DiscardHandler), reg, sinks...)
	require.NoError(t, err)
	d.SetModel(m)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	h, err := NewHandler(hcfg, d, slog.New(slog.DiscardHandler), reg)
	require.NoError(t, err)
	return d, h, reg
}

// scoreCounts reads scored + warm-up (every sample compared with a
// prediction) and inference_lag (left unscored).
func scoreCounts(t *testing.T, reg *prometheus.Registry) (compared, lag float64) {
	compared = metrictest.Value(t, reg, "sentinel_mesh_samples_scored_total") +
		metrictest.Value(t, reg, "sentinel_mesh_samples_unscored_total", "reason", "warmup")
	return compared, metrictest.Value(t, reg, "sentinel_mesh_samples_unscored_total", "reason", "inference_lag")
}

// A 5,000-sample series with a spike, sent back to back in requests of 500
// samples (as Prometheus sends its WAL after an outage), through the real
// handler into the real detector with the embedded LSTM: every sample after
// the first window is scored, in order, and the anomaly opens at the spike.
// With catch-up off most samples are left unscored, which is what this
// test would see without the backlog.
func TestBackToBackReplayScoresEverySample(t *testing.T) {
	const n, spike, perRequest = 5000, 4000, 500
	rng := rand.New(rand.NewPCG(11, 12))
	var samples []prompb.Sample
	for i := range n {
		v := 100 + rng.NormFloat64()
		if i == spike {
			v += 60
		}
		samples = append(samples, prompb.Sample{Timestamp: 1_700_000_000_000 + int64(i)*15_000, Value: v})
	}
	for _, tc := range []struct {
		name    string
		catchUp detector.CatchUpConfig
		allOfIt bool
	}{
		{"catch-up (default)", detector.DefaultCatchUpConfig, true},
		{"catch-up off", detector.CatchUpConfig{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dcfg := detector.DefaultConfig
			dcfg.CatchUp = tc.catchUp
			events := &eventLog{}
			d, h, reg := liveDetector(t, dcfg, DefaultConfig(), events)
			w := d.Model().Window()
			ls := lbls("__name__", "http_requests_per_second", "job", "api")
			for i := 0; i < n; i += perRequest {
				rec := post(t, h, ctV1, snap(marshalV1(t, v1Series(ls, samples[i:i+perRequest]...))))
				require.Equal(t, http.StatusNoContent, rec.Code, rec.Body.String())
			}
			// Every sample is in: wait for scoring to catch up.
			require.Eventually(t, func() bool {
				compared, lag := scoreCounts(t, reg)
				return compared+lag == float64(n-w)
			}, 60*time.Second, 10*time.Millisecond)
			compared, lag := scoreCounts(t, reg)
			t.Logf("%s: %.0f samples compared with a prediction, %.0f left unscored, anomalies opened at %v", tc.name, compared, lag, events.opens())
			if !tc.allOfIt {
				require.Greater(t, lag, float64(n/2))
				return
			}
			require.Zero(t, lag)
			require.Equal(t, float64(n-w), compared)
			require.Contains(t, events.opens(), samples[spike].Timestamp, "the anomaly opens at the spike")
			require.Zero(t, metrictest.RequireValue(t, reg, "sentinel_mesh_catch_up_backlog_samples"))
		})
	}
}

// One tenant over its limits (series and rate) neither stops another
// tenant's series from being created nor from being scored, through the
// real handler and the real detector with the embedded LSTM.
func TestTenantLimitsIsolateTenants(t *testing.T) {
	lc := limits.Config{Overrides: map[string]limits.Override{
		"noisy": {MaxSeries: new(5), MaxSamplesPerSecond: new(100.0), BurstSamples: new(1000)},
	}}
	require.NoError(t, lc.Validate())
	dcfg := detector.DefaultConfig
	dcfg.MaxSeries = 20 // shared by both tenants: noisy alone could fill it
	dcfg.TenantLimits = &lc
	hcfg := DefaultConfig()
	hcfg.TenantLimits = &lc
	d, h, reg := liveDetector(t, dcfg, hcfg)
	w := d.Model().Window()

	request := func(series, samples int, ts0 int64) []byte {
		var ts []prompb.TimeSeries
		for s := range series {
			var smps []prompb.Sample
			for i := range samples {
				smps = append(smps, prompb.Sample{Timestamp: ts0 + int64(i)*15_000, Value: float64(s) + float64(i%7)})
			}
			ts = append(ts, v1Series(lbls("__name__", "load", "instance", fmt.Sprint(s)), smps...))
		}
		return snap(marshalV1(t, ts...))
	}
	const t0 = 1_700_000_000_000

	// 20 series of 40 samples: within the burst, over max_series.
	rec := post(t, h, ctV1, request(20, 40, t0), "X-Scope-OrgID", "noisy")
	require.Equal(t, http.StatusBadRequest, rec.Code)
	require.Contains(t, rec.Body.String(), `600 samples of new series refused: tenant "noisy" holds its limit of 5 series (limits.max_series)`)
	require.Equal(t, 5.0, metrictest.Value(t, reg, "sentinel_mesh_tenant_series", "tenant", "noisy"))
	require.Equal(t, 600.0, metrictest.Value(t, reg, "sentinel_mesh_tenant_samples_dropped_total", "tenant", "noisy", "reason", "series_limit"))

	// The bucket holds 200 samples now: the next 800 are refused whole.
	rec = post(t, h, ctV1, request(20, 40, t0+40*15_000), "X-Scope-OrgID", "noisy")
	require.Equal(t, http.StatusTooManyRequests, rec.Code)
	require.Contains(t, rec.Body.String(), `tenant "noisy" exceeds its ingestion rate limit of 100 samples/s with a burst of 1000`)
	require.NotEmpty(t, rec.Header().Get("Retry-After"))
	require.Equal(t, 800.0, metrictest.Value(t, reg, "sentinel_mesh_remote_write_tenant_samples_rate_limited_total", "tenant", "noisy"))

	// The other tenant creates its 15 series (the 20 left by detector.max_series
	// less noisy's 5), 200 samples each, back to back, and every one is scored.
	for i := range 4 {
		rec = post(t, h, ctV1, request(15, 50, t0+int64(i)*50*15_000), "X-Scope-OrgID", "quiet")
		require.Equal(t, http.StatusNoContent, rec.Code, rec.Body.String())
	}
	require.Equal(t, 15.0, metrictest.Value(t, reg, "sentinel_mesh_tenant_series", "tenant", "quiet"))
	require.Eventually(t, func() bool {
		scored := 0
		d.Results(func(r *detector.Result) bool {
			if r.Tenant == "quiet" && r.TimestampMs == t0+199*15_000 {
				scored++
			}
			return true
		})
		return scored == 15
	}, 60*time.Second, 10*time.Millisecond, "every series of the other tenant scored up to its last sample")
	compared, lag := scoreCounts(t, reg)
	require.Zero(t, lag)
	require.Equal(t, float64(15*(200-w)+5*(40-w)), compared)
	require.Zero(t, metrictest.Value(t, reg, "sentinel_mesh_remote_write_tenant_samples_rate_limited_total", "tenant", "quiet"))
	require.Zero(t, metrictest.Value(t, reg, "sentinel_mesh_tenant_samples_dropped_total", "tenant", "quiet", "reason", "series_limit"))
}

// Prometheus sends a family's type in Remote-Write 1.0 metadata requests
// of their own (queue_config's send_metadata, on by default): through the
// real handler they type the series of later requests for the detector. A
// gauge named like a counter is then scored as sent, not as a rate.
func TestV1MetadataTypesLaterSeries(t *testing.T) {
	d, h, reg := liveDetector(t, detector.DefaultConfig, DefaultConfig())
	meta, err := (&prompb.WriteRequest{Metadata: []prompb.MetricMetadata{
		{MetricFamilyName: "pg_stat_activity_count", Type: prompb.MetricMetadata_GAUGE, Help: "connections"},
		{MetricFamilyName: "db_queries", Type: prompb.MetricMetadata_COUNTER},
	}}).Marshal()
	require.NoError(t, err)
	rec := post(t, h, ctV1, snap(meta), "X-Scope-OrgID", "db-team")
	require.Equal(t, http.StatusNoContent, rec.Code, rec.Body.String())
	require.Equal(t, 2.0, metrictest.Value(t, reg, "sentinel_mesh_metric_families"))

	gauge := lbls("__name__", "pg_stat_activity_count", "job", "db")
	counter := lbls("__name__", "db_queries", "job", "db") // a counter without _total
	t0 := int64(1_700_000_000_000)
	for i := range 200 {
		ts := t0 + int64(i)*15_000
		conns := float64(50 + i%7 - 3) // up and down by a few
		rec := post(t, h, ctV1, snap(marshalV1(t,
			v1Series(gauge, prompb.Sample{Value: conns, Timestamp: ts}),
			v1Series(counter, prompb.Sample{Value: float64(1500 * i), Timestamp: ts}),
		)), "X-Scope-OrgID", "db-team")
		require.Equal(t, http.StatusNoContent, rec.Code, rec.Body.String())
		require.NoError(t, d.Flush())
	}
	got := map[string]detector.Result{}
	d.Results(func(r *detector.Result) bool {
		got[r.Labels.Get("__name__")] = *r
		return true
	})
	require.Contains(t, got, "pg_stat_activity_count")
	require.Contains(t, got, "db_queries")
	require.InDelta(t, 50, got["pg_stat_activity_count"].Expected, 5, "the gauge is scored as sent")
	require.InDelta(t, 100, got["db_queries"].Value, 1e-9, "the counter is scored on its rate")
	require.Less(t, got["pg_stat_activity_count"].Score, 0.5, "a gauge moving by a few connections is not surprising")
}
