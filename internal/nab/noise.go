package nab

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// NoiseCorpus is series of pure Gaussian noise (mean 100, standard
// deviation 3) sampled every step, without labelled windows: every anomaly a
// detector opens on them is a false alarm.
func NoiseCorpus(series int, days float64, step time.Duration, seed uint64) *Corpus {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	n := int(days * float64(24*time.Hour) / float64(step))
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := &Corpus{Dir: "noise"}
	for i := range series {
		s := &Series{Path: fmt.Sprintf("noise/%04d.csv", i), Category: "noise", Name: fmt.Sprintf("%04d", i),
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
		for _, sc := range rows {
			if sc > 0 {
				n++
			}
		}
	}
	return n
}
