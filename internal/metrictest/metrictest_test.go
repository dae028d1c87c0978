package metrictest

import (
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// fatalRecorder is a testing.TB whose Fatalf records the failure and ends
// the calling goroutine, as testing.T's does, so that a failing call can be
// observed instead of failing this test.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Helper() {}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// run calls f with a fatalRecorder on a new goroutine; it returns f's value
// and the Fatalf message ("" if f returned normally).
func run(t *testing.T, f func(testing.TB) float64) (float64, string) {
	r := &fatalRecorder{TB: t}
	var got float64
	var wg sync.WaitGroup
	wg.Go(func() { got = f(r) })
	wg.Wait()
	return got, r.msg
}

func TestValue(t *testing.T) {
	reg := prometheus.NewRegistry()
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "requests_total", Help: "h"}, []string{"version", "code"})
	requests.WithLabelValues("1", "204").Add(3)
	requests.WithLabelValues("2", "204").Add(4)
	requests.WithLabelValues("2", "400").Add(1)
	queued := prometheus.NewGauge(prometheus.GaugeOpts{Name: "queued", Help: "h"})
	queued.Set(2.5)
	tenants := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tenant_series", Help: "h"}, []string{"tenant"})
	tenants.WithLabelValues("a").Set(5)
	tenants.WithLabelValues("b").Set(7)
	neverIncremented := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dropped_total", Help: "h"}, []string{"reason"})
	durations := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "duration_seconds", Help: "h"})
	durations.Observe(1)
	reg.MustRegister(requests, queued, tenants, neverIncremented, durations,
		prometheus.NewUntypedFunc(prometheus.UntypedOpts{Name: "legacy", Help: "h"}, func() float64 { return 9 }))

	for _, tc := range []struct {
		name    string
		metric  string
		kv      []string
		want    float64
		wantErr string // Value's failure, "" if none
		// RequireValue's failure; it differs from wantErr only when no
		// series matches.
		wantRequireErr string
	}{
		{name: "counter, all labels", metric: "requests_total", kv: []string{"version", "1", "code", "204"}, want: 3},
		{name: "counter, label subset", metric: "requests_total", kv: []string{"code", "400"}, want: 1},
		{name: "counter, label order free", metric: "requests_total", kv: []string{"code", "204", "version", "2"}, want: 4},
		{name: "counter, subset summed over series", metric: "requests_total", kv: []string{"code", "204"}, want: 7},
		{name: "counter, no labels sums all", metric: "requests_total", want: 8},
		{name: "gauge", metric: "queued", want: 2.5},
		{name: "gauge vec, one series", metric: "tenant_series", kv: []string{"tenant", "b"}, want: 7},
		{name: "gauge vec, summed", metric: "tenant_series", want: 12},
		{name: "untyped", metric: "legacy", want: 9},
		{name: "no series matches", metric: "requests_total", kv: []string{"code", "503"}, want: 0,
			wantRequireErr: `no series of metric requests_total with labels ["code" "503"]`},
		{name: "label the metric lacks", metric: "queued", kv: []string{"tenant", "a"}, want: 0,
			wantRequireErr: `no series of metric queued with labels ["tenant" "a"]`},
		{name: "vector never incremented", metric: "dropped_total", want: 0,
			wantRequireErr: `no series of metric dropped_total with labels []`},
		{name: "absent metric", metric: "nope_total", want: 0,
			wantRequireErr: `no series of metric nope_total with labels []`},
		{name: "histogram", metric: "duration_seconds",
			wantErr: "metric duration_seconds is a HISTOGRAM, not a counter, gauge or untyped metric"},
		{name: "odd label arguments", metric: "requests_total", kv: []string{"code"},
			wantErr: `metric requests_total: odd number of label name/value arguments ["code"]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, msg := run(t, func(tb testing.TB) float64 { return Value(tb, reg, tc.metric, tc.kv...) })
			require.Equal(t, tc.wantErr, msg)
			require.Equal(t, tc.want, got)

			wantRequireErr := tc.wantErr
			if tc.wantRequireErr != "" {
				wantRequireErr = tc.wantRequireErr
			}
			got, msg = run(t, func(tb testing.TB) float64 { return RequireValue(tb, reg, tc.metric, tc.kv...) })
			require.Equal(t, wantRequireErr, msg)
			if wantRequireErr == "" {
				require.Equal(t, tc.want, got)
			}
		})
	}
}

// A gather error fails the test rather than reading as 0.
func TestValueGatherError(t *testing.T) {
	reg := prometheus.NewRegistry()
	// Two series with the same labels make Gather fail.
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "dup", Help: "h", ConstLabels: prometheus.Labels{"a": "1"}}, func() float64 { return 1 }))
	g := prometheus.Gatherers{reg, reg}
	_, msg := run(t, func(tb testing.TB) float64 { return Value(tb, g, "dup") })
	require.Contains(t, msg, "cannot gather metrics: ")
}
