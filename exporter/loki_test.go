package exporter

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/grafana/loki/pkg/push"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"gopkg.in/yaml.v3"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type stubEnricher map[string]string

func (s stubEnricher) Enrich(_ string, lbls detector.Labels, add func(name, value string)) {
	if lbls.Get("pod") == "" {
		return
	}
	for k, v := range s {
		add(k, v)
	}
}

type stubIncidents string

func (s stubIncidents) Incident(*detector.Event) string { return string(s) }

// lokiRequest is one push as the test server decoded it.
type lokiRequest struct {
	header http.Header
	req    push.PushRequest
	json   map[string]any
}

// lokiServer answers each push with the next code of codes (200 once they
// run out) and records what it decoded with the loki/pkg/push types.
func lokiServer(t *testing.T, codes ...int) (*httptest.Server, func() []lokiRequest) {
	t.Helper()
	var (
		mu   sync.Mutex
		reqs []lokiRequest
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		require.NoError(t, err)
		lr := lokiRequest{header: r.Header.Clone()}
		if r.Header.Get("Content-Type") == "application/json" {
			require.NoError(t, json.Unmarshal(body, &lr.json))
		} else {
			raw, err := snappy.Decode(nil, body)
			require.NoError(t, err)
			require.NoError(t, lr.req.Unmarshal(raw))
		}
		mu.Lock()
		reqs = append(reqs, lr)
		code := http.StatusNoContent
		if len(codes) > 0 {
			code, codes = codes[0], codes[1:]
		}
		mu.Unlock()
		w.WriteHeader(code)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []lokiRequest {
		mu.Lock()
		defer mu.Unlock()
		return append([]lokiRequest(nil), reqs...)
	}
}

func testLokiConfig(url string) LokiConfig {
	cfg := DefaultLokiConfig()
	cfg.URL = url
	cfg.BatchWait = model.Duration(20 * time.Millisecond)
	cfg.MinBackoff = model.Duration(time.Millisecond)
	cfg.MaxBackoff = model.Duration(5 * time.Millisecond)
	return cfg
}

func runOutput(t *testing.T, run func(context.Context) error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			require.NoError(t, <-done)
		})
	}
	t.Cleanup(stop)
	return stop
}

var testSeries = detector.FromStrings("__name__", "http_requests_total", "job", "api", "namespace", "shop", "pod", "web-1")

// fixedClock returns t, then t+1s, t+2s, ... on each call.
func fixedClock(t time.Time) func() time.Time {
	var mu sync.Mutex
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(time.Second)
		return t.Add(-time.Second)
	}
}

// twoOpens are the opens of two anomalies of one stream.
func twoOpens() []detector.Event {
	a := testEvents()[0]
	b := a
	b.ID = 8
	return []detector.Event{a, b}
}

func testEvents() []detector.Event {
	open := detector.Event{
		Kind: detector.EventOpen, ID: 7, Tenant: "acme", Labels: testSeries,
		OpenedAtMs: 1_700_000_000_000, TimestampMs: 1_700_000_000_000,
		Value: 250, Expected: 100, Lower: 80, Upper: 120, Score: 0.995, PeakScore: 0.995,
		Direction: detector.DirectionUp, Cause: detector.CauseLevel, ModelVersion: "v3",
	}
	closed := open
	closed.Kind, closed.ClosedAtMs, closed.TimestampMs = detector.EventClose, 1_700_000_300_000, 1_700_000_300_000
	closed.Value, closed.Score, closed.PeakScore = 101, 0.2, 0.999
	return []detector.Event{open, closed}
}

