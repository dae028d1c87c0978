package kafka

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
	"github.com/sentinel-mesh/sentinel-mesh/internal/metrictest"
)

func produceSteps(t testing.TB, p *Producer, series, from, to int, t0 int64) {
	t.Helper()
	for step := from; step < to; step++ {
		b := p.Begin()
		for s := range series {
			ls := detector.FromStrings("__name__", "m", "i", fmt.Sprint(s))
			b.Append("t1", ls, []detector.Sample{{TimestampMs: t0 + int64(step)*1000, Value: float64(step%7) + float64(s)}})
		}
		if err := b.Commit(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

func (c *Consumer) ownedCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.owned)
}

// warmProbe checks that a takeover scores warm: the first sample a replica
// accepts for a series after importing its state must be scored at once
// (a Result at that sample's timestamp), not spent refilling the window.
type warmProbe struct {
	*countingTarget
	mu         sync.Mutex
	imported   map[string]bool // restored, waiting for their first new sample
	warm, cold int
	coldKeys   []string
}

func newWarmProbe(c *countingTarget) *warmProbe {
	return &warmProbe{countingTarget: c, imported: map[string]bool{}}
}

func (w *warmProbe) ImportState(st detector.SeriesState) bool {
	ok := w.Detector.ImportState(st)
	if ok {
		w.mu.Lock()
		w.imported[st.Tenant+st.Labels.String()] = true
		w.mu.Unlock()
	}
	return ok
}

func (w *warmProbe) AppendTyped(tenant string, ls detector.Labels, s []detector.Sample, typ detector.MetricType) detector.AppendStats {
	st := w.countingTarget.AppendTyped(tenant, ls, s, typ)
	k := tenant + ls.String()
	w.mu.Lock()
	waiting := w.imported[k]
	w.mu.Unlock()
	if !waiting || st.Accepted == 0 {
		return st // replayed samples at or before the restored LastTs are dropped
	}
	r, ok := resultOf(w.Detector, tenant, ls)
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.imported, k)
	if ok && r.TimestampMs == s[len(s)-1].TimestampMs {
		w.warm++
	} else {
		w.cold++
		w.coldKeys = append(w.coldKeys, k)
	}
	return st
}

func (w *warmProbe) counts() (warm, cold int, coldKeys []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.warm, w.cold, append([]string(nil), w.coldKeys...)
}

func resultOf(d *detector.Detector, tenant string, ls detector.Labels) (detector.Result, bool) {
	var out detector.Result
	found := false
	want := ls.String()
	d.Results(func(r *detector.Result) bool {
		if r.Tenant == tenant && r.Labels.String() == want {
			out, found = *r, true
			return false
		}
		return true
	})
	return out, found
}

