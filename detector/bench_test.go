package detector

import "testing"

func BenchmarkHashSeries(b *testing.B) {
	ls := FromStrings("__name__", "http_requests_total", "cluster", "prod-eu-1", "container", "api", "env", "prod", "instance", "10.1.2.3:8080", "job", "api", "namespace", "shop", "pod", "api-7d9f8b6c5-x2k4p")
	b.ReportAllocs()
	for b.Loop() {
		_ = hashSeries("tenant-a", ls)
	}
}

// BenchmarkAppend routes one sample of an existing series into its window:
// the per-sample cost of the detector on the ingest path (no inference).
func BenchmarkAppend(b *testing.B) {
	d, err := New(DefaultConfig, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	d.SetModel(WindowMeanModel{W: 32})
	ls := FromStrings("__name__", "http_requests_total", "cluster", "prod-eu-1", "instance", "10.1.2.3:8080", "job", "api", "namespace", "shop", "pod", "api-7d9f8b6c5-x2k4p")
	smp := []Sample{{}}
	b.ReportAllocs()
	ts := int64(0)
	for b.Loop() {
		ts++
		smp[0] = Sample{TimestampMs: ts, Value: float64(ts % 7)}
		d.Append("tenant-a", ls, smp)
	}
}
