package backfill

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/config"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestConfigValidateNamesKeys(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mod     func(*Config)
		wantErr string
	}{
		{name: "off by default", mod: func(c *Config) { c.URL = "" }},
		{name: "valid", mod: func(*Config) {}},
		{name: "url", mod: func(c *Config) { c.URL = "prometheus:9090" }, wantErr: "backfill.url"},
		{name: "protocol", mod: func(c *Config) { c.Protocol = "grpc" }, wantErr: "backfill.protocol"},
		{name: "lookback", mod: func(c *Config) { c.Lookback = 0 }, wantErr: "backfill.lookback"},
		{name: "selector", mod: func(c *Config) { c.Startup = []StartupConfig{{Selectors: []string{"{job="}}} }, wantErr: "backfill.startup[0].selectors[0]"},
		{name: "no selectors", mod: func(c *Config) { c.Startup = []StartupConfig{{Tenant: "a"}} }, wantErr: "backfill.startup[0].selectors must not be empty"},
		{name: "concurrency", mod: func(c *Config) { c.Concurrency = 0 }, wantErr: "backfill.concurrency"},
		{name: "rate", mod: func(c *Config) { c.RequestsPerSecond = 0 }, wantErr: "backfill.requests_per_second"},
		{name: "batch", mod: func(c *Config) { c.MaxSeriesPerRequest = 0 }, wantErr: "backfill.max_series_per_request"},
		{name: "queue", mod: func(c *Config) { c.QueueSize = 0 }, wantErr: "backfill.queue_size"},
		{name: "retries", mod: func(c *Config) { c.MaxRetries = -1 }, wantErr: "backfill.max_retries"},
		{name: "http client", mod: func(c *Config) {
			c.HTTPClientConfig.BearerToken = "a"
			c.HTTPClientConfig.BasicAuth = &config.BasicAuth{Username: "u"}
		}, wantErr: "backfill: invalid HTTP client settings"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			c.URL = "http://prometheus:9090"
			tc.mod(&c)
			err := c.Validate()
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}

// store is an httptest server speaking the parts of the Prometheus API
// backfill uses, over a fixed set of series; it records what it was asked.
type store struct {
	series map[string][]detector.Sample // by selector() of the labels
	labels []detector.Labels

	mu       sync.Mutex
	headers  []http.Header
	queries  []string
	inFlight atomic.Int32
	maxIn    atomic.Int32
	fail     atomic.Int32 // answer this many requests with 503 first
	delay    time.Duration
}

func (s *store) add(ls detector.Labels, smps []detector.Sample) {
	if s.series == nil {
		s.series = map[string][]detector.Sample{}
	}
	s.series[selector(ls)] = smps
	s.labels = append(s.labels, ls)
}

func (s *store) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	for {
		m := s.maxIn.Load()
		if n <= m || s.maxIn.CompareAndSwap(m, n) {
			break
		}
	}
	time.Sleep(s.delay)
	s.mu.Lock()
	s.headers = append(s.headers, r.Header.Clone())
	s.mu.Unlock()
	if s.fail.Add(-1) >= 0 {
		http.Error(w, "overloaded", http.StatusServiceUnavailable)
		return
	}
	switch r.URL.Path {
	case "/api/v1/read":
		body, _ := io.ReadAll(r.Body)
		raw, err := snappy.Decode(nil, body)
		if err != nil || r.Header.Get("Content-Encoding") != "snappy" {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		var req prompb.ReadRequest
		if err := req.Unmarshal(raw); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var resp prompb.ReadResponse
		for _, q := range req.Queries {
			var res prompb.QueryResult
			// Equality matchers match series with more labels too.
			for _, ls := range s.labels {
				if matchesAll(ls, q.Matchers) {
					ts := prompb.TimeSeries{}
					for _, l := range ls {
						ts.Labels = append(ts.Labels, prompb.Label{Name: l.Name, Value: l.Value})
					}
					for _, smp := range s.series[selector(ls)] {
						if smp.TimestampMs >= q.StartTimestampMs && smp.TimestampMs <= q.EndTimestampMs {
							ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: smp.TimestampMs, Value: smp.Value})
						}
					}
					res.Timeseries = append(res.Timeseries, &ts)
				}
			}
			resp.Results = append(resp.Results, &res)
		}
		raw, _ = resp.Marshal()
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(snappy.Encode(nil, raw))
	case "/api/v1/query":
		_ = r.ParseForm()
		q := r.Form.Get("query")
		s.mu.Lock()
		s.queries = append(s.queries, q)
		s.mu.Unlock()
		sel := q[:strings.LastIndex(q, "[")]
		var vals [][2]any
		for _, smp := range s.series[sel] {
			vals = append(vals, [2]any{float64(smp.TimestampMs) / 1000, strconv.FormatFloat(smp.Value, 'g', -1, 64)})
		}
		var result []any
		for _, ls := range s.labels {
			if selector(ls) == sel {
				m := map[string]string{}
				for _, l := range ls {
					m[l.Name] = l.Value
				}
				result = append(result, map[string]any{"metric": m, "values": vals})
			}
		}
		writeAPI(w, map[string]any{"resultType": "matrix", "result": result})
	case "/api/v1/series":
		_ = r.ParseForm()
		s.mu.Lock()
		s.queries = append(s.queries, r.Form.Get("match[]"))
		s.mu.Unlock()
		var out []map[string]string
		for _, ls := range s.labels {
			m := map[string]string{}
			for _, l := range ls {
				m[l.Name] = l.Value
			}
			out = append(out, m)
		}
		writeAPI(w, out)
	default:
		http.NotFound(w, r)
	}
}