func TestLokiPushesEveryField(t *testing.T) {
	srv, got := lokiServer(t)
	reg := prometheus.NewPedanticRegistry()
	l, err := NewLoki(testLokiConfig(srv.URL), DefaultLabelNames, stubEnricher{"workload": "web", "workload_kind": "Deployment"}, stubIncidents("inc-1"), slog.New(slog.DiscardHandler), reg)
	require.NoError(t, err)
	emit := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	l.now = fixedClock(emit)
	runOutput(t, l.Run)
	l.HandleEvents(testEvents())
	// The close waits for its open's request.
	require.Eventually(t, func() bool { return len(got()) == 2 }, 5*time.Second, 5*time.Millisecond)

	// namespace and tenant are stream labels, not metadata too.
	meta := push.LabelsAdapter{
		{Name: "job", Value: "api"}, {Name: "metric", Value: "http_requests_total"}, {Name: "model", Value: "v3"},
		{Name: "pod", Value: "web-1"}, {Name: "workload", Value: "web"}, {Name: "workload_kind", Value: "Deployment"},
		{Name: "anomaly_id", Value: "7"}, {Name: "incident_id", Value: "inc-1"},
	}
	want := []push.Entry{
		{
			Timestamp:          emit,
			Line:               "event=open score=0.9950 observed=250 expected=100 lower=80 upper=120 deviation_pct=150.0 direction=up cause=level sample_time=2023-11-14T22:13:20.000Z",
			StructuredMetadata: meta,
		},
		{
			Timestamp:          emit.Add(time.Second),
			Line:               "event=close score=0.2000 observed=101 expected=100 lower=80 upper=120 deviation_pct=1.0 direction=up cause=level duration=5m0s peak_score=0.9990 sample_time=2023-11-14T22:18:20.000Z",
			StructuredMetadata: meta,
		},
	}
	for i, r := range got() {
		require.Equal(t, "acme", r.header.Get("X-Scope-OrgID"))
		require.Equal(t, "application/x-protobuf", r.header.Get("Content-Type"))
		require.Len(t, r.req.Streams, 1)
		s := r.req.Streams[0]
		// Severity comes from the peak score: both events are critical.
		require.Equal(t, `{namespace="shop", service_name="sentinel-mesh", severity="critical", tenant="acme"}`, s.Labels)
		require.Len(t, s.Entries, 1)
		e := s.Entries[0]
		e.Timestamp = e.Timestamp.UTC()
		require.Equal(t, want[i], e)
	}

	require.Equal(t, 2.0, testutil.ToFloat64(l.metrics.sent))
	require.Equal(t, 2.0, testutil.ToFloat64(l.metrics.requests.WithLabelValues("204")))
}

func TestLokiStaticTenantAndWarningSeverity(t *testing.T) {
	srv, got := lokiServer(t)
	cfg := testLokiConfig(srv.URL)
	cfg.TenantID = "ops"
	l, err := NewLoki(cfg, DefaultLabelNames, nil, nil, slog.New(slog.DiscardHandler), nil)
	require.NoError(t, err)
	runOutput(t, l.Run)
	ev := testEvents()[0]
	ev.Tenant, ev.Score, ev.PeakScore = "", 0.95, 0.95
	ev.Labels = detector.FromStrings("__name__", "up")
	l.HandleEvents([]detector.Event{ev})
	require.Eventually(t, func() bool { return len(got()) == 1 }, 5*time.Second, 5*time.Millisecond)
	r := got()[0]
	require.Equal(t, "ops", r.header.Get("X-Scope-OrgID"))
	require.Equal(t, `{service_name="sentinel-mesh", severity="warning"}`, r.req.Streams[0].Labels)
	require.NotContains(t, r.req.Streams[0].Entries[0].Line, "incident_id")
}

func TestLokiJSONFallback(t *testing.T) {
	srv, got := lokiServer(t)
	cfg := testLokiConfig(srv.URL)
	cfg.Format = "json"
	l, err := NewLoki(cfg, DefaultLabelNames, nil, nil, slog.New(slog.DiscardHandler), nil)
	require.NoError(t, err)
	l.now = fixedClock(time.Unix(1_800_000_000, 5))
	runOutput(t, l.Run)
	l.HandleEvents(testEvents()[:1])
	require.Eventually(t, func() bool { return len(got()) == 1 }, 5*time.Second, 5*time.Millisecond)
	streams := got()[0].json["streams"].([]any)
	require.Len(t, streams, 1)
	st := streams[0].(map[string]any)
	require.Equal(t, map[string]any{"namespace": "shop", "service_name": "sentinel-mesh", "severity": "critical", "tenant": "acme"}, st["stream"])
	v := st["values"].([]any)[0].([]any)
	require.Equal(t, "1800000000000000005", v[0])
	require.Contains(t, v[1], "event=open score=0.9950")
	require.Contains(t, v[1], "sample_time=2023-11-14T22:13:20.000Z")
	require.Equal(t, "web-1", v[2].(map[string]any)["pod"])
	require.Equal(t, "7", v[2].(map[string]any)["anomaly_id"])
}

