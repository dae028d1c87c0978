package e2e

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
	"github.com/sentinel-mesh/sentinel-mesh/internal/metrictest"
)

const backfillMetric = "e2e_backfill"

// backfillValue is the series' calm signal: a noisy sine over ~1.5 h.
func backfillValue(rng *rand.Rand, tsMs int64) float64 {
	return 100 + 10*math.Sin(2*math.Pi*float64(tsMs)/5_400_000) + rng.NormFloat64()
}

// pushRW sends samples with Remote-Write 1.0, per series (the value of
// its series label).
func pushRW(t *testing.T, url string, smps map[string][]prompb.Sample) {
	t.Helper()
	wr := &prompb.WriteRequest{}
	for series, ss := range smps {
		wr.Timeseries = append(wr.Timeseries, prompb.TimeSeries{
			Labels:  []prompb.Label{{Name: "__name__", Value: backfillMetric}, {Name: "series", Value: series}},
			Samples: ss,
		})
	}
	raw, err := wr.Marshal()
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(snappy.Encode(nil, raw)))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusNoContent, resp.StatusCode, "remote-write to %s: %s", url, body)
}

func latestResult(d *detector.Detector, tenant, series string) (detector.Result, bool) {
	var out detector.Result
	found := false
	d.Results(func(r *detector.Result) bool {
		if r.Tenant == tenant && r.Labels.Get("__name__") == backfillMetric && r.Labels.Get("series") == series {
			out, found = *r, true
			return false
		}
		return true
	})
	return out, found
}

