package exporter

import (
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
)

type fakeResults struct {
	mu      sync.Mutex
	results []detector.Result
}

func (f *fakeResults) set(rs ...detector.Result) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.results = rs
}

func (f *fakeResults) Results(fn func(r *detector.Result) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.results {
		r := f.results[i]
		if !fn(&r) {
			return
		}
	}
}

func (f *fakeResults) Model() detector.Model { return detector.WindowMeanModel{W: 4} }

// rwSample is one decoded sample with its labels rendered as a string.
type rwSample struct {
	series string
	ts     int64
	value  float64
}

type rwRequest struct {
	header  http.Header
	samples []rwSample
	help    []string // v2 only
}

// rwReceiver decodes remote-write 1.0 and 2.0 with the prompb types and
// answers with the next of codes (204 once they run out).
func rwReceiver(t *testing.T, codes ...int) (*httptest.Server, func() []rwRequest) {
	t.Helper()
	var (
		mu   sync.Mutex
		reqs []rwRequest
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		require.NoError(t, err)
		raw, err := snappy.Decode(nil, body)
		require.NoError(t, err)
		rr := rwRequest{header: r.Header.Clone()}
		if r.Header.Get("X-Prometheus-Remote-Write-Version") == "2.0.0" {
			var req writev2.Request
			require.NoError(t, req.Unmarshal(raw))
			for _, ts := range req.Timeseries {
				var ls detector.Labels
				for i := 0; i < len(ts.LabelsRefs); i += 2 {
					ls = append(ls, detector.Label{Name: req.Symbols[ts.LabelsRefs[i]], Value: req.Symbols[ts.LabelsRefs[i+1]]})
				}
				require.True(t, sort.SliceIsSorted(ls, func(i, j int) bool { return ls[i].Name < ls[j].Name }))
				require.Equal(t, writev2.Metadata_METRIC_TYPE_GAUGE, ts.Metadata.Type)
				rr.help = append(rr.help, req.Symbols[ts.Metadata.HelpRef])
				for _, s := range ts.Samples {
					rr.samples = append(rr.samples, rwSample{ls.String(), s.Timestamp, s.Value})
				}
			}
		} else {
			var req prompb.WriteRequest
			require.NoError(t, req.Unmarshal(raw))
			for _, ts := range req.Timeseries {
				var ls detector.Labels
				for _, l := range ts.Labels {
					ls = append(ls, detector.Label{Name: l.Name, Value: l.Value})
				}
				require.True(t, sort.SliceIsSorted(ls, func(i, j int) bool { return ls[i].Name < ls[j].Name }))
				for _, s := range ts.Samples {
					rr.samples = append(rr.samples, rwSample{ls.String(), s.Timestamp, s.Value})
				}
			}
		}
		mu.Lock()
		reqs = append(reqs, rr)
		code := http.StatusNoContent
		if len(codes) > 0 {
			code, codes = codes[0], codes[1:]
		}
		mu.Unlock()
		if code == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []rwRequest {
		mu.Lock()
		defer mu.Unlock()
		return append([]rwRequest(nil), reqs...)
	}
}

func testRWConfig(url string) RemoteWriteOutConfig {
	cfg := DefaultRemoteWriteOutConfig()
	cfg.URL = url
	cfg.Interval = model.Duration(time.Hour) // tests call Collect
	cfg.MinBackoff = model.Duration(time.Millisecond)
	cfg.MaxBackoff = model.Duration(5 * time.Millisecond)
	return cfg
}

func testResult(pod string, ts int64, score float64) detector.Result {
	return detector.Result{
		Tenant: "acme", Labels: detector.FromStrings("__name__", "http_requests_total", "pod", pod, "Zone", "eu"),
		TimestampMs: ts, Value: 10, Score: score, Expected: 9, Lower: 8, Upper: 11,
	}
}

func allSamples(reqs []rwRequest) []rwSample {
	var out []rwSample
	for _, r := range reqs {
		out = append(out, r.samples...)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].series != out[j].series {
			return out[i].series < out[j].series
		}
		return out[i].ts < out[j].ts
	})
	return out
}

