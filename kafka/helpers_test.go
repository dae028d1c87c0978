package kafka

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newCluster(t testing.TB, partitions int32, topics ...string) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topics...),
		kfake.GroupMinSessionTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func testConfig(c *kfake.Cluster, topics ...string) Config {
	cfg := DefaultConfig()
	cfg.Brokers = c.ListenAddrs()
	cfg.Consumer.Topics = topics
	cfg.Consumer.SessionTimeout.Set("1s")
	cfg.Consumer.RebalanceTimeout.Set("5s")
	cfg.State.Partitions = 4
	cfg.State.ReplicationFactor = 1
	return cfg
}

func newTestDetector(t testing.TB, reg prometheus.Registerer) *detector.Detector {
	t.Helper()
	cfg := detector.DefaultConfig
	cfg.Scoring.WarmupSamples = 2
	cfg.Scoring.LearningPeriod = 0 // the series are seconds old
	d, err := detector.New(cfg, slog.New(slog.DiscardHandler), reg)
	if err != nil {
		t.Fatal(err)
	}
	d.SetModel(detector.WindowMeanModel{W: 8})
	return d
}

// countingTarget records every (series, timestamp) appended, for
// at-least-once checks.
type countingTarget struct {
	*detector.Detector
	mu   sync.Mutex
	seen map[string]map[int64]int
}

func newCountingTarget(d *detector.Detector) *countingTarget {
	return &countingTarget{Detector: d, seen: map[string]map[int64]int{}}
}

func (c *countingTarget) AppendTyped(tenant string, ls detector.Labels, s []detector.Sample, typ detector.MetricType) detector.AppendStats {
	k := tenant + ls.String()
	c.mu.Lock()
	m := c.seen[k]
	if m == nil {
		m = map[int64]int{}
		c.seen[k] = m
	}
	for _, x := range s {
		m[x.TimestampMs]++
	}
	c.mu.Unlock()
	return c.Detector.AppendTyped(tenant, ls, s, typ)
}

func (c *countingTarget) samples() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, m := range c.seen {
		n += len(m)
	}
	return n
}

// encodeV2 builds a snappy Remote-Write 2.0 request with one series.
func encodeV2(ls detector.Labels, samples []detector.Sample) []byte {
	var b []byte
	syms := []string{""}
	var refs []byte
	for _, l := range ls {
		syms = append(syms, l.Name, l.Value)
		refs = binary.AppendUvarint(refs, uint64(len(syms)-2))
		refs = binary.AppendUvarint(refs, uint64(len(syms)-1))
	}
	for _, s := range syms {
		b = append(b, 4<<3|2)
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	var ts []byte
	ts = append(ts, 1<<3|2)
	ts = binary.AppendUvarint(ts, uint64(len(refs)))
	ts = append(ts, refs...)
	for _, s := range samples {
		var sm []byte
		sm = append(sm, 1<<3|1)
		sm = binary.LittleEndian.AppendUint64(sm, math.Float64bits(s.Value))
		sm = append(sm, 2<<3)
		sm = binary.AppendUvarint(sm, uint64(s.TimestampMs))
		ts = append(ts, 2<<3|2, byte(len(sm)))
		ts = append(ts, sm...)
	}
	b = append(b, 5<<3|2)
	b = binary.AppendUvarint(b, uint64(len(ts)))
	b = append(b, ts...)
	return snappy.Encode(nil, b)
}

func adapterJSON(name string, ts time.Time, v float64) []byte {
	return fmt.Appendf(nil, `{"timestamp":%q,"value":"%g","name":%q,"labels":{"__name__":%q,"job":"adapter"}}`,
		ts.UTC().Format(time.RFC3339), v, name, name)
}

func produce(t testing.TB, c *kfake.Cluster, recs ...*kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func counterValue(c prometheus.Collector) float64 { return testutil.ToFloat64(c) }

func startConsumer(t testing.TB, cfg Config, target Target, m *Metrics) (*Consumer, func()) {
	t.Helper()
	var logger *slog.Logger
	if os.Getenv("KAFKA_TEST_LOG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	c, err := NewConsumer(cfg, ConsumerOptions{Target: target, Metrics: m, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := c.Run(ctx); err != nil {
			t.Error(err)
		}
	}()
	return c, func() { cancel(); <-done }
}

// connectedConsumer returns a consumer whose client is connected but not
// running, for driving rebalance callbacks by hand; closed at cleanup.
func connectedConsumer(t testing.TB, cfg Config, o ConsumerOptions) *Consumer {
	t.Helper()
	c, err := NewConsumer(cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.connect(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.cl.Close)
	return c
}
