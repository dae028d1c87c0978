package detector

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/sentinel-mesh/sentinel-mesh/internal/metrictest"
)

// calmWithSpike is n samples 15 s apart of a noisy level with one spike at
// index spike.
func calmWithSpike(n, spike int, seed uint64) []Sample {
	rng := rand.New(rand.NewPCG(seed, seed+1))
	out := make([]Sample, n)
	for i := range out {
		v := 100 + rng.NormFloat64()
		if i == spike {
			v += 60
		}
		out[i] = Sample{TimestampMs: int64(i+1) * 15000, Value: v}
	}
	return out
}

// runUntilDrained runs the scheduler until no window is pending and no
// sample waits in a backlog, then stops it.
func runUntilDrained(t *testing.T, d *Detector) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	require.Eventually(t, func() bool {
		if d.catchingUp() {
			return false
		}
		for i := range d.shards {
			sh := &d.shards[i]
			sh.mu.Lock()
			n := len(sh.pending)
			sh.mu.Unlock()
			if n > 0 {
				return false
			}
		}
		return true
	}, 30*time.Second, 5*time.Millisecond)
	cancel()
	require.NoError(t, <-done)
	require.NoError(t, d.Flush()) // the last window, so every count is final
}

type scoreTally struct{ scored, warmup, lag float64 }

func tally(t *testing.T, reg *prometheus.Registry) scoreTally {
	t.Helper()
	return scoreTally{
		scored: metrictest.Value(t, reg, "sentinel_mesh_samples_scored_total"),
		warmup: metrictest.Value(t, reg, "sentinel_mesh_samples_unscored_total", "reason", "warmup"),
		lag:    metrictest.Value(t, reg, "sentinel_mesh_samples_unscored_total", "reason", "inference_lag"),
	}
}

// Samples of one series appended back to back, far faster than one
// inference per sample, are scored in order, every one, through the
// backlog; beyond its bound they enter the window unscored and are counted.
func TestCatchUpScoresEverySampleInOrder(t *testing.T) {
	const n, spike, w = 3000, 2500, 16
	tests := []struct {
		name      string
		catchUp   CatchUpConfig
		wantLag   bool // some samples left unscored
		wantSpike bool // the anomaly opens at the spike
	}{
		{name: "default bound", catchUp: DefaultCatchUpConfig, wantSpike: true},
		{name: "per-series bound below the burst", catchUp: CatchUpConfig{MaxSamplesPerSeries: 100, MaxSamples: 1 << 20}, wantLag: true},
		{name: "total bound below the burst", catchUp: CatchUpConfig{MaxSamplesPerSeries: 8192, MaxSamples: 50}, wantLag: true},
		{name: "off", catchUp: CatchUpConfig{}, wantLag: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sink := &recordingSink{}
			d, reg := newTestDetector(t, func(c *Config) {
				c.CatchUp = tc.catchUp
				c.BatchInterval = model.Duration(time.Millisecond)
			}, sink)
			d.EnableResultLog(numShards * n)
			ls := lbls("__name__", "requests", "job", "api")
			samples := calmWithSpike(n, spike, 7)
			// Requests of 500 samples, as a sender catching up sends them.
			for i := 0; i < n; i += 500 {
				st := d.Append("", ls, samples[i:i+500])
				require.Equal(t, 500, st.Accepted)
			}
			runUntilDrained(t, d)

			got := tally(t, reg)
			// Every accepted sample after the first window is scored, in
			// warm-up, or counted as left unscored: none goes missing.
			require.Equal(t, float64(n-w), got.scored+got.warmup+got.lag, "%+v", got)
			require.Equal(t, tc.wantLag, got.lag > 0, "%+v", got)
			require.Zero(t, metrictest.RequireValue(t, reg, "sentinel_mesh_catch_up_backlog_samples"))

			var ts []int64
			d.ResultsSince(func(uint64) int64 { return 0 }, func(_ uint64, r *Result) bool {
				ts = append(ts, r.TimestampMs)
				return true
			})
			require.Len(t, ts, int(got.scored+got.warmup))
			for i := 1; i < len(ts); i++ {
				require.Less(t, ts[i-1], ts[i], "results in sample order")
			}

			var opens []int64
			for _, ev := range sink.events {
				if ev.Kind == EventOpen {
					opens = append(opens, ev.TimestampMs)
				}
			}
			if tc.wantSpike {
				require.Equal(t, []int64{samples[spike].TimestampMs}, opens)
			}
		})
	}
}

