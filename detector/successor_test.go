package detector

import (
	"math/rand/v2"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// A replaced pod's series starts from the calibration of the series it
// replaces: scored as soon as its window is full, with the old pod's
// tails and range, and judged as the workload was.
func TestSuccessorInheritsTheCalibration(t *testing.T) {
	for _, tc := range []struct {
		name        string
		churnLabels []string
		newLabels   Labels
		inherits    bool
	}{
		{"a new pod of the workload", DefaultConfig.ChurnLabels, lbls("__name__", "rps", "instance", "10.0.0.2:80", "job", "api", "pod", "api-2"), true},
		{"off", nil, lbls("__name__", "rps", "instance", "10.0.0.2:80", "job", "api", "pod", "api-2"), false},
		{"another workload", DefaultConfig.ChurnLabels, lbls("__name__", "rps", "instance", "10.0.0.2:80", "job", "web", "pod", "web-1"), false},
		{"a host, not a pod", DefaultConfig.ChurnLabels, lbls("__name__", "rps", "instance", "10.0.0.2:80", "job", "api"), false},
		{"a container, with cAdvisor's per-container labels listed", []string{"pod", "instance", "id", "name"},
			lbls("__name__", "rps", "id", "/kubepods/web-2/c2", "instance", "node-2", "job", "api", "name", "c2", "pod", "api-2"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, _ := newTestDetector(t, func(c *Config) { c.ChurnLabels = tc.churnLabels })
			old := lbls("__name__", "rps", "instance", "10.0.0.1:80", "job", "api", "pod", "api-1")
			switch tc.name {
			case "a host, not a pod":
				old = lbls("__name__", "rps", "instance", "10.0.0.1:80", "job", "api")
			case "a container, with cAdvisor's per-container labels listed":
				old = lbls("__name__", "rps", "id", "/kubepods/web-1/c1", "instance", "node-1", "job", "api", "name", "c1", "pod", "api-1")
			}
			rng := rand.New(rand.NewPCG(1, 2))
			ts := int64(1_700_000_000_000)
			for range 500 {
				feed(t, d, old, ts, 100+5*rng.NormFloat64())
				ts += 15_000
			}
			oldCal := d.lookupForTest("", old).cal
			// The window (16 here) fills, then the next sample is scored
			// if and only if the calibration came with the series; cold,
			// it is one of warmup_samples.
			scored0 := testutil.ToFloat64(d.metrics.samplesScored)
			for range 17 {
				feed(t, d, tc.newLabels, ts, 100+5*rng.NormFloat64())
				ts += 15_000
			}
			scored := testutil.ToFloat64(d.metrics.samplesScored) - scored0
			want := 0.0
			if tc.inherits {
				want = 1
				s := d.lookupForTest("", tc.newLabels)
				require.Equal(t, oldCal.n+1, s.cal.n, "the old pod's statistics, and the new pod's first error")
				require.InDelta(t, oldCal.valMax, s.cal.valMax, 0.5, "the old pod's range")
			}
			require.Equal(t, want, scored, "samples of the new series scored")
			require.Equal(t, want, testutil.ToFloat64(d.metrics.seriesInherited))
		})
	}
}

// The successor's cycle tails are its own: what it learns does not change
// its predecessor's.
func TestSuccessorCopiesTheCycleTails(t *testing.T) {
	d, _ := newTestDetector(t, nil)
	old := lbls("__name__", "rps", "instance", "a:1", "pod", "p1")
	ts := int64(1_700_000_000_000)
	feed(t, d, old, ts, 1)
	s := d.lookupForTest("", old)
	s.cal.n = 100
	s.cal.daily.cycleTails().res.learn(1, 0.5, 100, true)
	feed(t, d, lbls("__name__", "rps", "instance", "b:1", "pod", "p2"), ts, 1)
	succ := d.lookupForTest("", lbls("__name__", "rps", "instance", "b:1", "pod", "p2"))
	require.NotNil(t, succ.cal.daily.tails)
	require.NotSame(t, s.cal.daily.tails, succ.cal.daily.tails)
	succ.cal.daily.tails.res.learn(5, 0.5, 100, false)
	require.NotEqual(t, s.cal.daily.tails.res, succ.cal.daily.tails.res)
}

// A removed series is no one's predecessor: a pod's series deleted (handed
// to another replica) or expired leaves no trace in the successors map.
func TestRemovedSeriesHasNoSuccessor(t *testing.T) {
	d, _ := newTestDetector(t, nil)
	old := lbls("__name__", "rps", "instance", "a:1", "pod", "p1")
	feed(t, d, old, 1_000, 1)
	require.Len(t, d.succ.newest, 1)
	require.Equal(t, 1, d.DeleteSeries(func(string, Labels) bool { return true }))
	require.Empty(t, d.succ.newest)
}

// A process that restarts from another level (a new pod's memory starts
// low) must not open an anomaly for it: its first window's median lies
// beyond what its predecessor's statistics call normal, so only the
// predecessor's prediction-error statistics are kept.
func TestSuccessorOfARestartedProcess(t *testing.T) {
	sink := &recordingSink{}
	d, _ := newTestDetector(t, nil, sink)
	rng := rand.New(rand.NewPCG(5, 6))
	ts := int64(1_700_000_000_000)
	memory := func(i int) float64 { // 200 MB at start, 2 GB after an hour
		return 2e9 - 1.8e9*max(0, 1-float64(i)/240) + 1e7*rng.NormFloat64()
	}
	pod1 := lbls("__name__", "process_resident_memory_bytes", "instance", "10.0.0.1:80", "job", "api", "pod", "api-1")
	for i := range 11520 { // two days
		feed(t, d, pod1, ts, memory(i))
		ts += 15_000
	}
	before := len(sink.events)
	errors := d.lookupForTest("", pod1).cal.n
	pod2 := lbls("__name__", "process_resident_memory_bytes", "instance", "10.0.0.2:80", "job", "api", "pod", "api-2")
	for i := range 240 { // its first hour
		feed(t, d, pod2, ts, memory(i))
		ts += 15_000
	}
	require.Empty(t, sink.events[before:], "a restart is not an anomaly")
	s := d.lookupForTest("", pod2)
	require.Equal(t, 1.0, testutil.ToFloat64(d.metrics.seriesInherited))
	require.Greater(t, s.cal.n, errors, "the predecessor's error statistics are kept")
	require.Less(t, s.cal.vn, uint32(240), "its value statistics restarted with the new level")
	require.False(t, s.cal.daily.inherited)
}
