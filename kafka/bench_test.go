package kafka

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
	"github.com/sentinel-mesh/sentinel-mesh/remotewrite"
)

// BenchmarkDecode measures consumer decode throughput per core for one
// sample per record: the producer's remote-write payload vs the
// prometheus-kafka-adapter JSON. Reported as samples/s.
func BenchmarkDecode(b *testing.B) {
	cfg := DefaultConfig()
	ls := detector.FromStrings("__name__", "node_cpu_seconds_total", "cpu", "3", "instance", "host-17:9100", "job", "node", "mode", "idle")
	ts := time.Now()
	rw, _ := EncodeSeriesV1(ls, []detector.Sample{{TimestampMs: ts.UnixMilli(), Value: 1234.5}}, nil)
	js := fmt.Appendf(nil, `{"timestamp":%q,"value":"1234.5","name":"node_cpu_seconds_total","labels":{"__name__":"node_cpu_seconds_total","cpu":"3","instance":"host-17:9100","job":"node","mode":"idle"}}`, ts.UTC().Format(time.RFC3339))
	for _, tc := range []struct {
		name, format string
		value        []byte
	}{{"remote_write_v1", FormatRemoteWriteV1, rw}, {"adapter_json", FormatJSON, js}} {
		b.Run(tc.name, func(b *testing.B) {
			cfg.Consumer.Format = tc.format
			d := NewDecoder(&cfg, remotewrite.DefaultConfig().DecodeLimits(), 0)
			rec := &kgo.Record{Topic: "t", Value: tc.value}
			n := 0
			fn := func(string, detector.Labels, []detector.Sample, detector.MetricType) { n++ }
			b.ReportAllocs()
			b.SetBytes(int64(len(tc.value)))
			for b.Loop() {
				if _, err := d.Decode(rec, fn); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}
