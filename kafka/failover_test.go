package kafka

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
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

// Two replicas share the partitions; one is killed mid-stream; the other
// takes over with restored state and nothing is lost (at-least-once).
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
	produceSteps(t, p, series, 0, 15, t0)

	ta, tb := newCountingTarget(newTestDetector(t, nil)), newCountingTarget(newTestDetector(t, nil))
	ma, mb := NewMetrics(nil), NewMetrics(nil)
	a, stopA := startConsumer(t, cfg, ta, ma)
	waitFor(t, 10*time.Second, "A consumed phase 1", func() bool { return ta.samples() == series*15 })
	b, stopB := startConsumer(t, cfg, tb, mb)
	defer stopB()
	waitFor(t, 10*time.Second, "partitions split", func() bool { return a.ownedCount() == 2 && b.ownedCount() == 2 })
	if got := counterValue(mb.stateRestored); got == 0 {
		t.Errorf("B restored no state from A's revoke checkpoint")
	}

	// Phase 2: both consume; kill A in the middle of it.
	done := make(chan struct{})
	go func() { defer close(done); produceSteps(t, p, series, 15, 30, t0) }()
	waitFor(t, 10*time.Second, "A consuming phase 2", func() bool { return ta.samples() > series*15+series })
	a.kill()
	stopA()
	<-done
	produceSteps(t, p, series, 30, 35, t0)

	all := series * 35
	union := func() int {
		ta.mu.Lock()
		defer ta.mu.Unlock()
		tb.mu.Lock()
		defer tb.mu.Unlock()
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
	// Every series was handed over with its state: 17+23 via the revoke
	// checkpoint and the kill (periodic checkpoints), none started cold.
	if got := counterValue(mb.stateRestored); got < series {
		t.Errorf("B restored %v series states, want >= %d", got, series)
	}
	t.Logf("restored on B: %v series; A appended %d, B %d samples (%d distinct, all present)", counterValue(mb.stateRestored), ta.samples(), tb.samples(), all)
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
	ca, err := NewConsumer(cfg, ConsumerOptions{Target: da})
	if err != nil {
		t.Fatal(err)
	}
	defer ca.cl.Close()
	cb, err := NewConsumer(cfg, ConsumerOptions{Target: db})
	if err != nil {
		t.Fatal(err)
	}
	defer cb.cl.Close()
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
