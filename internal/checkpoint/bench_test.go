package checkpoint

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
)

// warmState is the state of a warm series with every part present (value
// statistics, tails, daily profile): the largest record a series writes.
func warmState(rng *rand.Rand, i int) detector.SeriesState {
	f := func() float32 { return rng.Float32() * 100 }
	st := detector.SeriesState{
		Tenant: "default",
		Labels: detector.FromStrings("__name__", "http_requests_total", "instance", fmt.Sprintf("10.0.%d.%d:9100", i/65536, i%65536),
			"job", "api", "method", "GET", "namespace", "prod", "status", "200"),
		LastTs: 1_700_000_000_000 + int64(i), CalN: 5000, CalErrMean: f(), CalErrVar: f(), CalShortErr: f(),
		CalVN: 5000, CalValMean: f(), CalValVar: f(), CalValShort: f(), CalVarShort: f(), CalVarLow: f(),
		CalValMax: f(), CalValMin: f(), CalResN: 5000, CalResMean: f(), CalResVar: f(), CalResShort: f(),
		CalProfileVisited: 1<<24 - 1, CalProfileStart: 1_699_000_000, CalIntervalMs: 15000, CalCycle: true,
		Value: 1, Score: 0.1, Expected: 1, Lower: 0, Upper: 2, ScoredTs: 1_700_000_000_000 + int64(i),
	}
	for range 32 {
		st.Window = append(st.Window, 1000+rng.Float64()*10)
	}
	for _, a := range []*[17]float32{&st.CalErrTail, &st.CalLvlTail, &st.CalResTail, &st.CalPointTail} {
		for j := range a {
			a[j] = rng.Float32()
		}
	}
	for j := range st.CalProfile {
		st.CalProfile[j], st.CalProfileVar[j] = f(), f()
	}
	return st
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestCheckpointCost measures a checkpoint and a restore of
// CHECKPOINT_BENCH_SERIES series (docs/benchmarks.md):
//
//	CHECKPOINT_BENCH_SERIES=1000000 go test -run TestCheckpointCost -v -timeout 30m ./internal/checkpoint/
//
// It also appends samples to random series from another goroutine during
// the checkpoint and reports the slowest append, which shows whether the
// snapshot stalls ingest. Without the variable it runs at 20,000 series.
func TestCheckpointCost(t *testing.T) {
	n := 20_000
	if s := os.Getenv("CHECKPOINT_BENCH_SERIES"); s != "" {
		_, err := fmt.Sscan(s, &n)
		require.NoError(t, err)
	}
	cfg := detector.DefaultConfig
	cfg.MaxSeries = n + 1
	d, err := detector.New(cfg, slog.New(slog.DiscardHandler), nil)
	require.NoError(t, err)
	d.SetModel(detector.WindowMeanModel{W: 32})
	rng := rand.New(rand.NewPCG(1, 1))
	states := make([]detector.SeriesState, 0, 1024)
	for i := range n {
		states = append(states, warmState(rng, i))
		if len(states) == cap(states) || i == n-1 {
			for _, st := range states {
				require.True(t, d.ImportState(st))
			}
			states = states[:0]
		}
	}
	require.NoError(t, d.Flush())

	dir := t.TempDir()
	m, err := New(Config{Path: dir, Interval: time.Hour}, d, slog.New(slog.DiscardHandler), nil)
	require.NoError(t, err)

	// Ingest during the checkpoint: one sample at a time to random series,
	// timing each Append.
	var (
		stop      atomic.Bool
		wg        sync.WaitGroup
		latencies []time.Duration
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		r := rand.New(rand.NewPCG(2, 2))
		ls := make([]detector.Labels, 1000)
		for i := range ls {
			ls[i] = warmState(r, r.IntN(n)).Labels
		}
		ts := int64(1_800_000_000_000)
		for !stop.Load() {
			start := time.Now()
			d.Append("default", ls[r.IntN(len(ls))], []detector.Sample{{TimestampMs: ts, Value: 1000}})
			latencies = append(latencies, time.Since(start))
			ts++
			time.Sleep(100 * time.Microsecond)
		}
	}()
	if path := os.Getenv("CHECKPOINT_BENCH_PROFILE"); path != "" {
		f, err := os.Create(path)
		require.NoError(t, err)
		require.NoError(t, pprof.StartCPUProfile(f))
		defer f.Close()
	}
	// The garbage of building the fleet is not the checkpoint's to collect.
	runtime.GC()
	cpu0 := cpuTime()
	st, err := m.Checkpoint()
	cpu := cpuTime() - cpu0
	pprof.StopCPUProfile()
	stop.Store(true)
	wg.Wait()
	require.NoError(t, err)
	require.Equal(t, n, st.Series)
	slices.Sort(latencies)
	p := func(q float64) time.Duration { return latencies[int(q*float64(len(latencies)-1))] }

	d2, err := detector.New(cfg, slog.New(slog.DiscardHandler), nil)
	require.NoError(t, err)
	d2.SetModel(detector.WindowMeanModel{W: 32})
	m2, err := New(Config{Path: dir, Interval: time.Hour}, d2, slog.New(slog.DiscardHandler), nil)
	require.NoError(t, err)
	cpu0 = cpuTime()
	rs, err := m2.Restore()
	rcpu := cpuTime() - cpu0
	require.NoError(t, err)
	require.Equal(t, n, rs.Restored)
	fi, err := os.Stat(filepath.Join(dir, FileName))
	require.NoError(t, err)

	t.Logf("series %d: checkpoint wall %s, CPU %s (both cores of the process, incl. the ingest goroutine), %d bytes = %.0f B/series",
		n, st.Duration.Round(time.Millisecond), cpu.Round(time.Millisecond), fi.Size(), float64(fi.Size())/float64(n))
	t.Logf("appends during the checkpoint: %d, p50 %s, p99 %s, max %s", len(latencies), p(0.5), p(0.99), p(1))
	t.Logf("restore wall %s, CPU %s", rs.Duration.Round(time.Millisecond), rcpu.Round(time.Millisecond))
}