func TestRemoteWriteOutSendsScoresWithSampleTimestamps(t *testing.T) {
	for _, msg := range []string{RemoteWriteV1Message, RemoteWriteV2Message} {
		t.Run(msg, func(t *testing.T) {
			srv, got := rwReceiver(t)
			src := &fakeResults{}
			cfg := testRWConfig(srv.URL)
			cfg.ProtobufMessage = msg
			cfg.Shards = 2
			reg := prometheus.NewPedanticRegistry()
			w, err := NewRemoteWriteOut(cfg, src, DefaultLabelNames, stubEnricher{"workload": "web"}, slog.New(slog.DiscardHandler), reg)
			require.NoError(t, err)
			runOutput(t, w.Run)

			src.set(testResult("a", 1000, 0.5), testResult("b", 2000, 0.9))
			w.Collect()
			require.Eventually(t, func() bool { return len(allSamples(got())) == 8 }, 5*time.Second, 5*time.Millisecond)
			// Nothing new: nothing sent.
			w.Collect()
			src.set(testResult("a", 1000, 0.5), testResult("b", 3000, 0.7))
			w.Collect()
			require.Eventually(t, func() bool { return len(allSamples(got())) == 12 }, 5*time.Second, 5*time.Millisecond)

			want := []rwSample{}
			add := func(name, pod string, ts int64, v float64) {
				want = append(want, rwSample{detector.FromStrings("__name__", name, "Zone", "eu", "metric", "http_requests_total", "model", "window-mean-w4", "pod", pod, "tenant", "acme", "workload", "web").String(), ts, v})
			}
			for _, p := range []struct {
				pod   string
				ts    int64
				score float64
			}{{"a", 1000, 0.5}, {"b", 2000, 0.9}, {"b", 3000, 0.7}} {
				add("anomaly_expected", p.pod, p.ts, 9)
				add("anomaly_lower", p.pod, p.ts, 8)
				add("anomaly_score", p.pod, p.ts, p.score)
				add("anomaly_upper", p.pod, p.ts, 11)
			}
			sort.Slice(want, func(i, j int) bool {
				if want[i].series != want[j].series {
					return want[i].series < want[j].series
				}
				return want[i].ts < want[j].ts
			})
			require.Equal(t, want, allSamples(got()))

			r := got()[0]
			require.Equal(t, "snappy", r.header.Get("Content-Encoding"))
			if msg == RemoteWriteV2Message {
				require.Equal(t, "application/x-protobuf;proto=io.prometheus.write.v2.Request", r.header.Get("Content-Type"))
				require.Equal(t, "2.0.0", r.header.Get("X-Prometheus-Remote-Write-Version"))
				require.Contains(t, r.help, rwHelp[ScoreMetric])
			} else {
				require.Equal(t, "application/x-protobuf", r.header.Get("Content-Type"))
				require.Equal(t, "0.1.0", r.header.Get("X-Prometheus-Remote-Write-Version"))
			}
			// The receiver records a request before the sender counts it.
			require.Eventually(t, func() bool {
				return testutil.ToFloat64(w.metrics.samples.WithLabelValues("sent")) == 12 && testutil.ToFloat64(w.metrics.lastSent) == 3
			}, 5*time.Second, 5*time.Millisecond)
		})
	}
}

