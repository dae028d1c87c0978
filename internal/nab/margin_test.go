package nab

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

// marginCorpus is n series of 1,000 rows at 5 minutes, each with two
// labelled runs (rows 400–420 and 700–705, after the 150-row warm-up).
// finds(i) says which of series i's incidents the detector opens on (bit 0:
// the first, bit 1: the second) and falseAt(i) where it opens falsely (0:
// nowhere).
func marginCorpus(n int, finds func(i int) int, falseAt func(i int) int) (*Corpus, *Output) {
	const rows = 1000
	c := &Corpus{}
	o := &Output{}
	for i := range n {
		s := &Series{Path: "cat/" + string(rune('a'+i%26)) + string(rune('a'+i/26)) + ".csv",
			Times: make([]time.Time, rows), Values: make([]float64, rows),
			Windows: []Window{{Start: 400, End: 420}, {Start: 700, End: 705}}}
		for j := range s.Times {
			s.Times[j] = time.Unix(int64(j)*300, 0).UTC()
		}
		scores := make([]float64, rows)
		if finds(i)&1 != 0 {
			scores[405] = 0.9
		}
		if finds(i)&2 != 0 {
			scores[700] = 0.8
		}
		if j := falseAt(i); j > 0 {
			scores[j] = 0.75
		}
		c.Series = append(c.Series, s)
		o.Scores = append(o.Scores, scores)
		o.Raw = append(o.Raw, scores)
	}
	return c, o
}

// foldReport evaluates an output as fold A with its own optimum as the
// transfer threshold.
func foldReport(c *Corpus, o *Output, detector string) *FoldReport {
	o.Detector = detector
	r := EvaluateFold("dev", "A", c, o)
	SetTransfer(r, r)
	return r
}

func TestPerSeriesCountsAddUpToTheFold(t *testing.T) {
	c, o := marginCorpus(12, func(i int) int { return i % 4 }, func(i int) int { return []int{0, 250, 550, 900}[i%4] })
	// An early open, in the warm-up: counted by neither.
	o.Scores[3][20] = 0.9
	whole := ScoreEvents(c, o)
	var sum seriesCounts
	for _, s := range perSeriesEvents(c, o) {
		sum = sum.add(s)
	}
	require.Equal(t, seriesCounts{opens: whole.Opens, trueOpens: whole.TrueOpens, detected: whole.Detected, incidents: whole.Incidents}, sum)
	require.InDelta(t, whole.F1, f1Of(sum), 1e-12)

	files := c.RawFiles(o)
	for _, p := range Profiles {
		all := ScoreAt(files, p, 0.7)
		var raw float64
		var windows int
		for _, s := range perSeriesNAB(files, p, 0.7) {
			raw, windows = raw+s.raw, windows+s.windows
		}
		require.InDelta(t, all.Raw, raw, 1e-9, p.Name)
		require.Equal(t, all.Windows, windows, p.Name)
		require.InDelta(t, all.Normalised, nabOf(raw, windows, p), 1e-9, p.Name)
	}
}

