package detector

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

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
	const step = 15000
	flat := func(i int, _ int64) float64 { return 100 + float64(i%13) }
	// A daily sine with a little wobble: the series has a daily cycle, so
	// the seasonal terms (and the transition lookups) run on every sample.
	daily := func(i int, ts int64) float64 {
		return 100 + 50*math.Sin(2*math.Pi*float64(ts%86400_000)/86400_000) + float64(i%13)
	}
	for _, bc := range []struct {
		name  string
		cfg   ScoringConfig
		value func(int, int64) float64
		warm  int  // samples before the timer: two days for a cycle
		cycle bool // the series has a daily cycle once warm
	}{
		{"default", DefaultScoringConfig, flat, 20000, false},
		{"daily_profile_off", noDaily, flat, 20000, false},
		{"daily_cycle", DefaultScoringConfig, daily, 2 * 86400_000 / step, true},
		{"daily_cycle_transition_off", func() ScoringConfig { c := DefaultScoringConfig; c.TransitionSpread = 0; return c }(), daily, 2 * 86400_000 / step, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := bc.cfg
			var c calibration
			ts := int64(1_790_000_000_000)
			for i := range bc.warm {
				c.observe(&cfg, 0.5+0.1*float64(i%7), bc.value(i, ts), ts, step, true)
				ts += step
			}
			require.Equal(b, bc.cycle, c.daily.cycle, "the series has a daily cycle")
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				c.observe(&cfg, 0.5+0.1*float64(i%7), bc.value(i, ts), ts, step, true)
				ts += step
			}
		})
	}
}

// BenchmarkAppendLagging is the receive path of the blast test with catch-up
// scoring on: requests of 2,000 series × 1 sample, from 4 senders of their
// own 2,000 series, into series that all wait for a prediction, so every
// sample goes into its series' backlog (no inference runs); catch_up_off
// is the same with catch-up off (every sample enters its window unscored). One op is one
// request; off the clock, staged samples move into their backlogs after
// each round of the 4 senders (as an inference pass does, on its own
// thread; catch_up_with_unstage times that too), and the detector is
// rebuilt every 1,000 samples per series (the blast's run length).
func BenchmarkAppendLagging(b *testing.B) {
	b.Run("catch_up", func(b *testing.B) { benchAppendLagging(b, DefaultCatchUpConfig, false) })
	b.Run("catch_up_with_unstage", func(b *testing.B) { benchAppendLagging(b, DefaultCatchUpConfig, true) })
	b.Run("catch_up_off", func(b *testing.B) { benchAppendLagging(b, CatchUpConfig{}, false) })
}

func benchAppendLagging(b *testing.B, cu CatchUpConfig, timeUnstage bool) {
	const senders, perReq, rounds = 4, 2000, 1000
	lbls := make([][]Labels, senders)
	for g := range lbls {
		lbls[g] = make([]Labels, perReq)
		for i := range perReq {
			lbls[g][i] = FromStrings("__name__", "http_requests_total", "cluster", "prod-eu-1", "container", "api",
				"env", "prod", "instance", fmt.Sprintf("10.1.%d.%d:8080", g, i), "job", "api", "namespace", "shop",
				"pod", fmt.Sprintf("api-7d9f8b6c5-%d-%d", g, i))
		}
	}
	var d *Detector
	ts := int64(0)
	reset := func() {
		cfg := DefaultConfig
		cfg.CatchUp = cu
		var err error
		d, err = New(cfg, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		d.SetModel(WindowMeanModel{W: 32})
		// Fill every window: each series is queued for inference, so the
		// next sample waits for its prediction.
		for ts = 1; ts <= 32; ts++ {
			bt := d.Begin()
			for g := range lbls {
				for _, l := range lbls[g] {
					bt.Append("", l, []Sample{{TimestampMs: ts * 1000, Value: float64(ts % 7)}})
				}
			}
			_ = bt.Commit(context.Background())
		}
	}
	reset()
	smp := []Sample{{}}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		g := i % senders
		if g == 0 && i > 0 {
			ts++
			if ts > 32+rounds {
				b.StopTimer()
				reset()
				ts++
				b.StartTimer()
			}
			// What an inference pass does to the backlogs before it
			// predicts (on its own thread in the server).
			if !timeUnstage {
				b.StopTimer()
			}
			for j := range d.shards {
				d.shards[j].unstage()
			}
			if !timeUnstage {
				b.StartTimer()
			}
		}
		i++
		bt := d.Begin()
		for _, l := range lbls[g] {
			smp[0] = Sample{TimestampMs: ts * 1000, Value: float64(ts % 7)}
			bt.Append("", l, smp)
		}
		_ = bt.Commit(context.Background())
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*perReq), "ns/sample")
}

