package e2e

import (
	"context"
	"log/slog"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
	"github.com/sentinel-mesh/sentinel-mesh/exporter"
)

// TestAlertmanagerEndToEnd drives a detector with a real spike and checks
// that the anomaly fires in a real Alertmanager, is re-sent while open, and
// resolves when the anomaly closes.
func TestAlertmanagerEndToEnd(t *testing.T) {
	amURL := startAlertmanager(t)

	cfg := exporter.DefaultAlertmanagerConfig()
	cfg.URLs = []string{amURL}
	cfg.ResendInterval = model.Duration(time.Second)
	cfg.RunbookURL = "https://runbooks.example/anomaly"
	cfg.ExternalLabels = map[string]string{"cluster": "e2e"}
	logger := slog.New(slog.DiscardHandler)
	am, err := exporter.NewAlertmanager(cfg, exporter.DefaultLabelNames, nil, nil, logger, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- am.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})

	dcfg := detector.DefaultConfig
	dcfg.AnomalyCloseAfter = 0
	dcfg.Scoring.LearningPeriod = 0 // the series is seconds old
	det, err := detector.New(dcfg, logger, nil, am)
	require.NoError(t, err)
	det.SetModel(detector.WindowMeanModel{W: 16})

	ls := detector.FromStrings("__name__", "checkout_latency_seconds", "job", "shop", "instance", "shop-1:8080")
	rng := rand.New(rand.NewPCG(1, 2))
	// Sample times end near the wall clock, as with live remote-write.
	ts := time.Now().Add(-350 * time.Second).UnixMilli()
	feed := func(v float64) {
		det.Append("", ls, []detector.Sample{{TimestampMs: ts, Value: v}})
		require.NoError(t, det.Flush())
		ts += 1000
	}
	calm := func(i int) float64 { return 100 + 10*math.Sin(float64(i)/5) + rng.NormFloat64() }
	for i := range 300 {
		feed(calm(i))
	}
	require.Empty(t, amAlerts(t, amURL), "a calm series raises nothing")

	feed(400) // the spike opens an anomaly
	var fired amAlert
	waitFor(t, 20*time.Second, func() bool {
		for _, a := range amAlerts(t, amURL) {
			if a.Labels["alertname"] == exporter.AlertName {
				fired = a
				return true
			}
		}
		return false
	})
	require.Equal(t, "active", fired.Status.State)
	require.Equal(t, "checkout_latency_seconds", fired.Labels["metric"])
	require.Equal(t, "shop", fired.Labels["job"])
	require.Equal(t, "shop-1:8080", fired.Labels["instance"])
	require.Equal(t, "window-mean-w16", fired.Labels["model"])
	require.Equal(t, "e2e", fired.Labels["cluster"])
	require.Contains(t, []string{"warning", "critical"}, fired.Labels["severity"])
	require.Contains(t, fired.Annotations["description"], "checkout_latency_seconds")
	require.Contains(t, fired.Annotations["description"], "is 400, expected")
	require.Equal(t, "https://runbooks.example/anomaly", fired.Annotations["runbook_url"])
	require.True(t, fired.EndsAt.After(time.Now()), "open: endsAt lies ahead (now + 3*resend_interval)")
	require.WithinDuration(t, time.Now().Add(3*time.Second), fired.EndsAt, 3*time.Second)

	// While open the alert is re-sent: Alertmanager sees it updated and
	// extended, not expiring.
	waitFor(t, 10*time.Second, func() bool {
		for _, a := range amAlerts(t, amURL) {
			if a.Labels["alertname"] == exporter.AlertName && a.EndsAt.After(fired.EndsAt) {
				return true
			}
		}
		return false
	})

	// Calm samples close the anomaly; the alert resolves and leaves the
	// list of unresolved alerts.
	for i := range 50 {
		feed(calm(300 + i))
	}
	waitFor(t, 20*time.Second, func() bool {
		for _, a := range amAlerts(t, amURL) {
			if a.Labels["alertname"] == exporter.AlertName {
				return false
			}
		}
		return true
	})
}
