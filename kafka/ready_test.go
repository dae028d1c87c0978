package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
)

// groupMembers returns the number of members of group (0 if it does not exist).
func groupMembers(t testing.TB, cfg Config, group string) int {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	gs, err := kadm.NewClient(cl).DescribeGroups(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	g, ok := gs[group]
	if !ok {
		return 0
	}
	return len(g.Members)
}

// The consumer must not join the group (take partitions, restore state,
// consume) before the detector has a model.
func TestConsumerWaitsForModel(t *testing.T) {
	cl := newCluster(t, 2, "samples")
	cfg := testConfig(cl, "samples")
	cfg.Producer.Topic = "samples"
	p, err := NewProducer(cfg, ProducerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	t0 := time.Now().Add(-time.Minute).UnixMilli()
	produceSteps(t, p, 10, 0, 3, t0)

	dcfg := detector.DefaultConfig
	d, err := detector.New(dcfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	tgt := newCountingTarget(d)
	c, err := NewConsumer(cfg, ConsumerOptions{Target: tgt, Ready: d.Ready})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	time.Sleep(500 * time.Millisecond)
	if n := tgt.samples(); n != 0 {
		t.Fatalf("consumed %d samples before the model was loaded", n)
	}
	if n := groupMembers(t, cfg, cfg.Consumer.Group); n != 0 {
		t.Fatalf("group has %d members before the model was loaded, want 0", n)
	}

	d.SetModel(detector.WindowMeanModel{W: 8})
	waitFor(t, 10*time.Second, "consumption after the model loaded", func() bool { return tgt.samples() == 30 })
	if n := groupMembers(t, cfg, cfg.Consumer.Group); n != 1 {
		t.Errorf("group has %d members after the model loaded, want 1", n)
	}
}

// A consumer stopped while waiting for the model returns without error.
func TestConsumerStopsWhileWaitingForModel(t *testing.T) {
	cl := newCluster(t, 1, "samples")
	cfg := testConfig(cl, "samples")
	c, err := NewConsumer(cfg, ConsumerOptions{Target: newTestDetector(t, nil), Ready: func() bool { return false }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := c.Run(ctx); err != nil {
		t.Fatal(err)
	}
}

// A series that left the detector (expired) gets a tombstone at the next
// checkpoint; a new owner restores only the live series.
func TestStateTombstoneForExpiredSeries(t *testing.T) {
	cl := newCluster(t, 4, "samples")
	cfg := testConfig(cl, "unused") // no group callbacks restore behind the test's back
	da, db := newTestDetector(t, nil), newTestDetector(t, nil)
	t0 := time.Now().Add(-time.Minute).UnixMilli()
	const n = 10
	for i := range n {
		ls := detector.FromStrings("__name__", "m", "i", fmt.Sprint(i))
		smp := make([]detector.Sample, 10)
		for j := range smp {
			smp[j] = detector.Sample{TimestampMs: t0 + int64(j)*1000, Value: float64(j % 3)}
		}
		da.Append("t1", ls, smp)
	}
	ma := NewMetrics(nil)
	ca := connectedConsumer(t, cfg, ConsumerOptions{Target: da, Metrics: ma})
	cb := connectedConsumer(t, cfg, ConsumerOptions{Target: db})
	parts := map[topicPartition]struct{}{}
	for p := range int32(4) {
		parts[topicPartition{"samples", p}] = struct{}{}
	}
	da.ExportState(nil, func(st detector.SeriesState) bool {
		h := detector.SeriesHash(st.Tenant, st.Labels)
		ca.owner[h] = topicPartition{"samples", int32(h % 4)}
		return true
	})
	ctx := context.Background()
	ca.checkpoint(ctx, ca.cl, parts)
	if got := counterValue(ma.stateWritten); got != n {
		t.Fatalf("written = %v, want %d", got, n)
	}

	// Three series expire (the detector drops them without telling the
	// consumer, like Expire does).
	if err := da.Flush(); err != nil { // series queued for inference are not deleted
		t.Fatal(err)
	}
	gone := map[string]bool{`{__name__="m", i="0"}`: true, `{__name__="m", i="4"}`: true, `{__name__="m", i="7"}`: true}
	if got := da.DeleteSeries(func(_ string, ls detector.Labels) bool { return gone[ls.String()] }); got != 3 {
		t.Fatalf("deleted %d series, want 3", got)
	}
	ca.checkpoint(ctx, ca.cl, parts)
	if got := counterValue(ma.stateTombstones); got != 3 {
		t.Errorf("tombstones = %v, want 3", got)
	}
	if got := counterValue(ma.stateWritten); got != 2*n-3 {
		t.Errorf("written = %v, want %d", got, 2*n-3)
	}
	// A third checkpoint writes no tombstone again.
	ca.checkpoint(ctx, ca.cl, parts)
	if got := counterValue(ma.stateTombstones); got != 3 {
		t.Errorf("tombstones after a further checkpoint = %v, want 3", got)
	}

	restored, read, err := cb.restoreParts(ctx, cb.cl, parts)
	if err != nil {
		t.Fatal(err)
	}
	if restored != n-3 || db.NumSeries() != n-3 {
		t.Errorf("restored %d (read %d records), series %d; want %d", restored, read, db.NumSeries(), n-3)
	}
	db.ExportState(nil, func(st detector.SeriesState) bool {
		if gone[st.Labels.String()] {
			t.Errorf("expired series %s was restored", st.Labels)
		}
		return true
	})
}
