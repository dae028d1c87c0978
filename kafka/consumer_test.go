package kafka

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
	"github.com/sentinel-mesh/sentinel-mesh/internal/metrictest"
)

func TestConsumerFormatsAndBadRecords(t *testing.T) {
	cl := newCluster(t, 2, "rw", "json", "dlq")
	cfg := testConfig(cl, "rw", "json")
	cfg.State.Topic = ""
	cfg.Consumer.DeadLetterTopic = "dlq"
	cfg.Consumer.Formats = map[string]string{"json": FormatJSON}

	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	ls := detector.FromStrings("__name__", "up", "job", "a")
	v1, _ := EncodeSeriesV1(ls, []detector.Sample{{TimestampMs: t0.UnixMilli(), Value: 1}, {TimestampMs: t0.UnixMilli() + 1000, Value: 2}}, nil)
	v2 := encodeV2(detector.FromStrings("__name__", "up", "job", "b"), []detector.Sample{{TimestampMs: t0.UnixMilli(), Value: 3}})
	recs := []*kgo.Record{
		// v1 without headers: sniffed.
		{Topic: "rw", Value: v1},
		// v2 detected from headers, with a tenant.
		{Topic: "rw", Partition: 1, Value: v2, Headers: []kgo.RecordHeader{
			{Key: "content-type", Value: []byte("application/x-protobuf;proto=io.prometheus.write.v2.Request")},
			{Key: "X-Scope-OrgID", Value: []byte("team-b")}}},
		{Topic: "json", Value: adapterJSON("temp", t0, 21.5)},
		{Topic: "json", Value: adapterJSON("temp", t0.Add(time.Second), 22)},
		// Bad records: garbage, broken snappy with a v1 header, bad JSON.
		{Topic: "rw", Value: []byte("garbage"), Headers: []kgo.RecordHeader{{Key: "Content-Type", Value: []byte("text/plain")}}},
		{Topic: "rw", Value: []byte{0xff, 0xff, 0xff}, Headers: []kgo.RecordHeader{{Key: "x-prometheus-remote-write-version", Value: []byte("0.1.0")}}},
		{Topic: "json", Value: []byte(`{"timestamp":"yesterday","value":"1"}`)},
		// A valid record after the bad ones is still consumed.
		{Topic: "rw", Value: v2, Headers: []kgo.RecordHeader{{Key: "x-prometheus-remote-write-version", Value: []byte("2.0.0")}}},
	}
	produce(t, cl, recs...)

	d := newTestDetector(t, nil)
	tgt := newCountingTarget(d)
	m := NewMetrics(nil)
	_, stop := startConsumer(t, cfg, tgt, m)
	defer stop()

	waitFor(t, 10*time.Second, "all records", func() bool {
		return counterValue(m.records.WithLabelValues("ok"))+counterValue(m.deadLettered) >= 8
	})
	if got := tgt.samples(); got != 6 {
		t.Errorf("distinct samples appended = %d, want 6", got)
	}
	if n := d.NumSeries(); n != 4 { // up{job=a}, up{job=b} in default and team-b, temp
		t.Errorf("series = %d, want 4", n)
	}
	for reason, want := range map[string]float64{"ok": 5, reasonUnknownFormat: 1, reasonBadSnappy: 1, reasonBadJSON: 1} {
		if got := counterValue(m.records.WithLabelValues(reason)); got != want {
			t.Errorf("records_total{outcome=%q} = %v, want %v", reason, got, want)
		}
	}
	if got := counterValue(m.samples.WithLabelValues("out_of_order")); got != 0 {
		t.Errorf("out_of_order = %v", got)
	}
	if got := counterValue(m.deadLettered); got != 3 {
		t.Errorf("dead-lettered = %v, want 3", got)
	}
}

