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

// BenchmarkObserve scores one sample of a calm series (calibration only, no
// model), with the default scoring and without the daily-profile term.
func BenchmarkObserve(b *testing.B) {
	noDaily := DefaultScoringConfig
	noDaily.DailyProfileRatio = 0
	for _, bc := range []struct {
		name string
		cfg  ScoringConfig
	}{
		{"default", DefaultScoringConfig},
		{"daily_profile_off", noDaily},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := bc.cfg
			var c calibration
			const step = 15000
			ts := int64(1_790_000_000_000)
			for i := range 20000 {
				c.observe(&cfg, 0.5+0.1*float64(i%7), 100+float64(i%13), ts, step, true)
				ts += step
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				c.observe(&cfg, 0.5+0.1*float64(i%7), 100+float64(i%13), ts, step, true)
				ts += step
			}
		})
	}
}