func TestRemoteWriteOutRetriesHonouringRetryAfter(t *testing.T) {
	srv, got := rwReceiver(t, http.StatusInternalServerError, http.StatusTooManyRequests)
	src := &fakeResults{}
	w, err := NewRemoteWriteOut(testRWConfig(srv.URL), src, DefaultLabelNames, nil, slog.New(slog.DiscardHandler), nil)
	require.NoError(t, err)
	runOutput(t, w.Run)
	src.set(testResult("a", 1000, 0.5))
	start := time.Now()
	w.Collect()
	require.Eventually(t, func() bool { return testutil.ToFloat64(w.metrics.samples.WithLabelValues("sent")) == 4 }, 5*time.Second, 5*time.Millisecond)
	require.GreaterOrEqual(t, time.Since(start), time.Second, "Retry-After: 1 is honoured")
	require.Len(t, got(), 3)
	require.Equal(t, 2.0, testutil.ToFloat64(w.metrics.retries))
}

func TestRemoteWriteOutDoesNotRetry4xx(t *testing.T) {
	srv, got := rwReceiver(t, http.StatusBadRequest)
	src := &fakeResults{}
	w, err := NewRemoteWriteOut(testRWConfig(srv.URL), src, DefaultLabelNames, nil, slog.New(slog.DiscardHandler), nil)
	require.NoError(t, err)
	runOutput(t, w.Run)
	src.set(testResult("a", 1000, 0.5))
	w.Collect()
	require.Eventually(t, func() bool { return testutil.ToFloat64(w.metrics.samples.WithLabelValues("failed")) == 4 }, 5*time.Second, 5*time.Millisecond)
	require.Len(t, got(), 1)
	require.Equal(t, 1.0, testutil.ToFloat64(w.metrics.failures.WithLabelValues("rejected")))
	require.Zero(t, testutil.ToFloat64(w.metrics.retries))
}

func TestRemoteWriteOutQueueFullAndExpiry(t *testing.T) {
	src := &fakeResults{}
	cfg := testRWConfig("http://127.0.0.1:1/api/v1/write")
	cfg.Shards, cfg.QueueCapacity = 1, 1
	reg := prometheus.NewPedanticRegistry()
	w, err := NewRemoteWriteOut(cfg, src, DefaultLabelNames, nil, slog.New(slog.DiscardHandler), reg)
	require.NoError(t, err)
	// Not running: nothing drains the queue.
	src.set(testResult("a", 1000, 0.5), testResult("b", 1000, 0.5), testResult("c", 1000, 0.5))
	w.Collect()
	require.Equal(t, 8.0, testutil.ToFloat64(w.metrics.samples.WithLabelValues("dropped")))
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`# HELP sentinel_mesh_remote_write_out_queue_length Score samples waiting to be sent, over all shards.
# TYPE sentinel_mesh_remote_write_out_queue_length gauge
sentinel_mesh_remote_write_out_queue_length 4
`), "sentinel_mesh_remote_write_out_queue_length"))
	require.Len(t, w.last, 3)
	// Series gone from the detector are forgotten.
	src.set(testResult("a", 1000, 0.5))
	w.Collect()
	require.Len(t, w.last, 1)
}

var _ ResultsSinceSource = (*detector.Detector)(nil)

// scoreSamples returns the anomaly_score samples received, by timestamp.
func scoreSamples(reqs []rwRequest) map[int64]float64 {
	out := map[int64]float64{}
	for _, s := range allSamples(reqs) {
		if strings.Contains(s.series, `__name__="anomaly_score"`) {
			out[s.ts] = s.value
		}
	}
	return out
}

