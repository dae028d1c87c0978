package e2e

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/stretchr/testify/require"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
)

// signalTarget serves one gauge, e2e_signal, that follows a noisy sine and
// jumps far above it while spiking is set, two counters that grow by about
// 50 a scrape: e2e_handled_total, a counter by its name, and e2e_served, one
// only by its metadata, and a gauge named like a counter, e2e_queue_count,
// around 20.
type signalTarget struct {
	mu      sync.Mutex
	rng     *rand.Rand
	n       int
	spiking bool
	spikeAt time.Time
	count   float64
}

func (s *signalTarget) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	s.n++
	v := 100 + 10*math.Sin(float64(s.n)/6) + s.rng.NormFloat64()
	if s.spiking {
		v += 3000
	}
	s.count += 50 + s.rng.NormFloat64()
	count := s.count
	queued := math.Round(20 + 2*s.rng.NormFloat64())
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	fmt.Fprintf(w, "# TYPE e2e_signal gauge\ne2e_signal{series=\"a\"} %g\n", v)
	fmt.Fprintf(w, "# TYPE e2e_handled_total counter\ne2e_handled_total %g\n", count)
	fmt.Fprintf(w, "# TYPE e2e_served counter\ne2e_served %g\n", count)
	fmt.Fprintf(w, "# TYPE e2e_queue_count gauge\ne2e_queue_count %g\n", queued)
}

// nativeHistogramTarget serves e2e_latency_seconds, a native histogram
// (protobuf exposition) that observes 20 latencies of about 100 ms before
// each scrape: 20 observations a second at a 1 s scrape.
func nativeHistogramTarget(t *testing.T) *httptest.Server {
	reg := prometheus.NewRegistry()
	latency := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:                        "e2e_latency_seconds",
		Help:                        "Request latency.",
		NativeHistogramBucketFactor: 1.1,
	})
	reg.MustRegister(latency)
	rng := rand.New(rand.NewPCG(9, 9))
	var mu sync.Mutex
	metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		for range 20 {
			latency.Observe(0.1 + 0.01*rng.NormFloat64())
		}
		mu.Unlock()
		metrics.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func (s *signalTarget) spike() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.spiking, s.spikeAt = true, time.Now()
	return s.spikeAt
}

