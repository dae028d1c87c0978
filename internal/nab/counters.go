package nab

import (
	"fmt"
	"math"
	"math/rand/v2"
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