func TestRemoteWriteOutSendsEveryResultOfAnInterval(t *testing.T) {
	cfg := detector.DefaultConfig
	cfg.AnomalyCloseAfter = 0
	d, err := detector.New(cfg, slog.New(slog.DiscardHandler), nil)
	require.NoError(t, err)
	d.SetModel(detector.WindowMeanModel{W: 16})

	srv, got := rwReceiver(t)
	cfg2 := testRWConfig(srv.URL)
	cfg2.Shards = 2
	w, err := NewRemoteWriteOut(cfg2, d, DefaultLabelNames, nil, slog.New(slog.DiscardHandler), nil)
	require.NoError(t, err)
	runOutput(t, w.Run)

	ls := detector.FromStrings("__name__", "http_requests_total", "job", "api")
	ts := int64(1000)
	var results []detector.Result
	feed := func(v float64) {
		t.Helper()
		d.Append("acme", ls, []detector.Sample{{TimestampMs: ts, Value: v}})
		require.NoError(t, d.Flush())
		d.Results(func(r *detector.Result) bool {
			if r.TimestampMs == ts {
				results = append(results, *r)
			}
			return true
		})
		ts += 1000
	}
	rng := rand.New(rand.NewPCG(1, 2))
	// A calm series (it never keeps a history) scored ten times per
	// interval: every result arrives with its own timestamp and score.
	for i := range 200 {
		feed(100 + 10*math.Sin(float64(i)/5) + rng.NormFloat64())
		if i%10 == 9 {
			w.Collect()
		}
	}
	w.Collect()
	require.NotEmpty(t, results)
	require.False(t, results[len(results)-1].Anomalous)
	require.Eventually(t, func() bool { return len(scoreSamples(got())) == len(results) }, 5*time.Second, 5*time.Millisecond)
	scores := scoreSamples(got())
	for _, r := range results {
		require.Contains(t, scores, r.TimestampMs)
		require.Equal(t, r.Score, scores[r.TimestampMs])
	}
	// Nothing new: nothing sent.
	sent := len(allSamples(got()))
	require.Equal(t, 4*len(results), sent)
	w.Collect()
	time.Sleep(20 * time.Millisecond)
	require.Len(t, allSamples(got()), sent)
}

// sinceResults gives several results per series through ResultsSince.
type sinceResults struct{ fakeResults }

func (f *sinceResults) ResultsSince(cursor func(id uint64) int64, fn func(id uint64, r *detector.Result) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.results {
		r := f.results[i]
		id := seriesHash(r.Tenant, r.Labels)
		if r.TimestampMs <= cursor(id) {
			continue
		}
		if !fn(id, &r) {
			return
		}
	}
}

func TestRemoteWriteOutKeepsSeriesOrderWhenQueueIsFull(t *testing.T) {
	src := &sinceResults{}
	cfg := testRWConfig("http://127.0.0.1:1/api/v1/write")
	cfg.Shards, cfg.QueueCapacity = 1, 2
	w, err := NewRemoteWriteOut(cfg, src, DefaultLabelNames, nil, slog.New(slog.DiscardHandler), nil)
	require.NoError(t, err)
	// Not running: nothing drains the queue.
	src.set(testResult("a", 1000, 0.1), testResult("a", 2000, 0.2), testResult("a", 3000, 0.3), testResult("a", 4000, 0.4))
	w.Collect()
	require.Equal(t, 8.0, testutil.ToFloat64(w.metrics.samples.WithLabelValues("dropped")))
	require.Len(t, w.last, 1)
	for _, l := range w.last {
		require.Equal(t, int64(2000), l.ts, "the cursor stops at the last result queued")
	}
	it := <-w.shards[0]
	require.Equal(t, int64(1000), it.ts)
	require.Equal(t, 0.1, it.values[0])
	require.Equal(t, int64(2000), (<-w.shards[0]).ts)
	// The next pass offers the rest, in order.
	w.Collect()
	require.Equal(t, int64(3000), (<-w.shards[0]).ts)
	require.Equal(t, int64(4000), (<-w.shards[0]).ts)
	// Series gone from the source are forgotten.
	src.set()
	w.Collect()
	require.Empty(t, w.last)
}

func TestRemoteWriteOutConfigValidate(t *testing.T) {
	cfg := DefaultRemoteWriteOutConfig()
	require.NoError(t, cfg.Validate())
	cfg.URL = "http://x/api/v1/write"
	cfg.ProtobufMessage = "v3"
	cfg.Shards = 0
	err := cfg.Validate()
	require.ErrorContains(t, err, "remote_write_out.protobuf_message")
	require.ErrorContains(t, err, "remote_write_out.shards")
}

