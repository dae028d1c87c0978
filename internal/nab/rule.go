package nab

import (
	"fmt"
	"strings"
	"time"
)

// ThresholdRule is a Prometheus alerting rule on anomaly_score alone,
// `anomaly_score >= MinScore` with `for: For`, as the monitoring mixin had
// before it alerted on anomaly_open. Prometheus sees the score as a gauge
// that holds each sample's value until the next sample.
type ThresholdRule struct {
	MinScore float64
	For      time.Duration
}

// LegacyMixinRule is the mixin's AnomalyDetected before anomaly_open.
var LegacyMixinRule = ThresholdRule{MinScore: 0.5, For: 5 * time.Minute}

func (r ThresholdRule) String() string {
	return fmt.Sprintf("anomaly_score >= %g for %s", r.MinScore, DurationText(r.For))
}

// Pages returns an output of ModeEvents whose opens are the rows where the
// rule starts firing: a run of samples scoring at least MinScore whose value
// is held for longer than For (until the next sample below it, or the end of
// the series) fires on the last sample at or before its start plus For.
func (r ThresholdRule) Pages(c *Corpus, o *Output) *Output {
	out := &Output{Detector: o.Detector + " (" + r.String() + ")", Mode: ModeEvents, Scores: make([][]float64, len(c.Series))}
	for k, s := range c.Series {
		raw := o.Raw[k]
		pages := make([]float64, len(raw))
		for i := 0; i < len(raw); {
			if raw[i] < r.MinScore {
				i++
				continue
			}
			j := i
			for j+1 < len(raw) && raw[j+1] >= r.MinScore {
				j++
			}
			held := s.Times[j].Sub(s.Times[i])
			if j+1 < len(raw) {
				held = s.Times[j+1].Sub(s.Times[i])
			}
			if held > r.For {
				at := i
				for at+1 <= j && !s.Times[at+1].After(s.Times[i].Add(r.For)) {
					at++
				}
				pages[at] = 1
			}
			i = j + 1
		}
		out.Scores[k] = pages
	}
	return out
}

// RuleMarkdown renders, per fold report, the event scoring of the
// detector's opens (what an alert on anomaly_open pages) beside that of
// the legacy threshold rule.
func RuleMarkdown(reports []*FoldReport) string {
	var b strings.Builder
	fmt.Fprintf(&b, "| corpus | fold | detector | alert on anomaly_open (the opens): precision / recall / F1, pages | `%s`: precision / recall / F1, pages |\n", LegacyMixinRule)
	b.WriteString("|---|---|---|---:|---:|\n")
	for _, r := range reports {
		e, l := r.Events, r.LegacyRuleEvents
		fmt.Fprintf(&b, "| %s | %s | %s | %.2f / %.2f / %.2f, %d | %.2f / %.2f / %.2f, %d |\n", r.Corpus, r.Fold, r.Detector,
			e.Precision, e.Recall, e.F1, e.Opens, l.Precision, l.Recall, l.F1, l.Opens)
	}
	return b.String()
}
