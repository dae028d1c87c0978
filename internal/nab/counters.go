package nab

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"
)

// CounterKinds are the traffic anomalies CounterCorpus injects: the rate a
// counter grows at, scaled by Factor for Duration.
var CounterKinds = []struct {
	Name     string
	Factor   float64
	Duration time.Duration
}{
	{"outage (no requests) for 15 min", 0, 15 * time.Minute},
	{"half the requests for 1 h", 0.5, time.Hour},
	{"three times the requests for 10 min", 3, 10 * time.Minute},
	{"1.5 times the requests for 1 h", 1.5, time.Hour},
}

// CounterCorpus is perKind Prometheus counters (requests_total) per kind of
// CounterKinds, sampled every step for days: about 100 requests a second on
// a daily cycle (±50 %), Poisson-like noise, one anomaly labelled at a random
// time on day 3 or later, and a process restart (the counter starts again
// from 0) on every day from the second on, away from the anomaly.
func CounterCorpus(perKind, days int, step time.Duration, seed uint64) *Corpus {
	rng := rand.New(rand.NewPCG(seed, 0xc0))
	start := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	n := int(time.Duration(days) * 24 * time.Hour / step)
	perDay := int(24 * time.Hour / step)
	c := &Corpus{Dir: "counters"}
	for k, kind := range CounterKinds {
		for i := range perKind {
			name := fmt.Sprintf("%d-%02d", k, i)
			s := &Series{Path: "counters/" + name + ".csv", Category: "counters", Name: name, Metric: "requests_total",
				Times: make([]time.Time, n), Values: make([]float64, n)}
			from := 2*perDay + rng.IntN(n-2*perDay-int(kind.Duration/step)-perDay/4)
			to := from + int(kind.Duration/step) - 1
			s.Windows = []Window{{Start: from, End: to}}
			restarts := map[int]bool{}
			for d := 1; d < days; d++ {
				r := d*perDay + rng.IntN(perDay)
				if r < from-perDay/8 || r > to+perDay/8 {
					restarts[r] = true
				}
			}
			total := 1e6 * rng.Float64()
			for j := range n {
				s.Times[j] = start.Add(time.Duration(j) * step)
				rate := 100 * (1 + 0.5*math.Sin(2*math.Pi*float64(j%perDay)/float64(perDay)))
				if j >= from && j <= to {
					rate *= kind.Factor
				}
				mean := rate * step.Seconds()
				inc := max(0, math.Round(mean+math.Sqrt(mean)*rng.NormFloat64()))
				if restarts[j] {
					total = 0 // the new process counts from 0
				}
				total += inc
				s.Values[j] = total
			}
			c.Series = append(c.Series, s)
		}
	}
	return c
}

// CounterResult is one detector's detection on a CounterCorpus.
type CounterResult struct {
	Series, Detected int
	// FalseOpens are the opens after the second day outside the anomaly
	// (and its grace of incidentMerge samples), over SeriesDays.
	FalseOpens int
	SeriesDays float64
}

// ScoreCounters counts, on an output of ModeEvents over c, the counters
// whose anomaly opened on its own samples (or within incidentMerge after
// it) and the opens elsewhere after the second day.
func ScoreCounters(c *Corpus, o *Output, step time.Duration) CounterResult {
	var r CounterResult
	skip := int(injectedFrom / step)
	for i, s := range c.Series {
		r.Series++
		n, days := opensOutsideWindow(s, o.Scores[i], skip, step)
		r.FalseOpens += n
		r.SeriesDays += days
		w := s.Windows[0]
		for j := max(skip, w.Start); j <= min(w.End+incidentMerge, len(s.Values)-1); j++ {
			if o.Scores[i][j] > 0 {
				r.Detected++
				break
			}
		}
	}
	return r
}

// CounterMarkdown is the counters table: a row per scrape interval and way
// of scoring (cols names them).
func CounterMarkdown(cols []string, results []CounterResult) string {
	var b strings.Builder
	b.WriteString("| scrape interval, detector, scored on | anomalies detected | false alarms (restarts included) |\n|---|---:|---:|\n")
	for i, r := range results {
		fmt.Fprintf(&b, "| %s | %d / %d | %d in %.0f series-days |\n", cols[i], r.Detected, r.Series, r.FalseOpens, r.SeriesDays)
	}
	return b.String()
}
