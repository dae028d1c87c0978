package app

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
	"github.com/sentinel-mesh/sentinel-mesh/internal/config"
)

// TestOutputsAreWired checks that configured outputs receive detector events
// and register their metrics; their behaviour is tested in exporter/.
func TestOutputsAreWired(t *testing.T) {
	var lokiPushes, amPosts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		switch r.URL.Path {
		case "/loki/api/v1/push":
			lokiPushes.Add(1)
		case "/api/v2/alerts":
			amPosts.Add(1)
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	cfg, err := config.Parse([]byte(`
loki:
  url: ` + srv.URL + `/loki/api/v1/push
  batch_wait: 10ms
remote_write_out:
  url: ` + srv.URL + `/api/v1/write
alertmanager:
  urls: [` + srv.URL + `]
`))
	require.NoError(t, err)
	a, stop := startApp(t, cfg, Options{})
	defer stop()

	a.events.HandleEvents([]detector.Event{{
		Kind: detector.EventOpen, ID: 1, Labels: detector.FromStrings("__name__", "up"),
		OpenedAtMs: time.Now().UnixMilli(), TimestampMs: time.Now().UnixMilli(), Score: 1, PeakScore: 1,
	}})
	require.Eventually(t, func() bool { return lokiPushes.Load() > 0 && amPosts.Load() > 0 }, 10*time.Second, 10*time.Millisecond)

	code, body := get(t, "http://"+a.Addr()+"/metrics", nil)
	require.Equal(t, http.StatusOK, code)
	for _, m := range []string{"sentinel_mesh_loki_entries_sent_total", "sentinel_mesh_remote_write_out_shards", "sentinel_mesh_alertmanager_alerts_sent_total"} {
		require.Contains(t, body, m)
	}
}
