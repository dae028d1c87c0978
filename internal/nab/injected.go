package nab

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
)

// Injected anomalies: detection power on series the detector was never
// tuned on. Each series is noise of standard deviation injectedSigma around
// a base (Gaussian and flat, Gaussian on a daily cycle, or heavy-tailed),
// into which one anomaly of a known kind and size is injected at a random
// time after the second day;
// its labelled window is the anomaly's span. What a user learns from it:
// which anomalies, how large, are caught, how fast, and at what cost in
// false alarms, at a given scrape interval.

const (
	injectedLevel = 100
	injectedSigma = 3
	// injectedAmplitude is the daily cycle's amplitude (10 σ).
	injectedAmplitude = 30
	// injectedDays is each series' length; the anomaly starts between
	// injectedFrom and injectedTo after the first sample, so the daily
	// profile has seen two days and the rest counts false alarms.
	injectedDays = 5
	injectedFrom = 48 * time.Hour
	injectedTo   = 96 * time.Hour
)

// InjectedKind is one kind and size of injected anomaly.
type InjectedKind struct {
	Name string // e.g. "spike 10σ"
	// Span is how long the anomaly lasts (one sample for a spike).
	Span time.Duration
	// DailyOnly: the kind only exists on a series with a daily cycle.
	DailyOnly bool
	// apply returns the value at offset d into the anomaly, whose value
	// without the anomaly would have been v; base is the value without its
	// noise, last the value of the sample before the anomaly.
	apply func(d time.Duration, v, base, last float64) float64
}

// InjectedKinds are the kinds measured, in the order of the table.
var InjectedKinds = []InjectedKind{
	{Name: "spike 6σ", apply: func(_ time.Duration, v, _, _ float64) float64 { return v + 6*injectedSigma }},
	{Name: "spike 10σ", apply: func(_ time.Duration, v, _, _ float64) float64 { return v + 10*injectedSigma }},
	{Name: "spike 20σ", apply: func(_ time.Duration, v, _, _ float64) float64 { return v + 20*injectedSigma }},
	{Name: "level shift 3σ, 1 h", Span: time.Hour, apply: func(_ time.Duration, v, _, _ float64) float64 { return v + 3*injectedSigma }},
	{Name: "level shift 5σ, 1 h", Span: time.Hour, apply: func(_ time.Duration, v, _, _ float64) float64 { return v + 5*injectedSigma }},
	{Name: "level shift 10σ, 1 h", Span: time.Hour, apply: func(_ time.Duration, v, _, _ float64) float64 { return v + 10*injectedSigma }},
	{Name: "drop to 0, 15 min", Span: 15 * time.Minute, apply: func(time.Duration, float64, float64, float64) float64 { return 0 }},
	{Name: "noise × 5, 1 h", Span: time.Hour, apply: func(_ time.Duration, v, base, _ float64) float64 { return base + 5*(v-base) }},
	{Name: "stuck at the last value, 2 h", Span: 2 * time.Hour, apply: func(_ time.Duration, _, _, last float64) float64 { return last }},
	{Name: "ramp up by 10σ over 4 h and back over 4 h", Span: 8 * time.Hour, apply: func(d time.Duration, v, _, _ float64) float64 {
		return v + 10*injectedSigma*(1-math.Abs(d.Hours()-4)/4)
	}},
	{Name: "daily cycle missing, 6 h", Span: 6 * time.Hour, DailyOnly: true, apply: func(_ time.Duration, v, base, _ float64) float64 {
		return v - base + injectedLevel
	}},
}

// InjectedBases are the series an anomaly is injected into.
var InjectedBases = []string{"flat", "daily", "heavy-tailed"}

func injectedBase(base string, t time.Time) float64 {
	if base == "daily" {
		d := t.Sub(t.Truncate(24 * time.Hour))
		return injectedLevel + injectedAmplitude*math.Sin(2*math.Pi*d.Hours()/24)
	}
	return injectedLevel
}