// Two replicas share the partitions; one is killed mid-stream; the other
// takes over with restored state, scores the moved series warm, and nothing
// is lost (at-least-once).
func TestFailoverRestoresStateWithoutLoss(t *testing.T) {
	const series = 40
	cl := newCluster(t, 4, "samples")
	cfg := testConfig(cl, "samples")
	cfg.Producer.Topic = "samples"
	cfg.Consumer.MaxPollRecords = 25
	cfg.State.CheckpointInterval.Set("50ms")
	p, err := NewProducer(cfg, ProducerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	t0 := time.Now().Add(-10 * time.Minute).UnixMilli()

	regB := prometheus.NewRegistry()
	ta := newCountingTarget(newTestDetector(t, nil))
	tb := newWarmProbe(newCountingTarget(newTestDetector(t, regB)))
	ma, mb := NewMetrics(nil), NewMetrics(nil)
	a, stopA := startConsumer(t, cfg, ta, ma)
	// Phase 1: 15 steps fill A's windows (8) and warm its calibration (2
	// warm-up samples). One step at a time, so that every batch holds one
	// sample per series and each is scored (a second sample of a series in
	// the same batch would wait for the batch's inference).
	for step := range 15 {
		produceSteps(t, p, series, step, step+1, t0)
		waitFor(t, 10*time.Second, "A consumed a phase 1 step", func() bool { return ta.samples() == series*(step+1) })
	}
	b, stopB := startConsumer(t, cfg, tb, mb)
	defer stopB()
	waitFor(t, 10*time.Second, "partitions split", func() bool { return a.ownedCount() == 2 && b.ownedCount() == 2 })
	if got := counterValue(mb.stateRestored); got == 0 {
		t.Errorf("B restored no state from A's revoke checkpoint")
	}

	// Phase 2: both consume; kill A in the middle of it, once A has written
	// a periodic checkpoint of its (full) windows since the split.
	written := counterValue(ma.stateWritten)
	done := make(chan struct{})
	go func() { defer close(done); produceSteps(t, p, series, 15, 30, t0) }()
	waitFor(t, 10*time.Second, "A consuming and checkpointing phase 2", func() bool {
		return ta.samples() > series*15+series && counterValue(ma.stateWritten) > written
	})
	a.kill()
	stopA()
	<-done
	// Phase 3: after the takeover; fewer steps than a window, so only a
	// restored series can be scored in it.
	produceSteps(t, p, series, 30, 35, t0)

	all := series * 35
	union := func() int {
		ta.mu.Lock()
		defer ta.mu.Unlock()
		tb.countingTarget.mu.Lock()
		defer tb.countingTarget.mu.Unlock()
		n := 0
		for s := range series {
			k := "t1" + detector.FromStrings("__name__", "m", "i", fmt.Sprint(s)).String()
			for step := range 35 {
				ts := t0 + int64(step)*1000
				if ta.seen[k][ts] > 0 || tb.seen[k][ts] > 0 {
					n++
				}
			}
		}
		return n
	}
	waitFor(t, 20*time.Second, "B took over everything", func() bool {
		return b.ownedCount() == 4 && union() == all && tb.NumSeries() == series
	})
	if got := counterValue(mb.rebalances.WithLabelValues("assigned")); got < 2 {
		t.Errorf("B saw %v assignments, want >= 2", got)
	}
	// Every series was handed over with its state: about half via the
	// revoke checkpoint, the rest via A's periodic checkpoint before the kill.
	if got := counterValue(mb.stateRestored); got < series {
		t.Errorf("B restored %v series states, want >= %d", got, series)
	}

	// Warm takeover: the first new sample of every restored series was
	// scored, and B never scored a sample in calibration warm-up.
	warm, cold, coldKeys := tb.counts()
	if cold > 0 || warm < series {
		t.Errorf("restored series scored at their first new sample: %d, not scored: %d %v; want all (>= %d)", warm, cold, coldKeys, series)
	}
	if got := metrictest.Value(t, regB, "sentinel_mesh_samples_unscored_total", "reason", "warmup"); got != 0 {
		t.Errorf("B scored %v samples in warm-up, want 0", got)
	}
	// Every series has a recent result: scored during phase 3, which is
	// shorter than a window.
	recent := t0 + 30*1000
	for s := range series {
		ls := detector.FromStrings("__name__", "m", "i", fmt.Sprint(s))
		if r, ok := resultOf(tb.Detector, "t1", ls); !ok || r.TimestampMs < recent {
			t.Errorf("series %s: result at %d (found %v), want a score at or after step 30 (%d)", ls, r.TimestampMs, ok, recent)
		}
	}
	t.Logf("restored on B: %v series, %d scored at their first new sample; A appended %d, B %d samples (%d distinct, all present)",
		counterValue(mb.stateRestored), warm, ta.samples(), tb.samples(), all)
}

// TestHandoffTiming measures checkpoint and restore of many series through
// kfake. SENTINEL_KAFKA_HANDOFF_SERIES sets the count (default 10k; the
// documented figure uses 100000).
func TestHandoffTiming(t *testing.T) {
	n := 10_000
	if v := os.Getenv("SENTINEL_KAFKA_HANDOFF_SERIES"); v != "" {
		fmt.Sscan(v, &n)
	}
	cl := newCluster(t, 4, "samples")
	// The consumers consume a topic without partitions so that their group
	// callbacks do not restore anything behind the test's back.
	cfg := testConfig(cl, "unused")
	cfg.State.RestoreTimeout.Set("5m")
	da, db := newTestDetector(t, nil), newTestDetector(t, nil)
	t0 := time.Now().Add(-time.Minute).UnixMilli()
	for i := range n {
		ls := detector.FromStrings("__name__", "handoff_metric", "instance", fmt.Sprintf("host-%d:9100", i), "job", "node")
		smp := make([]detector.Sample, 12)
		for j := range smp {
			smp[j] = detector.Sample{TimestampMs: t0 + int64(j)*1000, Value: float64(j%3 + i%5)}
		}
		da.Append("t1", ls, smp)
	}
	ca := connectedConsumer(t, cfg, ConsumerOptions{Target: da})
	cb := connectedConsumer(t, cfg, ConsumerOptions{Target: db})
	parts := map[topicPartition]struct{}{}
	for p := range int32(4) {
		parts[topicPartition{"samples", p}] = struct{}{}
	}
	da.ExportState(nil, func(st detector.SeriesState) bool {
		h := detector.SeriesHash(st.Tenant, st.Labels)
		ca.mu.Lock()
		ca.owner[h] = topicPartition{"samples", int32(h % 4)}
		ca.mu.Unlock()
		return true
	})
	ctx := context.Background()
	start := time.Now()
	ca.checkpoint(ctx, ca.cl, parts)
	tCk := time.Since(start)
	start = time.Now()
	restored, read, err := cb.restoreParts(ctx, cb.cl, parts)
	tRe := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if restored != n || db.NumSeries() != n {
		t.Fatalf("restored %d (read %d), series %d, want %d", restored, read, db.NumSeries(), n)
	}
	t.Logf("handoff of %d series: checkpoint %v, restore %v, total %v", n, tCk, tRe, tCk+tRe)
}