func TestLokiRetriesOn429And5xx(t *testing.T) {
	srv, got := lokiServer(t, http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusNoContent)
	l, err := NewLoki(testLokiConfig(srv.URL), DefaultLabelNames, nil, nil, slog.New(slog.DiscardHandler), nil)
	require.NoError(t, err)
	runOutput(t, l.Run)
	l.HandleEvents(twoOpens())
	require.Eventually(t, func() bool { return testutil.ToFloat64(l.metrics.sent) == 2 }, 5*time.Second, 5*time.Millisecond)
	reqs := got()
	require.Len(t, reqs, 3)
	for _, r := range reqs {
		require.Len(t, r.req.Streams[0].Entries, 2, "every attempt carries the whole batch")
	}
	require.Equal(t, 2.0, testutil.ToFloat64(l.metrics.retries))
	require.Equal(t, 1.0, testutil.ToFloat64(l.metrics.requests.WithLabelValues("429")))
	require.Equal(t, 1.0, testutil.ToFloat64(l.metrics.requests.WithLabelValues("500")))
}

func TestLokiRetriesExhausted(t *testing.T) {
	srv, got := lokiServer(t, 503, 503, 503, 503)
	cfg := testLokiConfig(srv.URL)
	cfg.MaxRetries = 2
	l, err := NewLoki(cfg, DefaultLabelNames, nil, nil, slog.New(slog.DiscardHandler), nil)
	require.NoError(t, err)
	runOutput(t, l.Run)
	l.HandleEvents(testEvents())
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(l.metrics.dropped.WithLabelValues("open_lost")) == 1
	}, 5*time.Second, 5*time.Millisecond)
	// The open ran out of retries; its close is dropped with it, unsent.
	require.Equal(t, 1.0, testutil.ToFloat64(l.metrics.dropped.WithLabelValues("retries_exhausted")))
	require.Len(t, got(), 3)
	require.Equal(t, 1.0, testutil.ToFloat64(l.metrics.failures))
}

func TestLokiDropsOn400(t *testing.T) {
	srv, got := lokiServer(t, http.StatusBadRequest)
	l, err := NewLoki(testLokiConfig(srv.URL), DefaultLabelNames, nil, nil, slog.New(slog.DiscardHandler), nil)
	require.NoError(t, err)
	runOutput(t, l.Run)
	l.HandleEvents(testEvents())
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(l.metrics.dropped.WithLabelValues("open_lost")) == 1
	}, 5*time.Second, 5*time.Millisecond)
	// A 400 without Loki's summary rejects the whole request.
	require.Equal(t, 1.0, testutil.ToFloat64(l.metrics.dropped.WithLabelValues("rejected")))
	require.Len(t, got(), 1, "a 400 is not retried")
	require.Zero(t, testutil.ToFloat64(l.metrics.retries))
}

func TestLokiQueueFull(t *testing.T) {
	cfg := testLokiConfig("http://127.0.0.1:1/loki/api/v1/push")
	cfg.QueueSize = 2
	reg := prometheus.NewPedanticRegistry()
	l, err := NewLoki(cfg, DefaultLabelNames, nil, nil, slog.New(slog.DiscardHandler), reg)
	require.NoError(t, err)
	// Not running: nothing drains the queue.
	evs := testEvents()
	l.HandleEvents(append(evs, evs[0]))
	require.Equal(t, 1.0, testutil.ToFloat64(l.metrics.dropped.WithLabelValues("queue_full")))
	n, err := testutil.GatherAndCount(reg, "sentinel_mesh_loki_queue_length")
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Len(t, l.queue, 2)
}

func TestLokiBatchesBySize(t *testing.T) {
	srv, got := lokiServer(t)
	cfg := testLokiConfig(srv.URL)
	cfg.BatchWait = model.Duration(time.Hour) // only size flushes
	cfg.BatchSize = 1
	l, err := NewLoki(cfg, DefaultLabelNames, nil, nil, slog.New(slog.DiscardHandler), nil)
	require.NoError(t, err)
	runOutput(t, l.Run)
	l.HandleEvents(testEvents())
	require.Eventually(t, func() bool { return len(got()) == 2 }, 5*time.Second, 5*time.Millisecond)
}

