package nab

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
)

// FoldReport is one detector on one inner fold of one corpus.
type FoldReport struct {
	Corpus       string `json:"corpus"`
	Fold         string `json:"fold"`
	Detector     string `json:"detector"`
	ModelVersion string `json:"model_version"`
	Series       int    `json:"series"`
	Rows         int    `json:"rows"`
	Dropped      int    `json:"rows_dropped"`
	// NAB is each profile at the threshold that is best on this fold;
	// Transfer at the threshold that is best on the other fold.
	NAB      []Score `json:"nab"`
	Transfer []Score `json:"nab_transfer"`
	// AtThreshold is each profile with every open counted: the detector's
	// own threshold, nothing tuned to the data.
	AtThreshold []Score `json:"nab_at_threshold"`
	// ScoresNAB and ScoresTransfer are NAB as its own run.py computes it:
	// every row's anomaly_score is a detection where it reaches the
	// threshold (optimised on this fold, and on the other fold), not only
	// the rows where an anomaly opened. This is the figure published
	// detectors report.
	ScoresNAB      []Score    `json:"nab_scores"`
	ScoresTransfer []Score    `json:"nab_scores_transfer"`
	Events         EventScore `json:"events"`
	// LegacyRuleEvents is the event scoring of what LegacyMixinRule would
	// have paged from the same scores.
	LegacyRuleEvents EventScore `json:"legacy_rule_events"`

	files, rawFiles []File
	series          []seriesCounts // per series, for BootstrapMargin
}

// EvaluateFold scores an output of ModeEvents on fold c of a corpus. Transfer
// is filled by SetTransfer once the other fold is scored.
func EvaluateFold(corpus, fold string, c *Corpus, o *Output) *FoldReport {
	// In ModeEvents a row scores only where an anomaly opened, so any
	// positive threshold counts every open.
	const everyOpen = 1e-9
	r := &FoldReport{
		Corpus: corpus, Fold: fold, Detector: o.Detector, ModelVersion: o.ModelVersion,
		Series: len(c.Series), Rows: c.Rows(), Dropped: o.Dropped,
		Events: ScoreEvents(c, o), files: c.Files(o), rawFiles: c.RawFiles(o),
		series:           perSeriesEvents(c, o),
		LegacyRuleEvents: ScoreEvents(c, LegacyMixinRule.Pages(c, o)),
	}
	for _, p := range Profiles {
		r.NAB = append(r.NAB, Optimise(r.files, p))
		r.AtThreshold = append(r.AtThreshold, ScoreAt(r.files, p, everyOpen))
		r.ScoresNAB = append(r.ScoresNAB, Optimise(r.rawFiles, p))
	}
	return r
}

// SetTransfer scores each fold at the thresholds optimised on the other.
func SetTransfer(a, b *FoldReport) {
	a.Transfer, b.Transfer = a.Transfer[:0], b.Transfer[:0]
	a.ScoresTransfer, b.ScoresTransfer = a.ScoresTransfer[:0], b.ScoresTransfer[:0]
	for i, p := range Profiles {
		a.Transfer = append(a.Transfer, ScoreAt(a.files, p, b.NAB[i].Threshold))
		b.Transfer = append(b.Transfer, ScoreAt(b.files, p, a.NAB[i].Threshold))
		a.ScoresTransfer = append(a.ScoresTransfer, ScoreAt(a.rawFiles, p, b.ScoresNAB[i].Threshold))
		b.ScoresTransfer = append(b.ScoresTransfer, ScoreAt(b.rawFiles, p, a.ScoresNAB[i].Threshold))
	}
}

// CorpusName is the name a corpus folder is reported under.
func CorpusName(dir string) string { return filepath.Base(filepath.Clean(dir)) }

// FoldMarkdown renders fold reports, grouped as given, as one table.
func FoldMarkdown(reports []*FoldReport) string {
	var b strings.Builder
	b.WriteString("| corpus | fold | detector | model | NAB on scores, transfer: standard / low FP / low FN | NAB on opens, transfer | NAB at the detector's threshold | NAB own optimum: standard | events: precision / recall / F1 | precision, an incident counted once | opens (true) | incidents detected | false alarms per series-day | delay median (rows) | warm-up rows: false opens, per series-day |\n")
	b.WriteString("|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range reports {
		e := r.Events
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %.1f / %.1f / %.1f | %.1f / %.1f / %.1f | %.1f / %.1f / %.1f | %.1f | %.2f / %.2f / %.2f | %.2f | %d (%d) | %d / %d | %.3f | %.0f | %d, %.3f |\n",
			r.Corpus, r.Fold, r.Detector, r.ModelVersion,
			r.ScoresTransfer[0].Normalised, r.ScoresTransfer[1].Normalised, r.ScoresTransfer[2].Normalised,
			r.Transfer[0].Normalised, r.Transfer[1].Normalised, r.Transfer[2].Normalised,
			r.AtThreshold[0].Normalised, r.AtThreshold[1].Normalised, r.AtThreshold[2].Normalised, r.NAB[0].Normalised,
			e.Precision, e.Recall, e.F1, e.IncidentPrecision, e.Opens, e.TrueOpens, e.Detected, e.Incidents, e.FalsePerDay, e.DelayMedian, e.EarlyFalse, e.EarlyFalsePerDay)
	}
	return b.String()
}

