package nab

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// NoiseCorpus is series of pure Gaussian noise (mean 100, standard
// deviation 3) sampled every step, without labelled windows: every anomaly a
// detector opens on them is a false alarm. Each series is its own target
// (no job or instance label): nothing corroborates it or lowers it, the
// strictest case (grouped into hosts, the same noise opens no more).
func NoiseCorpus(series int, days float64, step time.Duration, seed uint64) *Corpus {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	n := int(days * float64(24*time.Hour) / float64(step))
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := &Corpus{Dir: "noise"}
	for i := range series {
		name := fmt.Sprintf("%04d", i)
		s := &Series{Path: "noise/" + name + ".csv", Category: "noise", Name: name,
			Times: make([]time.Time, n), Values: make([]float64, n)}
		for j := range n {
			s.Times[j] = start.Add(time.Duration(j) * step)
			s.Values[j] = 100 + 3*rng.NormFloat64()
		}
		c.Series = append(c.Series, s)
	}
	return c
}

// Opens counts the anomalies an output of ModeEvents opened.
func Opens(o *Output) int {
	n := 0
	for _, rows := range o.Scores {
		n += opensFrom(rows, 0)
	}
	return n
}

// OpensAfter counts the anomalies an output of ModeEvents (its scores of s)
// opened once skip had passed since the series' first row.
func OpensAfter(s *Series, scores []float64, skip time.Duration) int {
	first := 0
	for first < len(s.Times) && s.Times[first].Sub(s.Times[0]) < skip {
		first++
	}
	return opensFrom(scores, first)
}

func opensFrom(scores []float64, first int) int {
	n := 0
	for _, sc := range scores[min(first, len(scores)):] {
		if sc > 0 {
			n++
		}
	}
	return n
}

// PeriodicCorpus is series that repeat the same event every day at the same
// time, with Gaussian noise (standard deviation 3), sampled every step and
// without labelled windows: a 10-minute spike to five times the level at
// 02:00 (a nightly job), a two-hour plateau at twice the level from 01:00 (a
// batch window) and a daily sine of half the level. Once a series has shown
// its event, every anomaly opened on it is a false alarm. Series i of each
// kind are metrics of host i (host-NN__<kind>-NN.csv), whose events come at
// the same time of day, as a nightly job shows on several metrics of its
// host.
func PeriodicCorpus(perKind int, days float64, step time.Duration, seed uint64) *Corpus {
	rng := rand.New(rand.NewPCG(seed, 0xda11))
	n := int(days * float64(24*time.Hour) / float64(step))
	start := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	kinds := []struct {
		name  string
		level func(sinceMidnight time.Duration) float64
	}{
		{"nightly-spike", func(d time.Duration) float64 {
			if d >= 2*time.Hour && d < 2*time.Hour+10*time.Minute {
				return 500
			}
			return 100
		}},
		{"batch-window", func(d time.Duration) float64 {
			if d >= time.Hour && d < 3*time.Hour {
				return 200
			}
			return 100
		}},
		{"daily-sine", func(d time.Duration) float64 {
			return 100 + 50*math.Sin(2*math.Pi*d.Hours()/24)
		}},
	}
	c := &Corpus{Dir: "periodic"}
	for _, k := range kinds {
		for i := range perKind {
			name := fmt.Sprintf("host-%02d__%s-%02d", i, k.name, i)
			s := &Series{Path: "periodic/" + name + ".csv", Category: "periodic", Name: name,
				Times: make([]time.Time, n), Values: make([]float64, n)}
			for j := range n {
				t := start.Add(time.Duration(j) * step)
				s.Times[j] = t
				s.Values[j] = k.level(t.Sub(t.Truncate(24*time.Hour))) + 3*rng.NormFloat64()
			}
			c.Series = append(c.Series, s)
		}
	}
	return c
}
