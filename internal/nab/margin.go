package nab

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
)

// A fold holds 13 to 72 series, and a margin between two detectors there
// can come from a handful of them. The paired bootstrap below resamples a
// fold's series with replacement, scores both detectors on the same
// resample, and reports the middle 95 % of the margins: how far the margin
// could move with another draw of series like these. It does not cover the
// transfer threshold's own uncertainty (chosen on the other fold, held
// fixed here).

// BootstrapResamples is how many resamples `eval` draws per fold.
const BootstrapResamples = 2000

// Interval is a figure with its 95 % bootstrap interval.
type Interval struct {
	Value, Low, High float64
	// AtMostZero is the share of resamples where the figure was ≤ 0.
	AtMostZero float64
}

// Margin is how far a detector is ahead of a baseline on one fold.
type Margin struct {
	Corpus, Fold, Detector, Baseline string
	Series                           int
	F1                               Interval // event F1, detector − baseline
	NAB                              Interval // NAB on scores, standard profile, transfer threshold
}

// seriesCounts are one series' additive event counts.
type seriesCounts struct{ opens, trueOpens, detected, incidents int }

// seriesNAB is one series' NAB raw score and window count at a fixed
// threshold: the corpus score is their sums, normalised.
type seriesNAB struct {
	raw     float64
	windows int
}

// scores are the event precision, recall and F1 of the counts: the one
// place ScoreEvents and the bootstrap compute them.
func (c seriesCounts) scores() (precision, recall, f1 float64) {
	if c.opens > 0 {
		precision = float64(c.trueOpens) / float64(c.opens)
	}
	if c.incidents > 0 {
		recall = float64(c.detected) / float64(c.incidents)
	}
	if precision+recall > 0 {
		f1 = 2 * precision * recall / (precision + recall)
	}
	return precision, recall, f1
}

// f1Of is the event F1 of summed counts.
func f1Of(c seriesCounts) float64 {
	_, _, f1 := c.scores()
	return f1
}

// nabOf normalises summed NAB raw scores (Score.normalise).
func nabOf(raw float64, windows int, p Profile) float64 {
	s := Score{Raw: raw, Windows: windows}
	s.normalise(p)
	return s.Normalised
}

// perSeriesNAB scores each file alone at threshold.
func perSeriesNAB(files []File, p Profile, threshold float64) []seriesNAB {
	out := make([]seriesNAB, len(files))
	for i := range files {
		s := ScoreAt(files[i:i+1], p, threshold)
		out[i] = seriesNAB{raw: s.Raw, windows: s.Windows}
	}
	return out
}