// BenchmarkAppendRequest routes requests of 2,000 series × 1 sample from
// concurrent senders into 8,000 series, as a remote-write blast does:
// one Append per series against one AppendMany per request. Per sample.
func BenchmarkAppendRequest(b *testing.B) {
	const perRequest, senders = 2000, 4
	for _, many := range []bool{false, true} {
		name := "per_series"
		if many {
			name = "many"
		}
		b.Run(name, func(b *testing.B) {
			cfg := DefaultConfig
			cfg.CatchUp.MaxSamplesPerSeries = 0 // routing only, no backlogs
			d, err := New(cfg, nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			// No model: samples fill windows, nothing is scored.
			var sender atomic.Int64
			b.ReportAllocs()
			b.SetParallelism(senders / 2) // 4 senders on 2 cores
			b.RunParallel(func(pb *testing.PB) {
				id := sender.Add(1) % senders
				req := make([]SeriesSamples, perRequest)
				for i := range req {
					req[i] = SeriesSamples{
						Labels:  FromStrings("__name__", "http_requests_total", "instance", "10.1.2.3:8080", "job", "api", "pod", "api-"+strconv.Itoa(int(id)*perRequest+i)),
						Samples: make([]Sample, 1),
					}
				}
				ts := int64(0)
				for pb.Next() {
					ts += 1000
					for i := range req {
						req[i].Samples[0] = Sample{TimestampMs: ts, Value: float64(i % 7)}
					}
					bt := d.Begin()
					if many {
						bt.(ManyAppender).AppendMany("", req)
					} else {
						for i := range req {
							bt.Append("", req[i].Labels, req[i].Samples)
						}
					}
					_ = bt.Commit(context.Background())
				}
			})
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*perRequest), "ns/sample")
		})
	}
}

// BenchmarkResults walks the latest result of 10,000 series and reads each
// one's labels, as a /metrics scrape and the remote-write output do. Per
// series.
func BenchmarkResults(b *testing.B) {
	const n = 10_000
	d, err := New(DefaultConfig, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	d.SetModel(WindowMeanModel{W: 16})
	smp := make([]Sample, 1)
	for ts := int64(1); ts <= 20; ts++ {
		for i := range n {
			smp[0] = Sample{TimestampMs: ts * 15_000, Value: float64((int(ts) + i) % 7)}
			d.Append("", FromStrings("__name__", "http_requests_total", "instance", "10.1.2.3:8080", "job", "api", "pod", "api-"+strconv.Itoa(i)), smp)
		}
		if err := d.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	var sum int
	for range b.N {
		d.Results(func(r *Result) bool {
			sum += len(r.Labels.Get("pod"))
			return true
		})
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/series")
	if sum == 0 {
		b.Fatal("no results")
	}
}

// BenchmarkLabelsEqual compares an incoming label set of five labels with a
// series' stored labels, as every appended series is looked up: the
// series' label string against the two slices it replaced.
func BenchmarkLabelsEqual(b *testing.B) {
	in := FromStrings("__name__", "http_requests_total", "instance", "10.1.2.3:8080", "job", "api", "pod", "api-1234")
	stored := in.Clone()
	enc := encodeLabels(in)
	b.Run("label_string", func(b *testing.B) {
		for range b.N {
			if !enc.equal(in) {
				b.Fatal("not equal")
			}
		}
	})
	b.Run("slices", func(b *testing.B) {
		for range b.N {
			if !slices.Equal(stored, in) {
				b.Fatal("not equal")
			}
		}
	})
}

// BenchmarkBounds is the band of one scored sample (anomaly_lower and
// anomaly_upper), with the in-range error excess (default) and with a hard
// cap, whose band needs no in-range edge.
func BenchmarkBounds(b *testing.B) {
	hard := DefaultScoringConfig
	hard.InRangeErrorExcess = 0
	for _, bc := range []struct {
		name string
		cfg  ScoringConfig
	}{{"default", DefaultScoringConfig}, {"hard_cap", hard}} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := bc.cfg
			z := cfg.bandZ()
			var c calibration
			const step = 15000
			ts := int64(1_790_000_000_000)
			for i := range 20000 {
				c.observe(&cfg, 0.5+0.1*float64(i%7), 100+float64(i%13), ts, step, true)
				ts += step
			}
			b.ReportAllocs()
			b.ResetTimer()
			var sink float64
			for i := range b.N {
				lo, hi := c.bounds(&cfg, &z, 100+float64(i%13), 2)
				sink += hi - lo
			}
			require.Greater(b, sink, 0.0)
		})
	}
}
