package detector

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

func TestEntityMarks(t *testing.T) {
	const a, b, c = 1, 2, 3 // series
	for _, tc := range []struct {
		name         string
		marks        []entityMark // recorded before, in order
		ts           int64
		since        int64
		corroborated bool
		siblings     bool
	}{
		{name: "nothing recorded", ts: 100, since: 90},
		{name: "only itself", marks: []entityMark{{a, 95}}, ts: 100, since: 90},
		{name: "a sibling in the window", marks: []entityMark{{b, 95}}, ts: 100, since: 90, corroborated: true, siblings: true},
		{name: "a sibling at the same time", marks: []entityMark{{b, 100}}, ts: 100, since: 90, corroborated: true, siblings: true},
		{name: "a sibling too long ago", marks: []entityMark{{b, 80}}, ts: 100, since: 90, siblings: true},
		{name: "a sibling behind its own later mark", marks: []entityMark{{b, 95}, {a, 99}}, ts: 100, since: 90, corroborated: true, siblings: true},
		{name: "the latest of two siblings", marks: []entityMark{{b, 80}, {c, 96}, {a, 99}}, ts: 100, since: 90, corroborated: true, siblings: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newEntityMarks()
			for _, mk := range tc.marks {
				m.corroborate(7, mk.series, mk.ts, mk.ts)
			}
			corroborated, siblings := m.corroborate(7, a, tc.ts, tc.since)
			require.Equal(t, tc.corroborated, corroborated)
			require.Equal(t, tc.siblings, siblings)
			// Another entity in the same slot evicts, never corroborates.
			corroborated, siblings = m.corroborate(7+entitySlots, b, tc.ts, tc.since)
			require.False(t, corroborated)
			require.False(t, siblings)
		})
	}
}

func TestEntityHash(t *testing.T) {
	names := []string{"job", "instance"}
	h1, ok := entityHash("", lbls("__name__", "cpu", "instance", "db-1", "job", "node"), names)
	require.True(t, ok)
	h2, ok := entityHash("", lbls("__name__", "mem", "instance", "db-1", "job", "node"), names)
	require.True(t, ok)
	require.Equal(t, h1, h2, "metrics of one target are one entity")
	h3, _ := entityHash("", lbls("__name__", "cpu", "instance", "db-2", "job", "node"), names)
	require.NotEqual(t, h1, h3)
	h4, _ := entityHash("team-a", lbls("__name__", "cpu", "instance", "db-1", "job", "node"), names)
	require.NotEqual(t, h1, h4, "tenants are apart")
	_, ok = entityHash("", lbls("__name__", "cpu", "job", "node"), names)
	require.False(t, ok, "a series without every entity label belongs to no entity")
	_, ok = entityHash("", lbls("__name__", "cpu", "instance", "db-1", "job", "node"), nil)
	require.False(t, ok)
}

