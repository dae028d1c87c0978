package e2e

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestPrometheusPodChurn replaces a scrape target, as a Kubernetes rollout
// replaces a pod: a real Prometheus scrapes pod web-1 through file-based
// service discovery, then web-2 at another address, and remote-writes both.
// web-2's series (new pod and instance labels) starts from web-1's
// calibration (detector.churn_labels) and is scored as soon as its window
// is full.
func TestPrometheusPodChurn(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped under -short: runs real Prometheus for about two minutes (make e2e runs it)")
	}
	prom := toolBinary(t, "prometheus", PrometheusModule)
	_, sentinelURL := startSentinel(t, "detector:\n  batch_interval: 50ms\n")

	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(3, 3))
	gauge := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		v := 100 + 3*rng.NormFloat64()
		mu.Unlock()
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintf(w, "# TYPE e2e_churn_inflight gauge\ne2e_churn_inflight %g\n", v)
	})
	web1, web2 := httptest.NewServer(gauge), httptest.NewServer(gauge)
	t.Cleanup(web1.Close)
	t.Cleanup(web2.Close)

	dir := t.TempDir()
	sd := filepath.Join(dir, "targets.json")
	setTarget := func(srv *httptest.Server, pod string) {
		// Written aside and renamed, so Prometheus never reads half a file.
		tmp := sd + ".tmp"
		body := fmt.Sprintf(`[{"targets": [%q], "labels": {"pod": %q, "namespace": "shop"}}]`, srv.Listener.Addr().String(), pod)
		require.NoError(t, os.WriteFile(tmp, []byte(body), 0o644))
		require.NoError(t, os.Rename(tmp, sd))
	}
	setTarget(web1, "web-1")
	promCfg := fmt.Sprintf(`
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: web
    file_sd_configs: [{files: [%q], refresh_interval: 1s}]
remote_write:
  - url: %s/api/v1/write
    queue_config: {batch_send_deadline: 500ms, min_backoff: 100ms}
    write_relabel_configs:
      - {source_labels: [__name__], regex: e2e_.*, action: keep}
`, sd, sentinelURL)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(promCfg), 0o644))
	startProcess(t, prom,
		"--config.file="+cfgPath,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+freePort(t),
		"--log.level=warn",
	)

	scored := func(pod string) bool {
		return strings.Contains(sentinelMetrics(t, sentinelURL), `pod="`+pod+`"`)
	}
	warmup := func() string {
		for line := range strings.Lines(sentinelMetrics(t, sentinelURL)) {
			if v, ok := strings.CutPrefix(line, `sentinel_mesh_samples_unscored_total{reason="warmup"} `); ok {
				return strings.TrimSpace(v)
			}
		}
		return ""
	}
	// A cold series: a full window (32 samples), then 30 prediction errors
	// of warm-up, each with a placeholder result.
	waitFor(t, 3*time.Minute, func() bool { return scored("web-1") && warmup() == "30" })
	require.Contains(t, sentinelMetrics(t, sentinelURL), "sentinel_mesh_series_inherited_total 0\n")

	setTarget(web2, "web-2")
	waitFor(t, 2*time.Minute, func() bool { return scored("web-2") })
	time.Sleep(10 * time.Second) // ten more samples: warm-up ones, were it cold
	require.Contains(t, sentinelMetrics(t, sentinelURL), "sentinel_mesh_series_inherited_total 1\n",
		"web-2's series started from web-1's calibration")
	require.Equal(t, "30", warmup(), "web-2's series needed no warm-up of its own")
}

// sentinelMetrics returns the text of sentinel-mesh's /metrics.
func sentinelMetrics(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}