// With catch-up off (max_samples_per_series: 0) a sample that arrives
// while its window waits for a prediction enters the window unscored at
// once: no backlog is made, so Run does not infer back to back for it (a
// one-sample backlog per lagging series did, and cost the remote-write
// blast a third of its throughput).
func TestCatchUpOffQueuesNothing(t *testing.T) {
	const w = 16
	// Only the per-series bound is 0, as a config file turning catch-up
	// off has it: the total bound keeps its default.
	d, reg := newTestDetector(t, func(c *Config) { c.CatchUp.MaxSamplesPerSeries = 0 })
	ls := lbls("__name__", "up")
	samples := calmWithSpike(w+3, -1, 5)
	for i, smp := range samples {
		require.Equal(t, 1, d.Append("", ls, []Sample{smp}).Accepted)
		require.False(t, d.catchingUp(), "backlog after sample %d", i)
	}
	require.Zero(t, metrictest.RequireValue(t, reg, "sentinel_mesh_catch_up_backlog_samples"))
	require.Equal(t, scoreTally{lag: 3}, tally(t, reg), "the samples after the window came before its prediction")
}

// A stale marker queued behind backlogged samples ends the run in order:
// the samples before it are scored against the old window, the ones after
// it fill a new one.
func TestCatchUpStaleMarkerInBacklog(t *testing.T) {
	const w = 16
	d, reg := newTestDetector(t, nil)
	ls := lbls("__name__", "up")
	first := calmWithSpike(200, -1, 3)
	second := calmWithSpike(300, -1, 4)
	for i := range second {
		second[i].TimestampMs += 200*15000 + 60000
	}
	batch := append(append(append([]Sample{}, first...), Sample{TimestampMs: first[199].TimestampMs + 1, Value: math.Float64frombits(staleNaN)}), second...)
	st := d.Append("", ls, batch)
	require.Equal(t, AppendStats{Accepted: 500, Stale: 1}, st)
	runUntilDrained(t, d)
	got := tally(t, reg)
	require.Equal(t, scoreTally{scored: got.scored, warmup: got.warmup}, got, "nothing left unscored")
	require.Equal(t, float64(200-w+300-w), got.scored+got.warmup)
}

// Samples older than the newest one waiting in the backlog are out of
// order, as they would be against the window.
func TestCatchUpOrderAgainstBacklog(t *testing.T) {
	d, _ := newTestDetector(t, nil)
	ls := lbls("__name__", "up")
	samples := calmWithSpike(100, -1, 5)
	require.Equal(t, 100, d.Append("", ls, samples).Accepted)
	require.True(t, d.catchingUp(), "a burst of 100 samples waits for predictions")
	st := d.Append("", ls, []Sample{samples[50], samples[99], {TimestampMs: samples[99].TimestampMs + 15000, Value: 1}})
	require.Equal(t, AppendStats{Accepted: 1, OutOfOrder: 2}, st)
	runUntilDrained(t, d)
}

type seriesLimits map[string]int

func (l seriesLimits) SeriesLimit(tenant string) int { return l[tenant] }

