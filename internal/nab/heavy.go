package nab

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"
)

// Server metrics (latencies, request rates, queue lengths) are rarely
// Gaussian: a Student's t with few degrees of freedom or a log-normal is
// closer, and a detector calibrated on Gaussian-like noise pages on their
// ordinary outliers. HeavyTailCorpus measures that without any labels:
// every anomaly opened on it is a false alarm.

// HeavyTailKinds are the noise distributions of HeavyTailCorpus, heaviest
// tail first.
var HeavyTailKinds = []string{"student-t3", "log-normal", "gaussian"}

// HeavyTailCorpus is series of pure noise of one kind, sampled every step
// for days: Student's t with 3 degrees of freedom (100 + 3t), a log-normal
// (100·e^{0.3z}) or a Gaussian (100 + 3z). With hostSize > 0 the series are
// named <host>__<metric>.csv, so every hostSize of them are the metrics of
// one scrape target (job and instance labels: corroboration applies);
// otherwise each is its own target.
func HeavyTailCorpus(kind string, series int, days float64, step time.Duration, hostSize int, seed uint64) (*Corpus, error) {
	var draw func(*rand.Rand) float64
	switch kind {
	case "student-t3":
		draw = func(r *rand.Rand) float64 { return 100 + 3*studentT(r, 3) }
	case "log-normal":
		draw = func(r *rand.Rand) float64 { return 100 * math.Exp(0.3*r.NormFloat64()) }
	case "gaussian":
		draw = func(r *rand.Rand) float64 { return 100 + 3*r.NormFloat64() }
	default:
		return nil, fmt.Errorf("unknown noise kind %q (want one of %s)", kind, strings.Join(HeavyTailKinds, ", "))
	}
	rng := rand.New(rand.NewPCG(seed, 0x7a11))
	n := int(days * float64(24*time.Hour) / float64(step))
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := &Corpus{Dir: kind}
	for i := range series {
		name := fmt.Sprintf("%04d", i)
		if hostSize > 0 {
			name = fmt.Sprintf("host%03d__m%02d", i/hostSize, i%hostSize)
		}
		s := &Series{Path: kind + "/" + name + ".csv", Category: kind, Name: name,
			Times: make([]time.Time, n), Values: make([]float64, n)}
		for j := range n {
			s.Times[j] = start.Add(time.Duration(j) * step)
			s.Values[j] = draw(rng)
		}
		c.Series = append(c.Series, s)
	}
	return c, nil
}

// studentT draws from Student's t with nu (a whole number of) degrees of
// freedom: a standard normal over the root of a χ²(nu)/nu.
func studentT(r *rand.Rand, nu int) float64 {
	var chi2 float64
	for range nu {
		z := r.NormFloat64()
		chi2 += z * z
	}
	return r.NormFloat64() / math.Sqrt(chi2/float64(nu))
}

// HeavyTailResult is one detector's false alarms on one kind of noise.
type HeavyTailResult struct {
	Kind, Detector string
	// Opens and SeriesDays count after the skipped first days, each series
	// its own target and grouped into hosts.
	Opens, HostOpens int
	SeriesDays       float64
}

// HeavyTailMarkdown renders the results as one table.
func HeavyTailMarkdown(step time.Duration, hostSize int, rs []HeavyTailResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "| noise every %s | detector | series-days | opens, each series its own target (per series-day) | opens, hosts of %d series (per series-day) |\n", DurationText(step), hostSize)
	b.WriteString("|---|---|---:|---:|---:|\n")
	for _, r := range rs {
		fmt.Fprintf(&b, "| %s | %s | %.0f | %d (%.3f) | %d (%.3f) |\n", r.Kind, r.Detector, r.SeriesDays,
			r.Opens, float64(r.Opens)/r.SeriesDays, r.HostOpens, float64(r.HostOpens)/r.SeriesDays)
	}
	return b.String()
}