// anomaly_open goes out with every result while an anomaly is open, and once
// as a staleness marker with the first result after it closed, over both
// protocol versions: a PromQL alert on it fires and resolves with the
// detector's anomaly.
func TestRemoteWriteOutSendsAnomalyOpen(t *testing.T) {
	for _, msg := range []string{RemoteWriteV1Message, RemoteWriteV2Message} {
		t.Run(msg, func(t *testing.T) {
			cfg := detector.DefaultConfig
			cfg.AnomalyCloseAfter = 0
			cfg.Scoring.LearningPeriod = 0 // a minutes-long series
			d, err := detector.New(cfg, slog.New(slog.DiscardHandler), nil)
			require.NoError(t, err)
			d.SetModel(detector.WindowMeanModel{W: 16})

			srv, got := rwReceiver(t)
			rwCfg := testRWConfig(srv.URL)
			rwCfg.ProtobufMessage = msg
			rwCfg.MaxSamplesPerSend = 7 // one result a request: the batches stop at the cap
			w, err := NewRemoteWriteOut(rwCfg, d, DefaultLabelNames, nil, slog.New(slog.DiscardHandler), nil)
			require.NoError(t, err)
			runOutput(t, w.Run)

			ls := detector.FromStrings("__name__", "http_requests", "job", "api")
			rng := rand.New(rand.NewPCG(1, 2))
			ts := int64(1000)
			open := map[int64]bool{} // every scored result's timestamp: was an anomaly open?
			feed := func(v float64) bool {
				t.Helper()
				d.Append("", ls, []detector.Sample{{TimestampMs: ts, Value: v}})
				require.NoError(t, d.Flush())
				var r detector.Result
				d.Results(func(x *detector.Result) bool { r = *x; return false })
				if r.TimestampMs == ts {
					open[ts] = r.Anomalous
				}
				ts += 1000
				w.Collect()
				return r.Anomalous
			}
			for i := range 300 {
				require.False(t, feed(100+10*math.Sin(float64(i)/5)+rng.NormFloat64()), "calm series")
			}
			require.True(t, feed(400), "the spike opens an anomaly")
			for i := 0; feed(100 + 10*math.Sin(float64(i)/5) + rng.NormFloat64()); i++ {
				require.Less(t, i, 200, "the anomaly never closed")
			}
			for i := range 5 {
				require.False(t, feed(100+10*math.Sin(float64(i)/5)+rng.NormFloat64()))
			}
			require.Eventually(t, func() bool { return len(scoreSamples(got())) == len(open) }, 5*time.Second, 5*time.Millisecond)

			var openTs []int64
			var stale []int64
			for _, s := range allSamples(got()) {
				if !strings.Contains(s.series, `__name__="anomaly_open"`) {
					continue
				}
				if detector.IsStaleNaN(s.value) {
					stale = append(stale, s.ts)
					continue
				}
				require.Equal(t, 1.0, s.value)
				openTs = append(openTs, s.ts)
			}
			var wantOpen []int64
			closedAt := int64(0)
			for t0 := int64(1000); t0 < ts; t0 += 1000 {
				if isOpen, ok := open[t0]; ok && isOpen {
					wantOpen = append(wantOpen, t0)
				} else if ok && closedAt == 0 && len(wantOpen) > 0 {
					closedAt = t0
				}
			}
			require.NotEmpty(t, wantOpen)
			require.Equal(t, wantOpen, openTs, "anomaly_open 1 with every result while open")
			require.Equal(t, []int64{closedAt}, stale, "one staleness marker, with the first result after the close")
			for _, r := range got() {
				require.LessOrEqual(t, len(r.samples), rwCfg.MaxSamplesPerSend)
			}
		})
	}
}