func TestBootstrapMargin(t *testing.T) {
	const n = 30
	everything := func(int) int { return 3 }
	half := func(i int) int { return 1 + i%2 } // one incident of two
	none := func(int) int { return 0 }
	falseEvery3rd := func(i int) int {
		if i%3 == 0 {
			return 600
		}
		return 0
	}
	for _, tc := range []struct {
		name                 string
		d, base              func(int) int
		dFalse               func(int) int
		wantF1Sign           int // −1, 0 or +1: the whole interval's sign
		wantAtMostZeroF1     float64
		wantNABPositiveOrNot bool
	}{
		{name: "the same detector", d: half, base: half, dFalse: none, wantF1Sign: 0, wantAtMostZeroF1: 1},
		{name: "finds every incident, the baseline half", d: everything, base: half, dFalse: none, wantF1Sign: 1, wantAtMostZeroF1: 0, wantNABPositiveOrNot: true},
		{name: "finds half, the baseline every incident", d: half, base: everything, dFalse: falseEvery3rd, wantF1Sign: -1, wantAtMostZeroF1: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cd, od := marginCorpus(n, tc.d, tc.dFalse)
			cb, ob := marginCorpus(n, tc.base, none)
			d, b := foldReport(cd, od, "d"), foldReport(cb, ob, "base")
			m, err := BootstrapMargin(d, b, 500, 1)
			require.NoError(t, err)
			require.Equal(t, n, m.Series)
			require.InDelta(t, d.Events.F1-b.Events.F1, m.F1.Value, 1e-12)
			require.InDelta(t, d.ScoresTransfer[0].Normalised-b.ScoresTransfer[0].Normalised, m.NAB.Value, 1e-9)
			require.LessOrEqual(t, m.F1.Low, m.F1.Value)
			require.GreaterOrEqual(t, m.F1.High, m.F1.Value)
			switch tc.wantF1Sign {
			case 0:
				require.Zero(t, m.F1.Low)
				require.Zero(t, m.F1.High)
				require.Zero(t, m.NAB.Low)
				require.Zero(t, m.NAB.High)
			case 1:
				require.Positive(t, m.F1.Low)
			case -1:
				require.Negative(t, m.F1.High)
			}
			require.InDelta(t, tc.wantAtMostZeroF1, m.F1.AtMostZero, 1e-12)
			if tc.wantNABPositiveOrNot {
				require.Positive(t, m.NAB.Low)
			}

			again, err := BootstrapMargin(d, b, 500, 1)
			require.NoError(t, err)
			require.Empty(t, cmp.Diff(m, again), "a fixed seed draws the same resamples")
		})
	}
}

// A margin needs the same fold of the same corpus on both sides.
func TestBootstrapMarginRejectsDifferentFolds(t *testing.T) {
	c, o := marginCorpus(4, func(int) int { return 1 }, func(int) int { return 0 })
	a := foldReport(c, o, "d")
	c2, o2 := marginCorpus(5, func(int) int { return 1 }, func(int) int { return 0 })
	b := foldReport(c2, o2, "base")
	_, err := BootstrapMargin(a, b, 10, 1)
	require.ErrorContains(t, err, "cannot compare")
	otherFold := foldReport(c, o, "base")
	otherFold.Fold = "B"
	_, err = BootstrapMargin(a, otherFold, 10, 1)
	require.ErrorContains(t, err, "cannot compare")
	_, err = BootstrapMargin(a, foldReport(c, o, "base"), 10, 1)
	require.NoError(t, err)

	renamed, ro := marginCorpus(4, func(int) int { return 1 }, func(int) int { return 0 })
	renamed.Series[2].Path = "cat/other.csv"
	_, err = BootstrapMargin(a, foldReport(renamed, ro, "base"), 10, 1)
	require.ErrorContains(t, err, "series 2 is cat/ca.csv for one detector and cat/other.csv for the other")
}

func TestMargins(t *testing.T) {
	c, o := marginCorpus(6, func(int) int { return 3 }, func(int) int { return 0 })
	cb, ob := marginCorpus(6, func(int) int { return 1 }, func(int) int { return 0 })
	reports := []*FoldReport{foldReport(c, o, "lstm"), foldReport(cb, ob, "window-mean")}
	ms, err := Margins(reports, "window-mean", 100, 1)
	require.NoError(t, err)
	require.Len(t, ms, 1)
	require.Equal(t, "lstm", ms[0].Detector)
	require.Equal(t, "window-mean", ms[0].Baseline)
	md := MarginMarkdown(ms)
	require.Contains(t, md, "| dev | A | lstm − window-mean | 6 |")

	none, err := Margins(reports[:1], "window-mean", 100, 1)
	require.NoError(t, err)
	require.Empty(t, none, "no baseline, no margin")
}

func TestMiddle95(t *testing.T) {
	xs := make([]float64, 1000)
	for i := range xs {
		xs[len(xs)-1-i] = float64(i) - 99.5 // 100 of them below 0, shuffled order
	}
	lo, hi, atMostZero := middle95(xs)
	require.Equal(t, 25-99.5, lo)
	require.Equal(t, 974-99.5, hi)
	require.InDelta(t, 0.1, atMostZero, 1e-12)
}