// TestCorroboration: a deviation that scores just under the threshold on
// one series opens an anomaly when another metric of the same target
// deviated as much at the same time, and only then.
func TestCorroboration(t *testing.T) {
	const calm = 400
	// run feeds calm noise to every series, then at the last timestamp a
	// deviation of k standard deviations to the series named in deviate, in
	// that order, and returns the last scores and the detector.
	run := func(t *testing.T, mod func(*Config), series []Labels, deviate []int, k float64) ([]float64, *Detector, *recordingSink) {
		t.Helper()
		sink := &recordingSink{}
		d, _ := newTestDetector(t, mod, sink)
		// Alike series: the same noise on each.
		rngs := make([]*rand.Rand, len(series))
		for i := range rngs {
			rngs[i] = rand.New(rand.NewPCG(3, 4))
		}
		ts := int64(0)
		for range calm {
			ts += 15_000
			for i, ls := range series {
				feed(t, d, ls, ts, 100+rngs[i].NormFloat64())
			}
		}
		ts += 15_000
		scores := make([]float64, len(series))
		for _, i := range deviate {
			feed(t, d, series[i], ts, 100+k)
			r, ok := latest(d, series[i])
			require.True(t, ok)
			scores[i] = r.Score
		}
		return scores, d, sink
	}
	host := func(metric, instance string) Labels {
		if instance == "" {
			return lbls("__name__", metric, "job", "node")
		}
		return lbls("__name__", metric, "instance", instance, "job", "node")
	}
	alone := []Labels{host("cpu", "db-1")}
	// The deviation whose score alone lies within corroboration_lift of
	// the threshold (the scores are deterministic).
	lo, hi := 0.0, 100.0
	for range 30 {
		mid := (lo + hi) / 2
		s, _, _ := run(t, nil, alone, []int{0}, mid)
		if s[0] < 0.65 {
			lo = mid
		} else {
			hi = mid
		}
	}
	k := (lo + hi) / 2
	s, _, _ := run(t, nil, alone, []int{0}, k)
	require.GreaterOrEqual(t, s[0], DefaultScoringConfig.corroborationScore())
	require.Less(t, s[0], DefaultScoringConfig.Threshold)

	off := func(c *Config) { c.Scoring.CorroborationLift = 0 }
	for _, tc := range []struct {
		name   string
		mod    func(*Config)
		series []Labels
		opens  bool
	}{
		{name: "another metric of the target", series: []Labels{host("mem", "db-1"), host("cpu", "db-1")}, opens: true},
		{name: "another target", series: []Labels{host("mem", "db-2"), host("cpu", "db-1")}},
		{name: "no instance label", series: []Labels{host("mem", ""), host("cpu", "")}},
		{name: "corroboration off", mod: off, series: []Labels{host("mem", "db-1"), host("cpu", "db-1")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, d, sink := run(t, tc.mod, tc.series, []int{0, 1}, k)
			// The two series are alike: each alone would stay under the threshold.
			require.Less(t, math.Abs(s[0]-0.65), 0.01, "the first series' own score")
			if tc.opens {
				require.GreaterOrEqual(t, s[1], DefaultScoringConfig.Threshold)
				require.Equal(t, 1.0, testutil.ToFloat64(d.metrics.corroborated))
				require.Equal(t, 1.0, eventCount(d, "open"))
				require.Len(t, sink.events, 1)
				require.True(t, sink.events[0].Corroborated, "the open event says why it opened")
				require.Equal(t, s[1], sink.events[0].Score)
				return
			}
			require.Less(t, s[1], DefaultScoringConfig.Threshold)
			require.Zero(t, testutil.ToFloat64(d.metrics.corroborated))
			require.Zero(t, eventCount(d, "open"))
		})
	}
}

// TestUncorroborated: on a target whose other metrics have been surprising
// before, a sample just over the threshold that no other metric shares is
// lowered by corroboration_lift and opens nothing; on a target whose other
// metrics never were, it opens.
func TestUncorroborated(t *testing.T) {
	const calm = 400
	// run feeds calm noise to cpu and mem of db-1; with siblingSpike, mem
	// jumps once half-way (a surprise on record for the target); at the end
	// cpu alone deviates by k. It returns cpu's last score and the detector.
	run := func(t *testing.T, siblingSpike bool, k float64) (Result, *Detector) {
		t.Helper()
		d, _ := newTestDetector(t, nil)
		series := []Labels{
			lbls("__name__", "cpu", "instance", "db-1", "job", "node"),
			lbls("__name__", "mem", "instance", "db-1", "job", "node"),
		}
		rngs := []*rand.Rand{rand.New(rand.NewPCG(3, 4)), rand.New(rand.NewPCG(3, 4))}
		ts := int64(0)
		for i := range calm {
			ts += 15_000
			for j, ls := range series {
				v := 100 + rngs[j].NormFloat64()
				if siblingSpike && j == 1 && i == calm/2 {
					v += 40
				}
				feed(t, d, ls, ts, v)
			}
		}
		ts += 15_000
		feed(t, d, series[0], ts, 100+k)
		r, ok := latest(d, series[0])
		require.True(t, ok)
		return r, d
	}
	// The deviation that scores 0.75 with nothing on record for the target.
	lo, hi := 0.0, 100.0
	for range 30 {
		mid := (lo + hi) / 2
		if r, _ := run(t, false, mid); r.Score < 0.75 {
			lo = mid
		} else {
			hi = mid
		}
	}
	k := (lo + hi) / 2
	alone, d := run(t, false, k)
	require.InDelta(t, 0.75, alone.Score, 0.01)
	require.True(t, alone.Anomalous, "nothing on record for the target: it opens")
	require.Zero(t, testutil.ToFloat64(d.metrics.uncorroborated))

	isolated, d := run(t, true, k)
	require.InDelta(t, alone.Score-DefaultScoringConfig.CorroborationLift, isolated.Score, 1e-9, "lowered by the lift")
	require.False(t, isolated.Anomalous, "the target's other metric was surprising before and is calm now")
	require.Equal(t, 1.0, testutil.ToFloat64(d.metrics.uncorroborated))
	require.Equal(t, 1.0, eventCount(d, "open"), "only the other metric's own spike opened")
}