func (s *signalTarget) scrapes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// TestPrometheusRemoteWriteEndToEnd points a real Prometheus at sentinel-mesh
// with remote_write 1.0 and 2.0 (one tenant each), scrapes a target whose
// series spikes, and checks through Prometheus's query API that
// anomaly_score stays low before the spike and reaches the threshold after
// it. A series scraped every second is worth ln(300) nats less than at the
// 5-minute reference interval, and a young one extrapolates its error tail
// gently: a jump of 30 times the sine's amplitude scored 0.80 on a quiet
// machine and under the threshold once on a loaded one (scrape jitter), so
// the jump is 300 times it.
func TestPrometheusRemoteWriteEndToEnd(t *testing.T) {
	// Not a missing component: make test's unit pass runs -short and its e2e
	// pass runs this test in full, where a Prometheus that cannot be installed
	// or does not start fails it (toolBinary, waitFor).
	if testing.Short() {
		t.Skip("skipped under -short: runs real Prometheus for about two minutes (make e2e runs it)")
	}
	prom := toolBinary(t, "prometheus", PrometheusModule)

	// A second Prometheus receives the scores by remote-write, with the
	// original sample timestamps (remote_write_out).
	storeURL := startPrometheusReceiver(t, prom)

	_, sentinelURL := startSentinel(t, fmt.Sprintf(`
detector:
  batch_interval: 50ms
remote_write_out:
  url: %s/api/v1/write
  interval: 1s
`, storeURL))
	target := &signalTarget{rng: rand.New(rand.NewPCG(7, 7))}
	targetSrv := httptest.NewServer(target)
	t.Cleanup(targetSrv.Close)
	histSrv := nativeHistogramTarget(t)

	promAddr := freePort(t)
	dir := t.TempDir()
	promCfg := fmt.Sprintf(`
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: signal
    static_configs: [{targets: [%q]}]
  - job_name: native-histogram
    scrape_native_histograms: true
    static_configs: [{targets: [%q]}]
  - job_name: sentinel-mesh
    honor_labels: true
    static_configs: [{targets: [%q]}]
remote_write:
  - name: v1
    url: %s/api/v1/write
    headers: {X-Scope-OrgID: v1}
    queue_config: {batch_send_deadline: 500ms, min_backoff: 100ms}
    # Remote-Write 1.0 sends the families' types in requests of their own,
    # every minute by default.
    metadata_config: {send_interval: 1s}
    send_native_histograms: true
    write_relabel_configs:
      - {source_labels: [__name__], regex: e2e_.*, action: keep}
  - name: v2
    url: %s/api/v1/write
    protobuf_message: io.prometheus.write.v2.Request
    headers: {X-Scope-OrgID: v2}
    queue_config: {batch_send_deadline: 500ms, min_backoff: 100ms}
    send_native_histograms: true
    write_relabel_configs:
      - {source_labels: [__name__], regex: e2e_.*, action: keep}
`, targetSrv.Listener.Addr().String(), histSrv.Listener.Addr().String(), sentinelURL[len("http://"):], sentinelURL, sentinelURL)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(promCfg), 0o644))
	startProcess(t, prom,
		"--config.file="+cfgPath,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+promAddr,
		"--log.level=warn",
		// Remote-Write 2.0 carries a series' metadata (its type) only
		// with this feature.
		"--enable-feature=metadata-wal-records",
	)
	promURL := "http://" + promAddr
	waitFor(t, 60*time.Second, func() bool { return httpStatus(promURL+"/-/ready") == http.StatusOK })

	// The detector needs a full window (32 samples) plus its warm-up (30
	// prediction errors) before it scores; 90 scrapes leave a margin.
	scoreQuery := `anomaly_score{metric="e2e_signal",series="a"}`
	waitFor(t, 4*time.Minute, func() bool {
		return target.scrapes() >= 90 && len(promVector(t, promURL, scoreQuery, time.Now(), "tenant")) == 2
	})
	time.Sleep(3 * time.Second)
	before := time.Now()
	calm := promVector(t, promURL, `max_over_time(`+scoreQuery+`[5m])`, before, "tenant")
	require.Len(t, calm, 2, "both remote-write versions must produce scores")
	for tenant, v := range calm {
		require.Less(t, v, 0.5, "tenant %s scored %v before the spike", tenant, v)
	}

	threshold := detector.DefaultScoringConfig.Threshold
	spikeAt := target.spike()
	var after map[string]float64
	waitFor(t, 60*time.Second, func() bool {
		after = promVector(t, promURL, `max_over_time(`+scoreQuery+`[1m])`, time.Now(), "tenant")
		return after["v1"] >= threshold && after["v2"] >= threshold
	})
	t.Logf("max score before spike %v, after spike %v (spike at %s)", calm, after, spikeAt.Format(time.TimeOnly))

	opened := promVector(t, promURL, `sum by (kind) (sentinel_mesh_anomaly_events_total{kind="open"})`, time.Now(), "kind")
	require.GreaterOrEqual(t, opened["open"], 2.0, "one anomaly per tenant must open")
	// anomaly_open, what the mixin's AnomalyDetected alerts on: absent before
	// the spike, 1 for both tenants while the anomaly is open (it closes only
	// after anomaly_close_after of calm, 5 minutes by default).
	openQuery := `anomaly_open{metric="e2e_signal",series="a"}`
	require.Empty(t, promVector(t, promURL, openQuery, before, "tenant"), "no anomaly open before the spike")
	waitFor(t, 30*time.Second, func() bool {
		got := promVector(t, promURL, openQuery, time.Now(), "tenant")
		return got["v1"] == 1 && got["v2"] == 1
	})
	expected := promVector(t, promURL, `anomaly_expected{metric="e2e_signal"}`, before, "tenant")
	for tenant, v := range expected {
		require.InDelta(t, 100, v, 30, "tenant %s expected value", tenant)
	}

	// The same scores arrived in the store by remote-write, and PromQL over
	// them works: calm before the spike, at the threshold or above after it.
	storeCalm := promVector(t, storeURL, `max_over_time(`+scoreQuery+`[5m])`, before, "tenant")
	require.Len(t, storeCalm, 2)
	for tenant, v := range storeCalm {
		require.Less(t, v, 0.5, "remote-written score of tenant %s before the spike", tenant)
	}
	waitFor(t, 30*time.Second, func() bool {
		got := promVector(t, storeURL, `max_over_time(`+scoreQuery+`[1m])`, time.Now(), "tenant")
		return got["v1"] >= threshold && got["v2"] >= threshold
	})
	require.Empty(t, promVector(t, storeURL, openQuery, before, "tenant"), "no anomaly_open remote-written before the spike")
	waitFor(t, 30*time.Second, func() bool {
		got := promVector(t, storeURL, openQuery, time.Now(), "tenant")
		return got["v1"] == 1 && got["v2"] == 1
	})
	band := promVector(t, storeURL, `count(anomaly_lower{metric="e2e_signal"} < anomaly_expected{metric="e2e_signal"} < anomaly_upper{metric="e2e_signal"})`, before, "")
	require.Equal(t, 2.0, band[""], "expected value lies inside its bounds for both tenants")

	// Counters are scored on their rate (about 50 a second) and gauges as
	// sent, whatever their names say, as the metadata says: Remote-Write
	// 2.0's per series, 1.0's in metadata requests (sentinel_mesh_metric_families).
	for _, tc := range []struct {
		metric string
		want   float64
		why    string
	}{
		{"e2e_handled_total", 50, "a counter by its name and its metadata: scored on its rate"},
		{"e2e_served", 50, "a counter by its metadata only: scored on its rate"},
		{"e2e_queue_count", 20, "a gauge named like a counter: scored as sent"},
		// A native histogram is scored as histogram_count() and
		// histogram_sum(): 20 observations a second of about 100 ms.
		{"e2e_latency_seconds_count", 20, "a native histogram's observation rate"},
		{"e2e_latency_seconds_sum", 2, "the rate of a native histogram's sum"},
	} {
		got := promVector(t, promURL, fmt.Sprintf(`anomaly_expected{metric=%q}`, tc.metric), time.Now(), "tenant")
		require.Len(t, got, 2, tc.metric)
		for tenant, v := range got {
			require.InEpsilon(t, tc.want, v, 0.3, "tenant %s, %s: %s", tenant, tc.metric, tc.why)
		}
	}
	families := promVector(t, promURL, `sentinel_mesh_metric_families`, time.Now(), "")
	require.GreaterOrEqual(t, families[""], 4.0, "the families of Remote-Write 1.0's metadata requests")
}