func TestLokiFlushesOnShutdown(t *testing.T) {
	srv, got := lokiServer(t)
	cfg := testLokiConfig(srv.URL)
	cfg.BatchWait = model.Duration(time.Hour)
	l, err := NewLoki(cfg, DefaultLabelNames, nil, nil, slog.New(slog.DiscardHandler), nil)
	require.NoError(t, err)
	stop := runOutput(t, l.Run)
	l.HandleEvents(testEvents())
	require.Eventually(t, func() bool { return len(l.queue) == 0 }, 5*time.Second, time.Millisecond)
	stop()
	require.Len(t, got(), 2, "the open, then its close")
	require.Equal(t, 2.0, testutil.ToFloat64(l.metrics.sent))
}

func TestLokiConfigValidate(t *testing.T) {
	cfg := DefaultLokiConfig()
	require.NoError(t, cfg.Validate(), "disabled without url")
	cfg.URL = "ftp://x"
	cfg.Format = "xml"
	cfg.BatchSize = 0
	cfg.MaxBackoff = model.Duration(time.Millisecond)
	err := cfg.Validate()
	for _, key := range []string{"loki.url", "loki.format", "loki.batch_size", "loki.max_backoff"} {
		require.ErrorContains(t, err, key)
	}
}

func TestRetryAfter(t *testing.T) {
	require.Equal(t, 3*time.Second, retryAfter("3", time.Minute))
	require.Equal(t, time.Minute, retryAfter("3600", time.Minute))
	require.Zero(t, retryAfter("", time.Minute))
	require.Zero(t, retryAfter("soon", time.Minute))
	d := retryAfter(time.Now().Add(10*time.Second).UTC().Format(http.TimeFormat), time.Minute)
	require.InDelta(t, 10*time.Second, d, float64(2*time.Second))
}

func TestOutputConfigsParseYAML(t *testing.T) {
	var c struct {
		Loki         LokiConfig           `yaml:"loki"`
		RW           RemoteWriteOutConfig `yaml:"remote_write_out"`
		Alertmanager AlertmanagerConfig   `yaml:"alertmanager"`
	}
	dec := yaml.NewDecoder(strings.NewReader(`
loki:
  url: https://loki.example/loki/api/v1/push
  tenant_id: ops
  basic_auth: {username: u, password: p}
  tls_config: {insecure_skip_verify: true}
remote_write_out:
  url: http://mimir/api/v1/push
  protobuf_message: io.prometheus.write.v2.Request
  authorization: {credentials: token}
  http_headers:
    X-Scope-OrgID: {values: [acme]}
alertmanager:
  urls: [http://am:9093]
  resend_interval: 30s
`))
	dec.KnownFields(true)
	require.NoError(t, dec.Decode(&c))
	require.Equal(t, "ops", c.Loki.TenantID)
	require.Equal(t, "u", c.Loki.HTTPClientConfig.BasicAuth.Username)
	require.Equal(t, "p", string(c.Loki.HTTPClientConfig.BasicAuth.Password))
	require.True(t, c.Loki.HTTPClientConfig.TLSConfig.InsecureSkipVerify)
	require.Equal(t, 1<<20, c.Loki.BatchSize, "defaults kept")
	require.True(t, c.Loki.HTTPClientConfig.FollowRedirects)
	require.NoError(t, c.Loki.Validate())
	require.Equal(t, "token", string(c.RW.HTTPClientConfig.Authorization.Credentials))
	require.NoError(t, c.RW.Validate())
	require.Equal(t, "Bearer", c.RW.HTTPClientConfig.Authorization.Type, "Validate defaults the type")
	require.Equal(t, 4, c.RW.Shards)
	require.Equal(t, model.Duration(30*time.Second), c.Alertmanager.ResendInterval)
	require.NoError(t, c.Alertmanager.Validate())

	dec = yaml.NewDecoder(strings.NewReader("loki:\n  url: http://x\n  batchsize: 1\n"))
	dec.KnownFields(true)
	require.ErrorContains(t, dec.Decode(&c), "batchsize")
}

func TestFormatEventLineCorroborated(t *testing.T) {
	ev := detector.Event{Kind: detector.EventOpen, Score: 0.75, Value: 12, Expected: 10, Lower: 8, Upper: 11.5,
		Direction: detector.DirectionUp, TimestampMs: 1_700_000_000_000, Corroborated: true}
	require.Equal(t, "event=open score=0.7500 observed=12 expected=10 lower=8 upper=11.5 deviation_pct=20.0 direction=up corroborated=true sample_time=2023-11-14T22:13:20.000Z",
		FormatEventLine(&ev))
	ev.Corroborated = false
	require.NotContains(t, FormatEventLine(&ev), "corroborated")
}