func writeAPI(w http.ResponseWriter, data any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": data})
}

func matchesAll(ls detector.Labels, ms []*prompb.LabelMatcher) bool {
	for _, m := range ms {
		if m.Type != prompb.LabelMatcher_EQ || ls.Get(m.Name) != m.Value {
			return false
		}
	}
	return true
}

func samples(n int, endMs int64) []detector.Sample {
	out := make([]detector.Sample, n)
	for i := range out {
		out[i] = detector.Sample{TimestampMs: endMs - int64(n-i)*15_000, Value: float64(100 + i%7)}
	}
	return out
}

func newTestClient(t *testing.T, cfg Config) (*client, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	c, err := newClient(&cfg, newMetrics(reg))
	require.NoError(t, err)
	return c, reg
}

// Both protocols read exactly the asked series (not one with more
// labels), with the tenant header and the configured authorization.
func TestClientReadsExactSeries(t *testing.T) {
	end := int64(1_700_000_000_000)
	st := &store{}
	a := detector.FromStrings("__name__", "cpu", "job", "api")
	st.add(a, samples(50, end))
	st.add(detector.FromStrings("__name__", "cpu", "job", "api", "mode", "idle"), samples(10, end))
	st.add(detector.FromStrings("__name__", "mem", "utf8.name", `a"b`), samples(20, end))
	srv := httptest.NewServer(st)
	defer srv.Close()

	for _, protocol := range []string{ProtocolRemoteRead, ProtocolQuery} {
		t.Run(protocol, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.URL, cfg.Protocol = srv.URL+"/", protocol
			cfg.HTTPClientConfig.Authorization = &config.Authorization{Type: "Bearer", Credentials: "s3cret"}
			c, reg := newTestClient(t, cfg)
			want := []detector.Labels{a, st.labels[2], detector.FromStrings("__name__", "absent")}
			got, err := c.read(context.Background(), "team-a", want, end-3600_000, end)
			require.NoError(t, err)
			require.Empty(t, cmp.Diff([][]detector.Sample{samples(50, end), samples(20, end), nil}, got))
			st.mu.Lock()
			h := st.headers[len(st.headers)-1]
			st.mu.Unlock()
			require.Equal(t, "team-a", h.Get("X-Scope-OrgID"))
			require.Equal(t, "Bearer s3cret", h.Get("Authorization"))
			endpoint := map[string]string{ProtocolRemoteRead: "read", ProtocolQuery: "query"}[protocol]
			calls := map[string]float64{ProtocolRemoteRead: 1, ProtocolQuery: 3}[protocol]
			require.Equal(t, calls, testutil.ToFloat64(c.m.requests.WithLabelValues(endpoint, "200")))
			_ = reg
		})
	}
	require.Contains(t, st.queries, `{__name__="mem","utf8.name"="a\"b"}[3600000ms]`)
}

func TestClientRetries(t *testing.T) {
	for _, tc := range []struct {
		name    string
		fail    int32
		retries int
		wantErr bool
		calls   int
	}{
		{name: "503 then success", fail: 2, retries: 3, calls: 3},
		{name: "retries exhausted", fail: 5, retries: 1, wantErr: true, calls: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &store{}
			st.fail.Store(tc.fail)
			srv := httptest.NewServer(st)
			defer srv.Close()
			cfg := DefaultConfig()
			cfg.URL, cfg.MaxRetries, cfg.RequestsPerSecond = srv.URL, tc.retries, 1000
			c, _ := newTestClient(t, cfg)
			_, err := c.series(context.Background(), "", "up", 0, 1)
			if tc.wantErr {
				require.ErrorContains(t, err, "status 503")
			} else {
				require.NoError(t, err)
			}
			require.Len(t, st.headers, tc.calls)
		})
	}
	// A client error is not retried.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, `{"status":"error","error":"bad selector"}`, http.StatusBadRequest)
	}))
	defer srv.Close()
	cfg := DefaultConfig()
	cfg.URL = srv.URL
	c, _ := newTestClient(t, cfg)
	_, err := c.series(context.Background(), "", "up", 0, 1)
	require.ErrorContains(t, err, "status 400")
	require.Equal(t, 1.0, testutil.ToFloat64(c.m.requests.WithLabelValues("series", "400")))
}

func newDetector(t *testing.T) *detector.Detector {
	t.Helper()
	d, err := detector.New(detector.DefaultConfig, slog.New(slog.DiscardHandler), nil)
	require.NoError(t, err)
	d.SetModel(detector.WindowMeanModel{W: 16})
	return d
}