// A tenant at its series limit is refused new series; other tenants are
// not, and an expired series frees its place.
func TestTenantSeriesLimit(t *testing.T) {
	d, reg := newTestDetector(t, func(c *Config) {
		c.MaxSeries = 10
		c.TenantLimits = seriesLimits{"noisy": 3}
	})
	smp := []Sample{{TimestampMs: 1000, Value: 1}}
	var refused AppendStats
	for i := range 8 {
		refused.Add(d.Append("noisy", lbls("__name__", "x", "i", string(rune('a'+i))), smp))
	}
	require.Equal(t, AppendStats{Accepted: 3, TenantSeriesCap: 5}, refused)
	for i := range 5 {
		st := d.Append("quiet", lbls("__name__", "x", "i", string(rune('a'+i))), smp)
		require.Equal(t, AppendStats{Accepted: 1}, st)
	}
	require.Equal(t, 5.0, testutil.ToFloat64(d.tm.dropped.WithLabelValues("noisy", "series_limit")))
	require.Equal(t, 5.0, metrictest.Value(t, reg, "sentinel_mesh_samples_dropped_total", "reason", "tenant_series_limit"))

	series := map[string]float64{}
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == "sentinel_mesh_tenant_series" {
			for _, m := range mf.GetMetric() {
				series[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
			}
		}
	}
	require.Empty(t, cmp.Diff(map[string]float64{"noisy": 3, "quiet": 5}, series))

	// Idle series expire; the tenant may then create new ones.
	d.Expire(time.Now().Add(time.Hour))
	require.Equal(t, AppendStats{Accepted: 1}, d.Append("noisy", lbls("__name__", "y"), smp))
}

// Appends from many goroutines while the scheduler catches up, for the
// race detector.
func TestCatchUpConcurrentAppends(t *testing.T) {
	d, reg := newTestDetector(t, func(c *Config) { c.BatchInterval = model.Duration(time.Millisecond) })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			ls := lbls("__name__", "x", "g", string(rune('a'+g)))
			samples := calmWithSpike(1000, -1, uint64(g))
			for i := 0; i < len(samples); i += 100 {
				d.Append("", ls, samples[i:i+100])
			}
		})
	}
	wg.Wait()
	cancel()
	require.NoError(t, <-done)
	runUntilDrained(t, d)
	got := tally(t, reg)
	require.Equal(t, float64(4*(1000-16)), got.scored+got.warmup+got.lag)
	require.Zero(t, got.lag)
}

// Many series of a request lag at once: their samples are staged in their
// shards' logs in arrival order, the slots a batch reserved and did not use
// go back at Commit (the backlog gauge counts queued samples exactly), a
// series that overflows its bound while others of its shard are staged
// skips only its own, and the rest are scored in order.
func TestCatchUpStagedAcrossSeries(t *testing.T) {
	const w, series, burst = 16, 600, 40
	d, reg := newTestDetector(t, func(c *Config) {
		c.CatchUp = CatchUpConfig{MaxSamplesPerSeries: 30, MaxSamples: 1 << 20}
		c.BatchInterval = model.Duration(time.Millisecond)
	})
	ls := make([]Labels, series)
	for i := range ls {
		ls[i] = lbls("__name__", "x", "i", fmt.Sprint(i))
	}
	// Even series: 25 samples after their window, under the bound; odd
	// ones: 40, over it. One sample per series per request, as the blast.
	samples := calmWithSpike(w+burst, -1, 9)
	for k := range samples {
		b := d.Begin()
		for i, l := range ls {
			if i%2 == 0 && k >= w+25 {
				continue
			}
			b.Append("", l, samples[k:k+1])
		}
		require.NoError(t, b.Commit(context.Background()))
	}
	// Queued: every even series' 25, none of the odd ones' (they overflowed
	// at their 31st and skipped ahead; the later ones queue again behind
	// the prediction the skip asked for).
	queued := metrictest.RequireValue(t, reg, "sentinel_mesh_catch_up_backlog_samples")
	require.Equal(t, float64(series/2*25+series/2*(burst-31)), queued)
	runUntilDrained(t, d)
	got := tally(t, reg)
	require.Equal(t, float64(series/2*25+series/2*burst), got.scored+got.warmup+got.lag, "%+v", got)
	require.Equal(t, float64(series/2*31), got.lag, "the odd series' backlog and overflowing sample")
	require.Zero(t, metrictest.RequireValue(t, reg, "sentinel_mesh_catch_up_backlog_samples"))
}
