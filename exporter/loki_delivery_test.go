package exporter

import (
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/grafana/loki/pkg/push"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
)

// seqClock returns the given times in turn, then keeps returning the last.
func seqClock(ts ...time.Time) func() time.Time {
	var mu sync.Mutex
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t := ts[0]
		if len(ts) > 1 {
			ts = ts[1:]
		}
		return t
	}
}

func lokiEvent(kind detector.EventKind, id uint64, pod string, sampleMs int64, score, peak float64) detector.Event {
	ev := detector.Event{
		Kind: kind, ID: id, Tenant: "acme",
		Labels:     detector.FromStrings("__name__", "http_requests_total", "namespace", "shop", "pod", pod),
		OpenedAtMs: sampleMs, TimestampMs: sampleMs,
		Value: 250, Expected: 100, Lower: 80, Upper: 120, Score: score, PeakScore: peak,
		Direction: detector.DirectionUp, ModelVersion: "v3",
	}
	if kind == detector.EventClose {
		ev.ClosedAtMs = sampleMs
	}
	return ev
}

// storedEvent is "<event> <anomaly_id>" of a stored entry of sentinel-mesh.
func storedEvent(e lokiStored) string {
	id := ""
	for _, m := range e.entry.StructuredMetadata {
		if m.Name == "anomaly_id" {
			id = m.Value
		}
	}
	kind, ok := strings.CutPrefix(strings.Fields(e.entry.Line)[0], "event=")
	if !ok {
		return e.entry.Line // not sentinel-mesh's
	}
	return kind + " " + id
}

func storedEvents(r *lokiReceiver) []string {
	var out []string
	for _, e := range r.entries() {
		out = append(out, storedEvent(e))
	}
	return out
}

// requireNoCloseWithoutOpen checks that every stored close follows its open.
func requireNoCloseWithoutOpen(t *testing.T, r *lokiReceiver) {
	t.Helper()
	opened := map[string]bool{}
	for _, ev := range storedEvents(r) {
		kind, id, _ := strings.Cut(ev, " ")
		switch kind {
		case "open":
			opened[id] = true
		case "close":
			require.True(t, opened[id], "close of anomaly %s stored without its open: %v", id, storedEvents(r))
		}
	}
}

// TestLokiLaggingSeriesAccepted puts two series in one stream, the second
// more than an hour behind the first: every event is stored, because
// entries carry the time they were sent, and the line keeps the sample's.
func TestLokiLaggingSeriesAccepted(t *testing.T) {
	r := newLokiReceiver(t)
	l, err := NewLoki(testLokiConfig(r.url()), DefaultLabelNames, nil, nil, slog.New(slog.DiscardHandler), nil)
	require.NoError(t, err)
	runOutput(t, l.Run)

	now := time.Now().UTC().Truncate(time.Millisecond)
	lag := now.Add(-2 * time.Hour)
	steps := [][]detector.Event{
		{lokiEvent(detector.EventOpen, 1, "web-1", now.UnixMilli(), 0.995, 0.995)},
		{lokiEvent(detector.EventOpen, 2, "web-2", lag.UnixMilli(), 0.995, 0.995)},
		{lokiEvent(detector.EventClose, 1, "web-1", now.Add(5*time.Minute).UnixMilli(), 0.1, 0.995)},
		{lokiEvent(detector.EventClose, 2, "web-2", lag.Add(5*time.Minute).UnixMilli(), 0.1, 0.995)},
	}
	for i, evs := range steps {
		l.HandleEvents(evs)
		require.Eventually(t, func() bool { return testutil.ToFloat64(l.metrics.sent) == float64(i+1) }, 5*time.Second, time.Millisecond)
	}
	require.Equal(t, []string{"open 1", "open 2", "close 1", "close 2"}, storedEvents(r))
	stored := r.entries()
	for _, e := range stored {
		require.Equal(t, stored[0].stream, e.stream, "one stream")
	}
	require.Contains(t, stored[1].entry.Line, "sample_time="+lag.Format(lokiSampleTimeLayout))
	require.Zero(t, testutil.ToFloat64(l.metrics.failures))
	for _, reason := range []string{"queue_full", "rejected", "retries_exhausted", "open_lost"} {
		require.Zero(t, testutil.ToFloat64(l.metrics.dropped.WithLabelValues(reason)), reason)
	}

	// Stamped with its sample time, the lagging series' event is rejected.
	code, body := r.pushDirect("acme", stored[0].stream, push.Entry{Timestamp: lag, Line: "event=open"})
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, body, "entry too far behind")
}

