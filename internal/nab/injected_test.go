package nab

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
)

func TestInjectedCorpus(t *testing.T) {
	const perCell = 3
	step := time.Minute
	c := InjectedCorpus(perCell, step, 1)
	cells := 0
	for _, base := range InjectedBases {
		for _, k := range InjectedKinds {
			if !k.DailyOnly || base == "daily" {
				cells++
			}
		}
	}
	require.Len(t, c.Series, cells*perCell)
	n := int(injectedDays * 24 * time.Hour / step)
	for _, s := range c.Series {
		require.Len(t, s.Values, n, s.Path)
		require.Len(t, s.Windows, 1, s.Path)
		w := s.Windows[0]
		kind := InjectedKinds[kindIndex(s.Name)]
		require.GreaterOrEqual(t, w.Start, int(injectedFrom/step), s.Path)
		require.Less(t, w.Start, int(injectedTo/step), s.Path)
		require.Equal(t, max(int(kind.Span/step), 1), w.Len(), s.Path)
		switch kind.Name {
		case "drop to 0, 15 min":
			for j := w.Start; j <= w.End; j++ {
				require.Zero(t, s.Values[j], s.Path)
			}
			require.NotZero(t, s.Values[w.End+1], s.Path)
		case "stuck at the last value, 2 h":
			for j := w.Start; j <= w.End; j++ {
				require.Equal(t, s.Values[w.Start-1], s.Values[j], s.Path)
			}
		case "spike 20σ":
			require.Greater(t, s.Values[w.Start]-injectedBase(s.Category, s.Times[w.Start]), 15.0*injectedSigma, s.Path)
		}
	}
	// The same seed gives the same corpus.
	require.Equal(t, c.Series[5].Values, InjectedCorpus(perCell, step, 1).Series[5].Values)
}

func TestScoreInjected(t *testing.T) {
	step := time.Minute
	c := InjectedCorpus(2, step, 1)
	o := &Output{Scores: make([][]float64, len(c.Series)), Causes: make([][]detector.Cause, len(c.Series))}
	for i, s := range c.Series {
		o.Scores[i] = make([]float64, len(s.Values))
		o.Causes[i] = make([]detector.Cause, len(s.Values))
	}
	find := func(kind string) (first, second int) {
		first = -1
		for i, s := range c.Series {
			if InjectedKinds[kindIndex(s.Name)].Name == kind && s.Category == "flat" {
				if first < 0 {
					first = i
				} else {
					return first, i
				}
			}
		}
		t.Fatalf("no two series of %s", kind)
		return
	}
	spikeA, spikeB := find("spike 10σ")
	shiftA, shiftB := find("level shift 5σ, 1 h")
	// A spike counts on its sample or the next; a shift on its own samples,
	// not on the return to normal.
	o.Scores[spikeA][c.Series[spikeA].Windows[0].Start+1] = 0.8
	o.Scores[spikeB][c.Series[spikeB].Windows[0].Start+2] = 0.8
	o.Scores[shiftA][c.Series[shiftA].Windows[0].Start+4] = 0.8
	o.Causes[shiftA][c.Series[shiftA].Windows[0].Start+4] = detector.CauseLevel
	o.Scores[shiftB][c.Series[shiftB].Windows[0].End+1] = 0.8
	// A false alarm: after day 2, far from the anomaly; one before day 2
	// does not count.
	o.Scores[0][int(injectedFrom/step)-5] = 0.9
	o.Scores[1][len(c.Series[1].Values)-1] = 0.9

	got := map[string]InjectedResult{}
	for _, r := range ScoreInjected(c, o, step) {
		require.Equal(t, 2, r.Series)
		got[r.Base+"/"+r.Kind] = r
	}
	require.Equal(t, InjectedResult{Base: "flat", Kind: "spike 10σ", Series: 2, Detected: 1, DelayMedian: step, Causes: [4]int{detector.CauseUnknown: 1}}, got["flat/spike 10σ"])
	require.Equal(t, InjectedResult{Base: "flat", Kind: "level shift 5σ, 1 h", Series: 2, Detected: 1, DelayMedian: 4 * step, Causes: [4]int{detector.CauseLevel: 1}}, got["flat/level shift 5σ, 1 h"])
	require.Contains(t, InjectedCauseMarkdown([]string{"det"}, [][]InjectedResult{ScoreInjected(c, o, step)}), "| flat | level shift 5σ, 1 h | level 1 |")
	require.Zero(t, got["daily/spike 10σ"].Detected)

	// Series 1 is a flat one; spikeB's open two samples after the spike and
	// shiftB's at the return are neither detections nor false alarms (within
	// incidentMerge).
	require.Equal(t, "flat", c.Series[1].Category)
	flat := 0
	for _, s := range c.Series {
		if s.Category == "flat" {
			flat++
		}
	}
	days := float64(flat) * (injectedDays*24*time.Hour - injectedFrom).Hours() / 24
	fa := InjectedFalseAlarms(c, o, step)
	require.Len(t, fa, len(InjectedBases))
	for b, base := range InjectedBases {
		want := 0.0
		if base == "flat" {
			want = 1 / days
		}
		require.InDelta(t, want, fa[b], 1e-12, base)
	}
}