// injectedNoise is one draw of a base's noise, of unit variance: Gaussian,
// or Student's t with 3 degrees of freedom (scaled by 1/√3) on the
// heavy-tailed base, whose outliers are what server latencies and request
// rates show.
func injectedNoise(base string, rng *rand.Rand) float64 {
	z := rng.NormFloat64()
	if base != "heavy-tailed" {
		return z
	}
	var chi2 float64
	for range 3 {
		x := rng.NormFloat64()
		chi2 += x * x
	}
	return z / math.Sqrt(chi2)
}

// InjectedCorpus is perCell series for every base and kind (file
// <base>/<kind index>-<i>.csv, its own target), sampled every step for
// injectedDays days, each with one labelled anomaly.
func InjectedCorpus(perCell int, step time.Duration, seed uint64) *Corpus {
	rng := rand.New(rand.NewPCG(seed, 0x1a7e))
	n := int(injectedDays * 24 * time.Hour / step)
	start := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	c := &Corpus{Dir: "injected"}
	for _, base := range InjectedBases {
		for k, kind := range InjectedKinds {
			if kind.DailyOnly && base != "daily" {
				continue
			}
			for i := range perCell {
				name := fmt.Sprintf("%02d-%02d", k, i)
				s := &Series{Path: base + "/" + name + ".csv", Category: base, Name: name,
					Times: make([]time.Time, n), Values: make([]float64, n)}
				at := injectedFrom + time.Duration(rng.Int64N(int64(injectedTo-injectedFrom)))
				first := int(at / step)
				last := first + max(int(kind.Span/step), 1) - 1
				for j := range n {
					t := start.Add(time.Duration(j) * step)
					b := injectedBase(base, t)
					v := b + injectedSigma*injectedNoise(base, rng)
					if j >= first && j <= last {
						v = kind.apply(time.Duration(j-first)*step, v, b, s.Values[first-1])
					}
					s.Times[j], s.Values[j] = t, v
				}
				s.Windows = []Window{{Start: first, End: last}}
				c.Series = append(c.Series, s)
			}
		}
	}
	return c
}

// InjectedResult is how one detector fared on one base and kind.
type InjectedResult struct {
	Base, Kind string
	Series     int
	Detected   int
	// DelayMedian is the median time from the anomaly's first sample to
	// the open, over detected series.
	DelayMedian time.Duration
	// Causes counts the detecting opens by cause (detector.Cause).
	Causes [detector.CauseSeasonal + 1]int
}

// InjectedFalseAlarms is, per base (in the order of InjectedBases), the
// opens outside the anomaly (and its grace of incidentMerge samples) after
// injectedFrom, per series-day.
func InjectedFalseAlarms(c *Corpus, o *Output, step time.Duration) []float64 {
	skip := int(injectedFrom / step)
	opens := make([]int, len(InjectedBases))
	days := make([]float64, len(InjectedBases))
	for i, s := range c.Series {
		b := slices.Index(InjectedBases, s.Category)
		n, d := opensOutsideWindow(s, o.Scores[i], skip, step)
		opens[b] += n
		days[b] += d
	}
	out := make([]float64, len(InjectedBases))
	for b := range out {
		out[b] = float64(opens[b]) / days[b]
	}
	return out
}

// opensOutsideWindow counts the opens (scores of an output of ModeEvents)
// of a series with one labelled window from row skip on, outside the
// window and the incidentMerge rows after it, and the series-days from skip.
func opensOutsideWindow(s *Series, scores []float64, skip int, step time.Duration) (opens int, days float64) {
	w := s.Windows[0]
	for j := skip; j < len(s.Values); j++ {
		if scores[j] > 0 && (j < w.Start || j > w.End+incidentMerge) {
			opens++
		}
	}
	return opens, float64(len(s.Values)-skip) * step.Hours() / 24
}