// TestLokiPartialRejectionCounted has Loki store one entry of a request and
// reject two (another writer put an entry two hours ahead in the stream):
// one is counted sent, two rejected, and the closes of the two rejected
// opens are dropped with them.
func TestLokiPartialRejectionCounted(t *testing.T) {
	r := newLokiReceiver(t)
	e := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	l, err := NewLoki(testLokiConfig(r.url()), DefaultLabelNames, nil, nil, slog.New(slog.DiscardHandler), nil)
	require.NoError(t, err)
	l.now = seqClock(e, e.Add(time.Second), e.Add(90*time.Minute), e.Add(91*time.Minute))

	sample := e.UnixMilli()
	opens := []detector.Event{
		lokiEvent(detector.EventOpen, 1, "web-1", sample, 0.995, 0.995),
		lokiEvent(detector.EventOpen, 2, "web-2", sample, 0.995, 0.995),
		lokiEvent(detector.EventOpen, 3, "web-3", sample, 0.995, 0.995),
	}
	// The stream as sentinel-mesh labels it, seeded two hours ahead.
	stream := lokiLabelsString(l.entry(&opens[0], new([]detector.Label)).stream)
	code, _ := r.pushDirect("acme", stream, push.Entry{Timestamp: e.Add(2 * time.Hour), Line: "other writer"})
	require.Equal(t, http.StatusNoContent, code)

	runOutput(t, l.Run)
	l.HandleEvents(opens)
	require.Eventually(t, func() bool { return testutil.ToFloat64(l.metrics.failures) == 1 }, 5*time.Second, time.Millisecond)
	require.Equal(t, 1.0, testutil.ToFloat64(l.metrics.sent))
	require.Equal(t, 2.0, testutil.ToFloat64(l.metrics.dropped.WithLabelValues("rejected")))

	l.HandleEvents([]detector.Event{
		lokiEvent(detector.EventClose, 1, "web-1", sample+60_000, 0.1, 0.995),
		lokiEvent(detector.EventClose, 2, "web-2", sample+60_000, 0.1, 0.995),
		lokiEvent(detector.EventClose, 3, "web-3", sample+60_000, 0.1, 0.995),
	})
	require.Eventually(t, func() bool { return testutil.ToFloat64(l.metrics.sent) == 2 }, 5*time.Second, time.Millisecond)
	require.Equal(t, 2.0, testutil.ToFloat64(l.metrics.dropped.WithLabelValues("open_lost")))
	require.Equal(t, 2.0, testutil.ToFloat64(l.metrics.dropped.WithLabelValues("rejected")))
	require.Equal(t, []string{"open 3", "close 3"}, storedEvents(r)[1:])
	requireNoCloseWithoutOpen(t, r)
}

