package nab

import "slices"

// Event scoring: what an on-call person experiences at the detector's
// configured threshold, with no threshold tuned to the data (the rules of
// ../shared/ops-dev/README.md). An "open" is a row on which an anomaly
// opened, i.e. a row with a positive score in ModeEvents.

// incidentMerge: labelled runs fewer than this many rows apart are one
// incident, and an open up to this many rows after an incident's last row
// still detects it.
const incidentMerge = 10

// EventScore is the event scoring of one output.
type EventScore struct {
	Opens     int     `json:"opens"`
	TrueOpens int     `json:"true_opens"`
	Incidents int     `json:"incidents"`
	Detected  int     `json:"detected"`
	Precision float64 `json:"precision"`
	// IncidentPrecision counts each detected incident once, however often
	// an anomaly reopened inside it: detected / (detected + false opens).
	// Precision counts every open inside an incident as true, so a detector
	// that closes and reopens within one incident (paging twice) gains.
	IncidentPrecision float64 `json:"incident_precision"`
	Recall            float64 `json:"recall"`
	F1                float64 `json:"f1"`
	SeriesDays        float64 `json:"series_days"`
	FalsePerDay       float64 `json:"false_alarms_per_series_day"`
	// EarlyFalse counts the false opens in the warm-up rows, the part of a
	// series' life the other figures leave out and a user is paged in for
	// every new series: opens not within incidentMerge rows of a labelled
	// run. EarlyFalsePerDay divides them by the warm-up's series-days.
	EarlyFalse       int     `json:"early_false_opens"`
	EarlySeriesDays  float64 `json:"early_series_days"`
	EarlyFalsePerDay float64 `json:"early_false_alarms_per_series_day"`
	// DelayMean and DelayMedian are rows from an incident's first row to its
	// first open, over detected incidents.
	DelayMean   float64 `json:"delay_mean_rows"`
	DelayMedian float64 `json:"delay_median_rows"`
	// ByCause splits Opens and TrueOpens by the anomalies' causes
	// (detector.Cause), so a false alarm can be traced to a scoring term.
	ByCause map[string]CauseOpens `json:"by_cause,omitempty"`
}

// CauseOpens counts the opens of one cause.
type CauseOpens struct {
	Opens     int `json:"opens"`
	TrueOpens int `json:"true_opens"`
}

// incident is a span of rows [Start, End] made of labelled runs.
type incident struct{ Start, End int }

// incidents merges runs fewer than incidentMerge rows apart.
func incidents(ws []Window) []incident {
	var out []incident
	for _, w := range ws {
		if n := len(out); n > 0 && w.Start-out[n-1].End < incidentMerge {
			out[n-1].End = max(out[n-1].End, w.End)
			continue
		}
		out = append(out, incident{w.Start, w.End})
	}
	return out
}

// ScoreEvents applies the event scoring to an output of ModeEvents. The
// warm-up (NAB's probation: the first 15 % of a file, at most 750 rows)
// counts neither its opens nor the incidents that start in it; an open after
// it that falls in such an incident's span is neither true nor false.
func ScoreEvents(c *Corpus, o *Output) EventScore {
	var r EventScore
	var delays []float64
	for i, s := range c.Series {
		warm := ProbationLength(len(s.Values))
		if warm < len(s.Times) {
			r.SeriesDays += s.Times[len(s.Times)-1].Sub(s.Times[warm]).Hours() / 24
		}
		incs := incidents(s.Windows)
		if warm > 0 {
			r.EarlySeriesDays += s.Times[min(warm, len(s.Times)-1)].Sub(s.Times[0]).Hours() / 24
		}
		for j := range min(warm, len(s.Values)) {
			if o.Scores[i][j] > 0 && !nearIncident(incs, j) {
				r.EarlyFalse++
			}
		}
		detected := make([]bool, len(incs))
		for j := warm; j < len(s.Values); j++ {
			if o.Scores[i][j] <= 0 {
				continue
			}
			inSpan := incidentSpanOf(incs, j)
			var isTrue bool
			switch {
			case inSpan < 0:
			case incs[inSpan].Start >= warm:
				isTrue = true
				if !detected[inSpan] {
					detected[inSpan] = true
					delays = append(delays, float64(j-incs[inSpan].Start))
				}
			default:
				continue // in an incident that started in the warm-up
			}
			r.Opens++
			if isTrue {
				r.TrueOpens++
			}
			if o.Causes != nil {
				if r.ByCause == nil {
					r.ByCause = map[string]CauseOpens{}
				}
				k := o.Causes[i][j].String()
				co := r.ByCause[k]
				co.Opens++
				if isTrue {
					co.TrueOpens++
				}
				r.ByCause[k] = co
			}
		}
		for _, in := range incs {
			if in.Start >= warm {
				r.Incidents++
			}
		}
	}
	r.Detected = len(delays)
	if r.Opens > 0 {
		r.IncidentPrecision = float64(r.Detected) / float64(r.Detected+r.Opens-r.TrueOpens)
	}
	r.Precision, r.Recall, r.F1 = seriesCounts{opens: r.Opens, trueOpens: r.TrueOpens, detected: r.Detected, incidents: r.Incidents}.scores()
	if r.SeriesDays > 0 {
		r.FalsePerDay = float64(r.Opens-r.TrueOpens) / r.SeriesDays
	}
	if r.EarlySeriesDays > 0 {
		r.EarlyFalsePerDay = float64(r.EarlyFalse) / r.EarlySeriesDays
	}
	r.DelayMean, r.DelayMedian = meanMedian(delays)
	return r
}

// perSeriesEvents applies the event scoring to each series alone: the
// counts add up to ScoreEvents' over the corpus.
func perSeriesEvents(c *Corpus, o *Output) []seriesCounts {
	out := make([]seriesCounts, len(c.Series))
	for i := range c.Series {
		e := ScoreEvents(&Corpus{Series: c.Series[i : i+1]}, &Output{Scores: o.Scores[i : i+1]})
		out[i] = seriesCounts{opens: e.Opens, trueOpens: e.TrueOpens, detected: e.Detected, incidents: e.Incidents}
	}
	return out
}

// nearIncident says whether row j lies within incidentMerge rows of an
// incident (before or after it).
func nearIncident(incs []incident, j int) bool {
	for _, in := range incs {
		if j >= in.Start-incidentMerge && j <= in.End+incidentMerge {
			return true
		}
	}
	return false
}

// meanMedian returns the mean and median of xs (0, 0 when empty); xs is sorted.
func meanMedian(xs []float64) (mean, median float64) {
	if len(xs) == 0 {
		return 0, 0
	}
	var sum float64
	for _, x := range xs {
		sum += x
	}
	slices.Sort(xs)
	m := len(xs) / 2
	median = xs[m]
	if len(xs)%2 == 0 {
		median = (xs[m-1] + xs[m]) / 2
	}
	return sum / float64(len(xs)), median
}
