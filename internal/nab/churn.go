package nab

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// ChurnRow is one detector on one corpus fed as workloads whose pods are
// replaced every Period (Corpus.Churn), per inner fold.
type ChurnRow struct {
	Period   time.Duration
	Inherit  bool // detector.churn_labels on: a new pod's series starts from its predecessor's calibration
	Corpus   string
	Detector string
	// Per fold (A, B): event F1 and precision, NAB on scores transfer
	// (standard profile).
	F1, Precision, ScoresTransfer [2]float64
}

// ChurnRows turns the fold reports of one churn run into rows, one per
// corpus and detector, in the order first seen.
func ChurnRows(period time.Duration, inherit bool, reports []*FoldReport) []ChurnRow {
	var rows []ChurnRow
	for _, g := range groupByCorpusDetector(reports) {
		row := ChurnRow{Period: period, Inherit: inherit, Corpus: g[0].Corpus, Detector: g[0].Detector}
		for _, r := range g {
			f := 0
			if r.Fold == "B" {
				f = 1
			}
			row.F1[f], row.Precision[f] = r.Events.F1, r.Events.Precision
			if len(r.ScoresTransfer) > 0 {
				row.ScoresTransfer[f] = r.ScoresTransfer[0].Normalised
			}
		}
		rows = append(rows, row)
	}
	return rows
}

// ChurnMarkdown renders rows as the churn table: one line per period,
// start and detector, the corpora side by side.
func ChurnMarkdown(rows []ChurnRow) string {
	type key struct {
		period   time.Duration
		inherit  bool
		detector string
	}
	var order []key
	var corpora []string
	byKey := map[key]map[string]ChurnRow{}
	for _, r := range rows {
		k := key{r.Period, r.Inherit, r.Detector}
		if byKey[k] == nil {
			byKey[k] = map[string]ChurnRow{}
			order = append(order, k)
		}
		byKey[k][r.Corpus] = r
		if !slices.Contains(corpora, r.Corpus) {
			corpora = append(corpora, r.Corpus)
		}
	}
	var b strings.Builder
	b.WriteString("| a new pod every | series start | detector |")
	for _, c := range corpora {
		fmt.Fprintf(&b, " %s event F1 (precision) A / B | %s NAB on scores, transfer A / B |", c, c)
	}
	b.WriteString("\n|---|---|---|" + strings.Repeat("---:|---:|", len(corpora)) + "\n")
	for _, k := range order {
		start := "cold"
		if k.inherit {
			start = "inherited"
		}
		fmt.Fprintf(&b, "| %s | %s | %s |", churnPeriodName(k.period), start, k.detector)
		for _, c := range corpora {
			r := byKey[k][c]
			fmt.Fprintf(&b, " %.2f (%.2f) / %.2f (%.2f) | %.1f / %.1f |", r.F1[0], r.Precision[0], r.F1[1], r.Precision[1], r.ScoresTransfer[0], r.ScoresTransfer[1])
		}
		b.WriteString("\n")
	}
	return b.String()
}

func churnPeriodName(d time.Duration) string {
	const day = 24 * time.Hour
	switch {
	case d == day:
		return "day"
	case d%day == 0:
		return fmt.Sprintf("%d days", d/day)
	}
	return d.String()
}