// ScoreInjected counts, per base and kind, the series whose anomaly opened
// on one of its samples, or for a spike on the next one (the level terms see
// a sample one sample later). An open at the return to normal does not
// count: it is too late to be useful.
func ScoreInjected(c *Corpus, o *Output, step time.Duration) []InjectedResult {
	var out []InjectedResult
	var delays []float64 // in rows, over the detected series of out's last entry
	finish := func() {
		if len(out) > 0 {
			_, median := meanMedian(delays)
			out[len(out)-1].DelayMedian = time.Duration(median * float64(step))
		}
		delays = delays[:0]
	}
	for i, s := range c.Series {
		kind := InjectedKinds[kindIndex(s.Name)].Name
		if len(out) == 0 || out[len(out)-1].Base != s.Category || out[len(out)-1].Kind != kind {
			finish()
			out = append(out, InjectedResult{Base: s.Category, Kind: kind})
		}
		r := &out[len(out)-1]
		r.Series++
		w := s.Windows[0]
		end := w.End
		if w.Len() == 1 {
			end++
		}
		for j := w.Start; j <= min(end, len(s.Values)-1); j++ {
			if o.Scores[i][j] > 0 {
				r.Detected++
				if o.Causes != nil {
					r.Causes[o.Causes[i][j]]++
				}
				delays = append(delays, float64(j-w.Start))
				break
			}
		}
	}
	finish()
	return out
}

func kindIndex(name string) int {
	var k int
	fmt.Sscanf(name, "%d-", &k)
	return k
}

// InjectedMarkdown is the table of detection rates: a row per base and
// kind, a column per detector and step.
func InjectedMarkdown(cols []string, results [][]InjectedResult, falseAlarms [][]float64) string {
	var b strings.Builder
	b.WriteString("| series | anomaly |")
	for _, c := range cols {
		fmt.Fprintf(&b, " %s: detected (median delay) |", c)
	}
	b.WriteString("\n|---|---|")
	for range cols {
		b.WriteString("---:|")
	}
	b.WriteString("\n")
	for i, r := range results[0] {
		fmt.Fprintf(&b, "| %s | %s |", r.Base, r.Kind)
		for c := range cols {
			x := results[c][i]
			if x.Detected == 0 {
				fmt.Fprintf(&b, " 0 / %d |", x.Series)
				continue
			}
			fmt.Fprintf(&b, " %d / %d (%s) |", x.Detected, x.Series, DurationText(x.DelayMedian))
		}
		b.WriteString("\n")
	}
	for k, base := range InjectedBases {
		fmt.Fprintf(&b, "| %s | false alarms per series-day (after day 2, outside the anomaly) |", base)
		for c := range cols {
			fmt.Fprintf(&b, " %.3f |", falseAlarms[c][k])
		}
		b.WriteString("\n")
	}
	return b.String()
}

// InjectedCauseMarkdown is the table of the detecting opens' causes: which
// scoring term found each kind of anomaly, a column per detector and step.
func InjectedCauseMarkdown(cols []string, results [][]InjectedResult) string {
	var b strings.Builder
	b.WriteString("| series | anomaly |")
	for _, c := range cols {
		fmt.Fprintf(&b, " %s: cause of the detecting opens |", c)
	}
	b.WriteString("\n|---|---|" + strings.Repeat("---|", len(cols)) + "\n")
	for i, r := range results[0] {
		fmt.Fprintf(&b, "| %s | %s |", r.Base, r.Kind)
		for c := range cols {
			var parts []string
			for cause, n := range results[c][i].Causes {
				if n > 0 {
					parts = append(parts, fmt.Sprintf("%s %d", detector.Cause(cause), n))
				}
			}
			if len(parts) == 0 {
				parts = append(parts, "–")
			}
			fmt.Fprintf(&b, " %s |", strings.Join(parts, ", "))
		}
		b.WriteString("\n")
	}
	return b.String()
}

// DurationText is a duration as the docs write it: 15 s, 5 min, 1.75 min.
func DurationText(d time.Duration) string {
	if d < time.Minute {
		return fmt.Sprintf("%g s", d.Seconds())
	}
	return fmt.Sprintf("%.3g min", d.Minutes())
}