// TestLokiLongOutage keeps Loki down for longer than the retry budget, then
// brings it back: the opens that ran out of retries take their closes with
// them, and no close arrives without its open.
func TestLokiLongOutage(t *testing.T) {
	r := newLokiReceiver(t)
	cfg := testLokiConfig(r.url())
	cfg.MaxRetries = 2
	l, err := NewLoki(cfg, DefaultLabelNames, nil, nil, slog.New(slog.DiscardHandler), nil)
	require.NoError(t, err)
	runOutput(t, l.Run)
	now := time.Now().UnixMilli()

	r.setDown(true)
	l.HandleEvents([]detector.Event{lokiEvent(detector.EventOpen, 1, "web-1", now, 0.995, 0.995)})
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(l.metrics.dropped.WithLabelValues("retries_exhausted")) == 1
	}, 5*time.Second, time.Millisecond)
	l.HandleEvents([]detector.Event{lokiEvent(detector.EventOpen, 2, "web-2", now+1000, 0.995, 0.995)})
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(l.metrics.dropped.WithLabelValues("retries_exhausted")) == 2
	}, 5*time.Second, time.Millisecond)
	r.setDown(false)

	l.HandleEvents([]detector.Event{
		lokiEvent(detector.EventClose, 1, "web-1", now+60_000, 0.1, 0.995),
		lokiEvent(detector.EventOpen, 3, "web-3", now+60_000, 0.995, 0.995),
	})
	l.HandleEvents([]detector.Event{
		lokiEvent(detector.EventClose, 2, "web-2", now+61_000, 0.1, 0.995),
		lokiEvent(detector.EventClose, 3, "web-3", now+61_000, 0.1, 0.995),
	})
	require.Eventually(t, func() bool { return testutil.ToFloat64(l.metrics.sent) == 2 }, 5*time.Second, time.Millisecond)
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(l.metrics.dropped.WithLabelValues("open_lost")) == 2
	}, 5*time.Second, time.Millisecond)
	require.Equal(t, []string{"open 3", "close 3"}, storedEvents(r))
	requireNoCloseWithoutOpen(t, r)
	require.Equal(t, 2.0, testutil.ToFloat64(l.metrics.failures))
	require.Empty(t, l.lostOpens, "every lost open met its close")
}

// TestLokiCloseWaitsForOpenInOtherStream has an anomaly that opened as a
// warning and closed as critical in one batch, the critical stream first:
// the close is pushed after its open, and not at all when the open is lost.
func TestLokiCloseWaitsForOpenInOtherStream(t *testing.T) {
	batch := []detector.Event{
		lokiEvent(detector.EventOpen, 9, "web-9", 1000, 0.995, 0.995), // critical
		lokiEvent(detector.EventOpen, 1, "web-1", 1000, 0.95, 0.95),   // warning
		lokiEvent(detector.EventClose, 1, "web-1", 2000, 0.1, 0.995),  // critical
	}
	for _, tc := range []struct {
		name       string
		rejectWarn bool
		want       []string
		sent, lost float64
		rejected   float64
	}{
		{name: "delivered", want: []string{"open 9", "open 1", "close 1"}, sent: 3},
		{name: "open rejected", rejectWarn: true, want: []string{"open 9"}, sent: 1, lost: 1, rejected: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newLokiReceiver(t)
			if tc.rejectWarn {
				r.reject = func(stream string) bool { return strings.Contains(stream, `severity="warning"`) }
			}
			cfg := testLokiConfig(r.url())
			l, err := NewLoki(cfg, DefaultLabelNames, nil, nil, slog.New(slog.DiscardHandler), nil)
			require.NoError(t, err)
			stop := runOutput(t, l.Run)
			l.HandleEvents(batch)
			require.Eventually(t, func() bool { return len(l.queue) == 0 }, 5*time.Second, time.Millisecond)
			stop() // flushes what is batched
			require.Equal(t, tc.want, storedEvents(r))
			require.Equal(t, tc.sent, testutil.ToFloat64(l.metrics.sent))
			require.Equal(t, tc.lost, testutil.ToFloat64(l.metrics.dropped.WithLabelValues("open_lost")))
			require.Equal(t, tc.rejected, testutil.ToFloat64(l.metrics.dropped.WithLabelValues("rejected")))
		})
	}
}

