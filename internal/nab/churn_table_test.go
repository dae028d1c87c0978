package nab

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestChurnMarkdown(t *testing.T) {
	report := func(corpus, fold, det string, f1, p, nab float64) *FoldReport {
		return &FoldReport{Corpus: corpus, Fold: fold, Detector: det,
			Events: EventScore{F1: f1, Precision: p}, ScoresTransfer: []Score{{Normalised: nab}}}
	}
	rows := ChurnRows(24*time.Hour, true, []*FoldReport{
		report("nab-dev", "A", "lstm", 0.62, 0.87, 49.7), report("nab-dev", "B", "lstm", 0.5, 0.55, 44.3),
		report("ops-dev", "A", "lstm", 0.59, 0.77, 45.8), report("ops-dev", "B", "lstm", 0.57, 0.7, 48.1),
	})
	rows = append(rows, ChurnRows(7*24*time.Hour, false, []*FoldReport{
		report("nab-dev", "A", "lstm", 0.47, 0.36, 53.3), report("nab-dev", "B", "lstm", 0.42, 0.36, 36.2),
		report("ops-dev", "A", "lstm", 0.56, 0.64, 46.3), report("ops-dev", "B", "lstm", 0.59, 0.63, 53.5),
	})...)
	require.Equal(t, `| a new pod every | series start | detector | nab-dev event F1 (precision) A / B | nab-dev NAB on scores, transfer A / B | ops-dev event F1 (precision) A / B | ops-dev NAB on scores, transfer A / B |
|---|---|---|---:|---:|---:|---:|
| day | inherited | lstm | 0.62 (0.87) / 0.50 (0.55) | 49.7 / 44.3 | 0.59 (0.77) / 0.57 (0.70) | 45.8 / 48.1 |
| 7 days | cold | lstm | 0.47 (0.36) / 0.42 (0.36) | 53.3 / 36.2 | 0.56 (0.64) / 0.59 (0.63) | 46.3 / 53.5 |
`, ChurnMarkdown(rows))
}