// TestBackfillFromPrometheus holds 25 h of a series in a real Prometheus
// (pushed through its remote-write receiver, oldest first) and starts
// Sentinel Mesh empty with backfill from it, with the default learning
// period of a day, which the history covers. The first live sample pushed
// to Sentinel Mesh is scored, and a spike a few samples later opens an
// anomaly; a Sentinel Mesh without backfill, given the same samples,
// scores none of them. Both protocols, both ways of finding the series:
// the startup selectors and the first sight of the series.
func TestBackfillFromPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped under -short: runs a real Prometheus (make e2e runs it)")
	}
	prom := toolBinary(t, "prometheus", PrometheusModule)
	promURL := startPrometheusReceiver(t, prom)

	// 25 h at 15 s of one series per case, ending one step before now.
	const step, histSamples = 15_000, 6000
	now := time.Now().UnixMilli() / step * step
	histStart := now - histSamples*step
	cases := []struct {
		name, protocol string
		startup        bool
	}{
		{"remote_read/startup", "remote_read", true},
		{"query/startup", "query", true},
		{"remote_read/new_series", "remote_read", false},
		{"query/new_series", "query", false},
	}
	// Oldest first across all series: Prometheus refuses samples more than
	// an hour older than its newest ("out of bounds").
	rngs := make([]*rand.Rand, len(cases))
	for i := range rngs {
		rngs[i] = rand.New(rand.NewPCG(uint64(i), 1))
	}
	for from := histStart; from < now; from += 500 * step {
		req := map[string][]prompb.Sample{}
		for i, rng := range rngs {
			for ts := from; ts < min(from+500*step, now); ts += step {
				req[fmt.Sprint(i)] = append(req[fmt.Sprint(i)], prompb.Sample{Timestamp: ts, Value: backfillValue(rng, ts)})
			}
		}
		pushRW(t, promURL+"/api/v1/write", req)
	}
	// The whole history must be queryable before any Sentinel Mesh reads it.
	for i := range cases {
		q := fmt.Sprintf(`count_over_time(%s{series="%d"}[26h])`, backfillMetric, i)
		require.Equal(t, map[string]float64{"": histSamples}, promVector(t, promURL, q, time.UnixMilli(now), "none"), "history of series %d", i)
	}

	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			series := fmt.Sprint(i)
			startup := ""
			if tc.startup {
				startup = fmt.Sprintf("\n  startup: [{selectors: ['{__name__=%q, series=%q}']}]", backfillMetric, series)
			}
			app, sentinelURL := startSentinel(t, fmt.Sprintf(`
detector:
  batch_interval: 20ms
  scoring:
    learning_period: 24h
backfill:
  url: %s
  protocol: %s
  lookback: 26h
  new_series_batch_wait: 100ms%s
`, promURL, tc.protocol, startup))
			_, controlURL := startSentinel(t, "detector:\n  batch_interval: 20ms\n")
			reg, det := app.Registry(), app.Detector()

			installed := []string{"outcome", "installed"}
			if tc.startup {
				waitFor(t, 60*time.Second, func() bool {
					return metrictest.Value(t, reg, "sentinel_mesh_backfill_startup_completed") == 1
				})
				require.Equal(t, 1.0, metrictest.Value(t, reg, "sentinel_mesh_backfill_series_total", installed...))
				require.Equal(t, float64(histSamples), metrictest.Value(t, reg, "sentinel_mesh_backfill_samples_total"))
				require.Equal(t, 1, det.NumSeries())
			}

			rng := rand.New(rand.NewPCG(uint64(100+i), 1))
			first := now
			pushBoth := func(ts int64, v float64) {
				smp := map[string][]prompb.Sample{series: {{Timestamp: ts, Value: v}}}
				pushRW(t, sentinelURL+"/api/v1/write", smp)
				pushRW(t, controlURL+"/api/v1/write", smp)
			}
			pushBoth(first, backfillValue(rng, first))
			// The first live sample is scored: at once after a startup
			// backfill, once its history is read for a new series.
			waitFor(t, 60*time.Second, func() bool {
				r, ok := latestResult(det, "default", series)
				return ok && r.TimestampMs == first
			})
			r, _ := latestResult(det, "default", series)
			require.Less(t, r.Score, 0.5, "a calm first sample scores low: %+v", r)
			require.Equal(t, 1.0, metrictest.Value(t, reg, "sentinel_mesh_backfill_series_total", installed...))
			require.Equal(t, 1.0, metrictest.Value(t, reg, "sentinel_mesh_samples_scored_total"))
			require.Equal(t, 0.0, metrictest.Value(t, reg, "sentinel_mesh_samples_unscored_total", "reason", "warmup"))
			require.Equal(t, 0.0, metrictest.Value(t, reg, "sentinel_mesh_samples_unscored_total", "reason", "learning"), "the history covers the learning period")

			// Three calm samples, then a spike.
			ts := first
			for range 3 {
				ts += step
				pushBoth(ts, backfillValue(rng, ts))
				waitFor(t, 10*time.Second, func() bool { r, _ := latestResult(det, "default", series); return r.TimestampMs == ts })
			}
			ts += step
			pushBoth(ts, backfillValue(rng, ts)+300)
			waitFor(t, 10*time.Second, func() bool { r, _ := latestResult(det, "default", series); return r.TimestampMs == ts })
			r, _ = latestResult(det, "default", series)
			require.Greater(t, r.Score, 0.9, "%+v", r)
			require.True(t, r.Anomalous)
			require.Equal(t, 1.0, metrictest.Value(t, reg, "sentinel_mesh_anomalies_open"))
			require.Equal(t, 5.0, metrictest.Value(t, reg, "sentinel_mesh_samples_scored_total"))

			// Without backfill the same five samples are not even predicted.
			require.Eventually(t, func() bool {
				return httpStatus(controlURL+"/-/ready") == http.StatusOK
			}, time.Second, 10*time.Millisecond)
			body := httpBody(t, controlURL+"/metrics")
			require.Contains(t, body, "sentinel_mesh_series_active 1")
			require.NotContains(t, body, `anomaly_score{`)
			require.Contains(t, body, "sentinel_mesh_anomalies_open 0")
		})
	}
}

func httpBody(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}