// BootstrapMargin compares d with base on the same fold (same series, same
// order) by a paired bootstrap over its series with a fixed seed. NAB uses
// each detector's transfer threshold of the standard profile, so SetTransfer
// must have run.
func BootstrapMargin(d, base *FoldReport, resamples int, seed uint64) (Margin, error) {
	if d.Corpus != base.Corpus || d.Fold != base.Fold || len(d.series) != len(base.series) {
		return Margin{}, fmt.Errorf("cannot compare %s fold %s (%d series) with %s fold %s (%d series)",
			d.Corpus, d.Fold, len(d.series), base.Corpus, base.Fold, len(base.series))
	}
	for i := range d.rawFiles {
		if d.rawFiles[i].Name != base.rawFiles[i].Name {
			return Margin{}, fmt.Errorf("cannot compare %s fold %s: series %d is %s for one detector and %s for the other",
				d.Corpus, d.Fold, i, d.rawFiles[i].Name, base.rawFiles[i].Name)
		}
	}
	if len(d.ScoresTransfer) == 0 || len(base.ScoresTransfer) == 0 {
		return Margin{}, fmt.Errorf("cannot compare %s fold %s before its transfer scores are set", d.Corpus, d.Fold)
	}
	p := Profiles[0]
	nabD := perSeriesNAB(d.rawFiles, p, d.ScoresTransfer[0].Threshold)
	nabB := perSeriesNAB(base.rawFiles, p, base.ScoresTransfer[0].Threshold)
	n := len(d.series)
	m := Margin{Corpus: d.Corpus, Fold: d.Fold, Detector: d.Detector, Baseline: base.Detector, Series: n}
	m.F1.Value = d.Events.F1 - base.Events.F1
	m.NAB.Value = d.ScoresTransfer[0].Normalised - base.ScoresTransfer[0].Normalised
	if n == 0 || resamples <= 0 {
		return m, nil
	}
	rng := rand.New(rand.NewPCG(seed, uint64(n)))
	f1s := make([]float64, resamples)
	nabs := make([]float64, resamples)
	for k := range resamples {
		var cd, cb seriesCounts
		var rawD, rawB float64
		var winD, winB int
		for range n {
			i := rng.IntN(n)
			cd = cd.add(d.series[i])
			cb = cb.add(base.series[i])
			rawD, winD = rawD+nabD[i].raw, winD+nabD[i].windows
			rawB, winB = rawB+nabB[i].raw, winB+nabB[i].windows
		}
		f1s[k] = f1Of(cd) - f1Of(cb)
		nabs[k] = nabOf(rawD, winD, p) - nabOf(rawB, winB, p)
	}
	m.F1.Low, m.F1.High, m.F1.AtMostZero = middle95(f1s)
	m.NAB.Low, m.NAB.High, m.NAB.AtMostZero = middle95(nabs)
	return m, nil
}

func (c seriesCounts) add(o seriesCounts) seriesCounts {
	return seriesCounts{c.opens + o.opens, c.trueOpens + o.trueOpens, c.detected + o.detected, c.incidents + o.incidents}
}

// middle95 returns the 2.5th and 97.5th percentiles of xs (sorting it) and
// the share of xs at or below 0.
func middle95(xs []float64) (lo, hi, atMostZero float64) {
	slices.Sort(xs)
	n := len(xs)
	lo, hi = xs[n*25/1000], xs[(n*975+999)/1000-1]
	zeros, _ := slices.BinarySearch(xs, 1e-12)
	return lo, hi, float64(zeros) / float64(n)
}

// Margins pairs every fold report of a detector other than baseline with
// the baseline's report of the same corpus and fold.
func Margins(reports []*FoldReport, baseline string, resamples int, seed uint64) ([]Margin, error) {
	base := map[[2]string]*FoldReport{}
	for _, r := range reports {
		if r.Detector == baseline {
			base[[2]string{r.Corpus, r.Fold}] = r
		}
	}
	var out []Margin
	for _, r := range reports {
		b, ok := base[[2]string{r.Corpus, r.Fold}]
		if r.Detector == baseline || !ok {
			continue
		}
		m, err := BootstrapMargin(r, b, resamples, seed)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// MarginMarkdown renders margins as one table.
func MarginMarkdown(ms []Margin) string {
	var b strings.Builder
	b.WriteString("| corpus | fold | detector − baseline | series | event F1 margin (95 % interval) | resamples with F1 margin ≤ 0 | NAB on scores, transfer, standard: margin (95 % interval) | resamples with NAB margin ≤ 0 |\n")
	b.WriteString("|---|---|---|---:|---:|---:|---:|---:|\n")
	for _, m := range ms {
		fmt.Fprintf(&b, "| %s | %s | %s − %s | %d | %+.3f (%+.3f … %+.3f) | %.0f %% | %+.1f (%+.1f … %+.1f) | %.0f %% |\n",
			m.Corpus, m.Fold, m.Detector, m.Baseline, m.Series,
			m.F1.Value, m.F1.Low, m.F1.High, 100*m.F1.AtMostZero,
			m.NAB.Value, m.NAB.Low, m.NAB.High, 100*m.NAB.AtMostZero)
	}
	return b.String()
}