func TestLokiRejected(t *testing.T) {
	t0 := time.Date(2026, 10, 7, 1, 35, 32, 405_000_000, time.UTC)
	entries := make([]lokiEntry, 12)
	for i := range entries {
		entries[i] = lokiEntry{entry: push.Entry{Timestamp: t0.Add(time.Duration(i) * time.Millisecond)}, kind: detector.EventOpen, id: uint64(i + 1)}
	}
	entries[1].kind = detector.EventClose
	ignoredLine := func(i int) string {
		ts := entries[i].entry.Timestamp
		return "entry with timestamp " + ts.String() + " ignored, reason: 'entry too far behind, entry timestamp is: " +
			ts.Format(time.RFC3339) + ", oldest acceptable timestamp is: 2026-10-07T03:23:59Z',\n"
	}
	ids := func(es []lokiEntry) []uint64 {
		var out []uint64
		for _, e := range es {
			out = append(out, e.id)
		}
		return out
	}
	for _, tc := range []struct {
		name     string
		n        int
		body     string
		rejected int
		lost     []uint64
	}{
		{
			name:     "two of three, listed",
			n:        3,
			body:     ignoredLine(0) + ignoredLine(2) + "user 'acme', total ignored: 2 out of 3 for stream: {service_name=\"sentinel-mesh\"}\n",
			rejected: 2, lost: []uint64{1, 3},
		},
		{
			name:     "Loki 2.x summary",
			n:        3,
			body:     strings.TrimSuffix(ignoredLine(1), ",\n") + " for stream: {a=\"b\"},\ntotal ignored: 1 out of 3\n",
			rejected: 1, lost: []uint64{2},
		},
		{
			name: "more rejected than listed: every open counts as lost",
			n:    12,
			body: func() string {
				var b strings.Builder
				for i := range 10 {
					b.WriteString(ignoredLine(i + 1))
				}
				return b.String() + "user 'acme', total ignored: 11 out of 12 for stream: {a=\"b\"}\n"
			}(),
			rejected: 11, lost: []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12},
		},
		{
			name:     "distributor dropped one before the ingester",
			n:        3,
			body:     ignoredLine(0) + "user 'acme', total ignored: 1 out of 2 for stream: {a=\"b\"}\n",
			rejected: 2, lost: []uint64{1, 3},
		},
		{
			name:     "no summary: all rejected",
			n:        3,
			body:     "error at stream {a=\"b\"}: invalid labels\n",
			rejected: 3, lost: []uint64{1, 2, 3},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rejected, lost := lokiRejected(entries[:tc.n], []byte(tc.body))
			require.Equal(t, tc.rejected, rejected)
			if diff := cmp.Diff(tc.lost, ids(lost)); diff != "" {
				t.Fatalf("lost (-want +got):\n%s", diff)
			}
		})
	}
}

// TestLokiMetadataNamesDoNotClash checks that no structured metadata name
// is a stream label or a key of the line.
func TestLokiMetadataNamesDoNotClash(t *testing.T) {
	l, err := NewLoki(testLokiConfig("http://loki:3100/loki/api/v1/push"), DefaultLabelNames, nil, stubIncidents("inc-1"), slog.New(slog.DiscardHandler), nil)
	require.NoError(t, err)
	ev := lokiEvent(detector.EventClose, 5, "web-1", 1000, 0.1, 0.995)
	ev.Labels = detector.FromStrings("__name__", "up", "namespace", "shop", "severity", "high",
		"event", "deploy", "score", "x", "service_name", "api", "exported_score", "y", "tenant", "other")
	e := l.entry(&ev, new([]detector.Label))
	line := map[string]bool{}
	for _, kv := range strings.Fields(e.entry.Line) {
		k, _, _ := strings.Cut(kv, "=")
		line[k] = true
	}
	stream := map[string]bool{}
	for _, s := range e.stream {
		stream[s.Name] = true
	}
	meta := map[string]string{}
	for _, m := range e.entry.StructuredMetadata {
		require.False(t, stream[m.Name], "metadata %s is a stream label", m.Name)
		require.False(t, line[m.Name], "metadata %s is a line key", m.Name)
		_, dup := meta[m.Name]
		require.False(t, dup, "metadata %s twice", m.Name)
		meta[m.Name] = m.Value
	}
	require.Equal(t, map[string]string{
		"metric": "up", "model": "v3",
		// The series' own exported_score keeps its name; its score moves past it.
		"exported_event": "deploy", "exported_score": "y", "exported_exported_score": "x",
		"exported_service_name": "api", "exported_severity": "high", "exported_tenant": "other",
		"anomaly_id": "5", "incident_id": "inc-1",
	}, meta)
}
