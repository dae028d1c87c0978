package exporter

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
)

func amServer(t *testing.T, codes ...int) (*httptest.Server, func() [][]PostableAlert) {
	t.Helper()
	var (
		mu    sync.Mutex
		posts [][]PostableAlert
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "/api/v2/alerts", r.URL.Path)
		require.Equal(t, "application/json", r.Header.Get("Content-Type"))
		var alerts []PostableAlert
		require.NoError(t, json.NewDecoder(r.Body).Decode(&alerts))
		mu.Lock()
		posts = append(posts, alerts)
		code := http.StatusOK
		if len(codes) > 0 {
			code, codes = codes[0], codes[1:]
		}
		mu.Unlock()
		w.WriteHeader(code)
	}))
	t.Cleanup(srv.Close)
	return srv, func() [][]PostableAlert {
		mu.Lock()
		defer mu.Unlock()
		return append([][]PostableAlert(nil), posts...)
	}
}

func TestAlertmanagerOpenResendResolve(t *testing.T) {
	srv, got := amServer(t, http.StatusInternalServerError)
	cfg := DefaultAlertmanagerConfig()
	cfg.URLs = []string{srv.URL + "/"}
	cfg.ResendInterval = model.Duration(100 * time.Millisecond)
	cfg.MinBackoff, cfg.MaxBackoff = model.Duration(time.Millisecond), model.Duration(time.Millisecond)
	cfg.RunbookURL = "https://runbooks.example/anomaly"
	cfg.ExternalLabels = map[string]string{"cluster": "eu1", "job": "ignored"}
	a, err := NewAlertmanager(cfg, DefaultLabelNames, stubEnricher{"workload": "web"}, stubIncidents("inc-1"), slog.New(slog.DiscardHandler), nil)
	require.NoError(t, err)
	now := time.Now()
	evs := testEvents()
	// Sample time close to the wall clock, as in production.
	for i := range evs {
		evs[i].OpenedAtMs = now.Add(-time.Minute).UnixMilli()
		evs[i].TimestampMs = now.UnixMilli()
	}
	evs[1].ClosedAtMs = now.Add(time.Hour).UnixMilli() // sample clock ahead of ours
	evs[1].ModelVersion = "v4"                         // a reload must not change the alert's identity
	runOutput(t, a.Run)

	a.HandleEvents(evs[:1])
	// First post fails with 500 and is retried; then re-sends follow.
	require.Eventually(t, func() bool { return len(got()) >= 3 }, 5*time.Second, 5*time.Millisecond)
	first := got()[1][0]
	require.Equal(t, map[string]string{
		"alertname": "AnomalyDetected", "severity": "critical", "incident": "inc-1", "cluster": "eu1",
		"job": "api", "metric": "http_requests_total", "model": "v3", "namespace": "shop", "pod": "web-1",
		"tenant": "acme", "workload": "web",
	}, first.Labels)
	require.Equal(t, "Anomaly on http_requests_total (score 0.995)", first.Annotations["summary"])
	require.Equal(t, `http_requests_total{job="api", namespace="shop", pod="web-1"} is 250, expected 100 (normal range 80 to 120, +150.0%); direction up, cause level, model v3.`, first.Annotations["description"])
	require.Equal(t, "level", first.Annotations["cause"])
	require.Equal(t, "https://runbooks.example/anomaly", first.Annotations["runbook_url"])
	require.Equal(t, now.Add(-time.Minute).UnixMilli(), first.StartsAt.UnixMilli())
	require.WithinDuration(t, time.Now().Add(300*time.Millisecond), first.EndsAt, 200*time.Millisecond)

	a.HandleEvents(evs[1:])
	require.Eventually(t, func() bool { return a.numAlerts() == 0 }, 5*time.Second, 5*time.Millisecond)
	posts := got()
	last := posts[len(posts)-1][0]
	require.False(t, last.EndsAt.After(time.Now()), "resolved: endsAt not in the future")
	require.Equal(t, first.Labels, last.Labels)
	require.Equal(t, 1.0, testutil.ToFloat64(a.metrics.requests.WithLabelValues("500")))
}

func TestAlertmanagerMaxAlerts(t *testing.T) {
	cfg := DefaultAlertmanagerConfig()
	cfg.URLs = []string{"http://127.0.0.1:1"}
	cfg.MaxAlerts = 1
	a, err := NewAlertmanager(cfg, DefaultLabelNames, nil, nil, slog.New(slog.DiscardHandler), nil)
	require.NoError(t, err)
	evs := testEvents()
	other := evs[0]
	other.ID = 8
	a.HandleEvents([]detector.Event{evs[0], other})
	require.Equal(t, 1, a.numAlerts())
	require.Equal(t, 1.0, testutil.ToFloat64(a.metrics.dropped.WithLabelValues("max_alerts")))
}

func TestAlertmanagerConfigValidate(t *testing.T) {
	cfg := DefaultAlertmanagerConfig()
	require.NoError(t, cfg.Validate())
	cfg.URLs = []string{"localhost:9093"}
	cfg.ResendInterval = 0
	err := cfg.Validate()
	require.ErrorContains(t, err, "alertmanager.urls[0]")
	require.ErrorContains(t, err, "alertmanager.resend_interval")
}