func TestProducerConsumerRoundTrip(t *testing.T) {
	cl := newCluster(t, 4, "samples")
	cfg := testConfig(cl, "samples")
	cfg.State.Topic = ""
	cfg.Producer.Topic = "samples"
	pm := NewMetrics(nil)
	p, err := NewProducer(cfg, ProducerOptions{Metrics: pm})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	const series, steps = 50, 20
	t0 := time.Now().Add(-time.Hour).UnixMilli()
	for step := range steps {
		b := p.Begin()
		for s := range series {
			ls := detector.FromStrings("__name__", "m", "i", fmt.Sprint(s))
			b.Append("t1", ls, []detector.Sample{{TimestampMs: t0 + int64(step)*1000, Value: float64(step % 5)}})
		}
		if err := b.Commit(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if got := counterValue(pm.producedSamples); got != series*steps {
		t.Fatalf("produced samples = %v", got)
	}

	d := newTestDetector(t, nil)
	tgt := newCountingTarget(d)
	m := NewMetrics(nil)
	_, stop := startConsumer(t, cfg, tgt, m)
	defer stop()
	waitFor(t, 10*time.Second, "all samples", func() bool {
		return counterValue(m.samples.WithLabelValues("accepted")) == series*steps
	})
	if got := counterValue(m.samples.WithLabelValues("out_of_order")); got != 0 {
		t.Errorf("out_of_order = %v: a series was split over partitions or reordered", got)
	}
	if got := counterValue(m.samples.WithLabelValues("accepted")); got != series*steps {
		t.Errorf("accepted = %v, want %d", got, series*steps)
	}
}

func TestProducerUnavailable(t *testing.T) {
	cl := newCluster(t, 1, "samples")
	cfg := testConfig(cl, "samples")
	cfg.Producer.Topic = "samples"
	cfg.Producer.Timeout.Set("300ms")
	p, err := NewProducer(cfg, ProducerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	cl.Close()
	b := p.Begin()
	b.Append("t", detector.FromStrings("__name__", "x"), []detector.Sample{{TimestampMs: 1, Value: 1}})
	if err := b.Commit(context.Background()); err == nil {
		t.Fatal("Commit succeeded with the cluster down")
	}
}

// TestConsumerScoresEverySampleWhenCatchingUp puts a backlog on the topic
// before the consumer starts, so each polled batch holds many samples of the
// same series, and checks that every sample past warm-up is scored, not only
// the first of each series per batch.
func TestConsumerScoresEverySampleWhenCatchingUp(t *testing.T) {
	cl := newCluster(t, 1, "rw")
	cfg := testConfig(cl, "rw")
	cfg.State.Topic = ""
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second).UnixMilli()
	const series, steps = 5, 40
	var recs []*kgo.Record
	for step := range steps {
		for i := range series {
			ls := detector.FromStrings("__name__", "backlog", "i", string(rune('a'+i)))
			v, _ := EncodeSeriesV1(ls, []detector.Sample{{TimestampMs: t0 + int64(step)*1000, Value: float64(step % 7)}}, nil)
			recs = append(recs, &kgo.Record{Topic: "rw", Value: v})
		}
	}
	// One record carrying several samples of one series is split too.
	multi, _ := EncodeSeriesV1(detector.FromStrings("__name__", "backlog", "i", "a"), []detector.Sample{
		{TimestampMs: t0 + steps*1000, Value: 1}, {TimestampMs: t0 + (steps+1)*1000, Value: 2}, {TimestampMs: t0 + (steps+2)*1000, Value: 3},
	}, nil)
	recs = append(recs, &kgo.Record{Topic: "rw", Value: multi})
	produce(t, cl, recs...)

	reg := prometheus.NewRegistry()
	det := newTestDetector(t, reg)
	target := newCountingTarget(det)
	_, stop := startConsumer(t, cfg, target, NewMetrics(nil))
	defer stop()
	waitFor(t, 20*time.Second, "the backlog to be consumed", func() bool { return target.samples() == series*steps+3 })
	unscored := metrictest.Value(t, reg, "sentinel_mesh_samples_unscored_total", "reason", "inference_lag")
	require.Zero(t, unscored, "every sample after the first full window is scored")
	// Window 8: samples 9.. of each series are scored, the first of them as
	// warm-up.
	warmup := metrictest.Value(t, reg, "sentinel_mesh_samples_unscored_total", "reason", "warmup")
	require.Equal(t, float64(series*(steps-8)+3), metrictest.Value(t, reg, "sentinel_mesh_samples_scored_total")+warmup)
}
