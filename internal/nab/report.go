package nab

import (
	"encoding/csv"
	"fmt"
	"strconv"
	"time"
)

// EventRecord is one line of an evaluation's event report: a labelled
// incident, found or missed, or a false open. The totals are ScoreEvents'
// (TestEventRecordsAddUpToScoreEvents); the lines say which incidents a user
// would have been paged for, how late, and which pages were wrong.
type EventRecord struct {
	File string // category/name.csv
	// Kind is "incident" or "false_open".
	Kind string
	// Start and End are an incident's first and last labelled rows (merged
	// runs, as the event rules merge them), or a false open's row.
	Start, End time.Time
	Rows       int
	// Scored is false for what the event rules leave out: an incident that
	// starts in the warm-up, an open in it (an early false open).
	Scored    bool
	Detected  bool
	FirstOpen time.Time // the open that detected the incident
	DelayRows int       // from the incident's first row to FirstOpen
	// Cause is the detecting open's, or the false open's.
	Cause string
	// MaxScore is the highest anomaly_score from the incident's first row
	// to incidentMerge rows after its last (what a lower threshold would
	// have needed), or the false open's.
	MaxScore float64
}

// EventRecords lists o's incidents and false opens on c under the event
// rules of ScoreEvents. o.Raw gives MaxScore (0 when o has none).
func EventRecords(c *Corpus, o *Output) []EventRecord {
	var recs []EventRecord
	for i, s := range c.Series {
		warm := ProbationLength(len(s.Values))
		incs := incidents(s.Windows)
		cause := func(j int) string {
			if o.Causes == nil {
				return ""
			}
			return o.Causes[i][j].String()
		}
		raw := func(j int) float64 {
			if o.Raw == nil {
				return 0
			}
			return o.Raw[i][j]
		}
		first := len(recs)
		for _, in := range incs {
			r := EventRecord{File: s.Path, Kind: "incident", Start: s.Times[in.Start], End: s.Times[in.End],
				Rows: in.End - in.Start + 1, Scored: in.Start >= warm}
			for j := in.Start; j <= min(in.End+incidentMerge, len(s.Values)-1); j++ {
				r.MaxScore = max(r.MaxScore, raw(j))
			}
			recs = append(recs, r)
		}
		for j := range s.Values {
			if o.Scores[i][j] <= 0 {
				continue
			}
			// After the warm-up an open detects the first incident whose
			// span holds it, as in ScoreEvents; one in the warm-up counts
			// only as an early false open, away from every incident.
			k := -1
			if j >= warm {
				k = incidentSpanOf(incs, j)
			} else if nearIncident(incs, j) {
				continue
			}
			if k >= 0 {
				if r := &recs[first+k]; !r.Detected {
					r.Detected, r.FirstOpen, r.DelayRows, r.Cause = true, s.Times[j], j-incs[k].Start, cause(j)
				}
				continue
			}
			recs = append(recs, EventRecord{File: s.Path, Kind: "false_open", Start: s.Times[j], End: s.Times[j],
				Rows: 1, Scored: j >= warm, Cause: cause(j), MaxScore: raw(j)})
		}
	}
	return recs
}

// incidentSpanOf returns the index of the first incident whose span holds
// row j (from its first row to incidentMerge rows after its last), or -1.
func incidentSpanOf(incs []incident, j int) int {
	for k, in := range incs {
		if j >= in.Start && j <= in.End+incidentMerge {
			return k
		}
	}
	return -1
}

// WriteEventRecords writes recs as CSV.
func WriteEventRecords(path string, recs []EventRecord) error {
	err := writeCSV(path, func(w *csv.Writer) {
		_ = w.Write([]string{"file", "kind", "start", "end", "rows", "scored", "detected", "first_open", "delay_rows", "cause", "max_score"})
		for _, r := range recs {
			first, delay := "", ""
			if r.Detected {
				first, delay = r.FirstOpen.Format(timeLayout), strconv.Itoa(r.DelayRows)
			}
			_ = w.Write([]string{r.File, r.Kind, r.Start.Format(timeLayout), r.End.Format(timeLayout), strconv.Itoa(r.Rows),
				strconv.FormatBool(r.Scored), strconv.FormatBool(r.Detected), first, delay, r.Cause,
				strconv.FormatFloat(r.MaxScore, 'f', 3, 64)})
		}
	})
	if err != nil {
		return fmt.Errorf("cannot write the event report %s: %w", path, err)
	}
	return nil
}