func runScheduler(t *testing.T, cfg Config, d *detector.Detector) (*Scheduler, *prometheus.Registry, func()) {
	t.Helper()
	reg := prometheus.NewRegistry()
	s, err := New(cfg, slog.New(slog.DiscardHandler), reg)
	require.NoError(t, err)
	d.OnNewSeries(s.Notify)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx, d) }()
	return s, reg, func() { cancel(); require.NoError(t, <-done) }
}

// New series are read at most concurrency at a time and
// requests_per_second per second, and each is warmed so that its first
// live sample is scored.
func TestSchedulerWarmsNewSeriesWithinLimits(t *testing.T) {
	end := time.Now().UnixMilli()
	st := &store{delay: 20 * time.Millisecond}
	const n = 12
	for i := range n {
		st.add(detector.FromStrings("__name__", "cpu", "i", strconv.Itoa(i)), samples(100, end))
	}
	srv := httptest.NewServer(st)
	defer srv.Close()
	cfg := DefaultConfig()
	cfg.URL, cfg.Protocol = srv.URL, ProtocolQuery
	cfg.Concurrency, cfg.RequestsPerSecond = 2, 40
	cfg.NewSeriesBatchWait.Set("10ms")
	d := newDetector(t)
	s, reg, stop := runScheduler(t, cfg, d)
	defer stop()

	start := time.Now()
	for i := range n {
		d.Append("", detector.FromStrings("__name__", "cpu", "i", strconv.Itoa(i)), []detector.Sample{{TimestampMs: end, Value: 103}})
	}
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(s.m.series.WithLabelValues(sourceNewSeries, "installed")) == n
	}, 10*time.Second, 10*time.Millisecond)
	elapsed := time.Since(start)
	require.LessOrEqual(t, st.maxIn.Load(), int32(2), "concurrency")
	require.GreaterOrEqual(t, elapsed, time.Duration(n-1)*time.Second/40, "rate")
	require.Equal(t, float64(n*100), testutil.ToFloat64(s.m.samples.WithLabelValues(sourceNewSeries)))
	require.Equal(t, 0.0, testutil.ToFloat64(s.m.pending))
	scored := 0
	d.Results(func(r *detector.Result) bool {
		require.Equal(t, end, r.TimestampMs)
		scored++
		return true
	})
	require.Equal(t, n, scored, "every first live sample is scored")
	_ = reg
}

// At start, the series of the selectors that have no state are warmed;
// one the detector already scores keeps its state.
func TestSchedulerStartup(t *testing.T) {
	end := time.Now().UnixMilli()
	st := &store{}
	fresh := detector.FromStrings("__name__", "cpu", "i", "fresh")
	known := detector.FromStrings("__name__", "cpu", "i", "known")
	short := detector.FromStrings("__name__", "cpu", "i", "short")
	st.add(fresh, samples(100, end))
	st.add(known, samples(100, end))
	st.add(short, samples(5, end))
	srv := httptest.NewServer(st)
	defer srv.Close()
	d := newDetector(t)
	for _, smp := range samples(80, end) {
		d.Append("t1", known, []detector.Sample{smp})
		require.NoError(t, d.Flush())
	}
	cfg := DefaultConfig()
	cfg.URL, cfg.Protocol, cfg.OnNewSeries = srv.URL, ProtocolRemoteRead, false
	cfg.Startup = []StartupConfig{{Tenant: "t1", Selectors: []string{`{__name__="cpu"}`}}}
	s, _, stop := runScheduler(t, cfg, d)
	defer stop()
	require.Eventually(t, func() bool { return testutil.ToFloat64(s.m.startupOK) == 1 }, 10*time.Second, 10*time.Millisecond)
	for outcome, want := range map[string]float64{"installed": 1, "has_state": 1, "too_short": 1} {
		require.Equal(t, want, testutil.ToFloat64(s.m.series.WithLabelValues(sourceStartup, outcome)), outcome)
	}
	require.False(t, d.NeedsWarm("t1", fresh))
	require.True(t, d.NeedsWarm("t1", short))
	require.Equal(t, []string{`{__name__="cpu"}`}, st.queries)
	for _, h := range st.headers {
		require.Equal(t, "t1", h.Get("X-Scope-OrgID"))
	}
}

func TestNotifyQueueFull(t *testing.T) {
	cfg := DefaultConfig()
	cfg.URL, cfg.QueueSize = "http://localhost:1", 1
	s, err := New(cfg, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	require.NoError(t, err)
	for i := range 3 {
		s.Notify("", detector.FromStrings("i", fmt.Sprint(i)), 1)
	}
	require.Equal(t, 2.0, testutil.ToFloat64(s.m.series.WithLabelValues(sourceNewSeries, "queue_full")))
	require.Equal(t, 1.0, testutil.ToFloat64(s.m.pending))

	cfg.OnNewSeries = false
	s, err = New(cfg, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	require.NoError(t, err)
	s.Notify("", detector.FromStrings("i", "0"), 1)
	require.Equal(t, 0.0, testutil.ToFloat64(s.m.pending))
}