// CauseMarkdown renders each fold report's opens by cause (the scoring term
// that contributed most to the opening sample) as one table: which term
// makes the true and the false alarms.
func CauseMarkdown(reports []*FoldReport) string {
	var b strings.Builder
	b.WriteString("| corpus | fold | detector |")
	for _, c := range detector.Causes {
		fmt.Fprintf(&b, " cause %s: opens (true), precision |", c)
	}
	b.WriteString("\n|---|---|---|" + strings.Repeat("---:|", len(detector.Causes)) + "\n")
	for _, r := range reports {
		fmt.Fprintf(&b, "| %s | %s | %s |", r.Corpus, r.Fold, r.Detector)
		for _, c := range detector.Causes {
			co := r.Events.ByCause[c.String()]
			if co.Opens == 0 {
				b.WriteString(" 0 |")
				continue
			}
			fmt.Fprintf(&b, " %d (%d), %.2f |", co.Opens, co.TrueOpens, float64(co.TrueOpens)/float64(co.Opens))
		}
		b.WriteString("\n")
	}
	return b.String()
}

// Worst is, per corpus and detector, the worse inner fold of each figure.
type Worst struct {
	Corpus, Detector string
	ScoresTransfer   [3]float64 // NAB profiles
	Transfer         [3]float64
	AtThreshold      [3]float64
	Precision, F1    float64
	FalsePerDay      float64
}

// WorstFolds reduces fold reports to the worse fold per corpus and detector,
// in the order first seen.
func WorstFolds(reports []*FoldReport) []Worst {
	var out []Worst
	for _, g := range groupByCorpusDetector(reports) {
		r := g[0]
		w := Worst{Corpus: r.Corpus, Detector: r.Detector, Precision: r.Events.Precision, F1: r.Events.F1, FalsePerDay: r.Events.FalsePerDay}
		for p := range w.Transfer {
			w.Transfer[p], w.AtThreshold[p] = r.Transfer[p].Normalised, r.AtThreshold[p].Normalised
			w.ScoresTransfer[p] = r.ScoresTransfer[p].Normalised
		}
		for _, r := range g[1:] {
			for p := range w.Transfer {
				w.Transfer[p] = min(w.Transfer[p], r.Transfer[p].Normalised)
				w.AtThreshold[p] = min(w.AtThreshold[p], r.AtThreshold[p].Normalised)
				w.ScoresTransfer[p] = min(w.ScoresTransfer[p], r.ScoresTransfer[p].Normalised)
			}
			w.Precision, w.F1 = min(w.Precision, r.Events.Precision), min(w.F1, r.Events.F1)
			w.FalsePerDay = max(w.FalsePerDay, r.Events.FalsePerDay)
		}
		out = append(out, w)
	}
	return out
}

// groupByCorpusDetector groups fold reports by corpus and detector, the
// groups in the order first seen.
func groupByCorpusDetector(reports []*FoldReport) [][]*FoldReport {
	var groups [][]*FoldReport
	idx := map[[2]string]int{}
	for _, r := range reports {
		k := [2]string{r.Corpus, r.Detector}
		i, ok := idx[k]
		if !ok {
			i = len(groups)
			idx[k] = i
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], r)
	}
	return groups
}

// WorstMarkdown renders the worse-fold summary.
func WorstMarkdown(ws []Worst) string {
	var b strings.Builder
	b.WriteString("| corpus | detector | NAB on scores, transfer: standard / low FP / low FN | NAB on opens, transfer | NAB at the detector's threshold | events: precision / F1 | false alarms per series-day |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|\n")
	for _, w := range ws {
		fmt.Fprintf(&b, "| %s | %s | %.1f / %.1f / %.1f | %.1f / %.1f / %.1f | %.1f / %.1f / %.1f | %.2f / %.2f | %.3f |\n",
			w.Corpus, w.Detector, w.ScoresTransfer[0], w.ScoresTransfer[1], w.ScoresTransfer[2],
			w.Transfer[0], w.Transfer[1], w.Transfer[2],
			w.AtThreshold[0], w.AtThreshold[1], w.AtThreshold[2], w.Precision, w.F1, w.FalsePerDay)
	}
	return b.String()
}

// Files returns the scorer's view of an output.
func (c *Corpus) Files(o *Output) []File {
	files := make([]File, len(c.Series))
	for i, s := range c.Series {
		files[i] = File{Name: s.Path, Scores: o.Scores[i], Windows: s.Windows}
	}
	return files
}

// RawFiles returns the scorer's view of every row's anomaly_score.
func (c *Corpus) RawFiles(o *Output) []File {
	files := make([]File, len(c.Series))
	for i, s := range c.Series {
		files[i] = File{Name: s.Path, Scores: o.Raw[i], Windows: s.Windows}
	}
	return files
}
