// Package nab scores anomaly detectors with the rules of the Numenta Anomaly
// Benchmark (NAB) and runs the Sentinel Mesh detector over a NAB corpus.
//
// The scoring rules are those described in nab-dev's README:
//
//   - every row carries an anomaly score in [0,1] and is a detection when its
//     score is >= the threshold;
//   - the first 15% of a file (at most 750 rows) is probationary: never scored;
//   - inside an anomaly window only the earliest detection counts, weighted by
//     a scaled sigmoid of its position (1 at the left edge, ~0 at the right);
//   - a window without detection costs -fn;
//   - every detection outside a window costs fp times a sigmoid of its distance
//     past the previous window (in units of that window's length), -fp when no
//     window came before;
//   - the threshold is the one that maximises the raw score of the corpus, and
//     raw scores are normalised against the null and the perfect detector.
package nab

import (
	"cmp"
	"math"
	"slices"
)

// Profile weighs true positives, false negatives and false positives.
type Profile struct {
	Name       string
	TP, FN, FP float64
}

// The three NAB application profiles.
var (
	Standard   = Profile{Name: "standard", TP: 1, FN: 1, FP: 0.11}
	LowFP      = Profile{Name: "reward_low_FP_rate", TP: 1, FN: 1, FP: 0.22}
	LowFN      = Profile{Name: "reward_low_FN_rate", TP: 1, FN: 2, FP: 0.11}
	Profiles   = []Profile{Standard, LowFP, LowFN}
	maxSigmoid = scaledSigmoid(-1)
)

// Window is an anomaly window as inclusive row indices of its file.
type Window struct {
	Start, End int
}

// Len returns the number of rows in the window.
func (w Window) Len() int { return w.End - w.Start + 1 }

// File is one data file's detector output and its labelled windows.
type File struct {
	Name    string
	Scores  []float64 // one anomaly score per row
	Windows []Window  // sorted, non-overlapping
}

// ProbationLength returns how many leading rows of an n-row file are never
// scored: 15% of the file, at most 750 rows.
func ProbationLength(n int) int {
	return min(int(math.Floor(0.15*float64(n))), 750)
}

// scaledSigmoid is 2/(1+exp(5x)) - 1: ~1 at x = -1, 0 at x = 0, ~-1 at x = 1,
// and exactly -1 from x = 3 on.
func scaledSigmoid(x float64) float64 {
	if x >= 3 {
		return -1
	}
	return 2/(1+math.Exp(5*x)) - 1
}

// row is one scorable row: its score and what a detection there is worth.
type row struct {
	score  float64
	weight float64 // value of a detection here (TP credit or FP penalty)
	window int     // corpus-wide window index, or -1 outside windows
}

// TPWeight is the credit of a detection at row i of window w before the
// profile's tp weight: 1 at the left edge, falling along a sigmoid to about 0
// at the right edge.
func TPWeight(w Window, i int) float64 {
	pos := -float64(w.End-i+1) / float64(w.Len())
	return scaledSigmoid(pos) / maxSigmoid
}

// FPWeight is the (negative) value of a detection at row i outside any window
// before the profile's fp weight. prev is the last window ending before i, or
// nil: then the penalty is the full -1.
func FPWeight(prev *Window, i int) float64 {
	if prev == nil {
		return -1
	}
	// Distance past the window's end in units of its length. A one-row window
	// would divide by zero; treat it as length 2.
	x := float64(i-prev.End) / float64(max(prev.Len()-1, 1))
	return scaledSigmoid(x)
}

// rows returns the scorable rows of f, numbering its windows from firstWindow,
// and how many windows have at least one scorable row.
func (f *File) rows(p Profile, firstWindow int) ([]row, int) {
	n := len(f.Scores)
	prob := ProbationLength(n)
	out := make([]row, 0, n-prob)
	counted := 0
	wi := 0 // next window not yet ended
	var prev *Window
	for i := 0; i < n; i++ {
		for wi < len(f.Windows) && f.Windows[wi].End < i {
			prev = &f.Windows[wi]
			wi++
		}
		inWin := wi < len(f.Windows) && f.Windows[wi].Start <= i
		if i < prob {
			continue
		}
		r := row{score: f.Scores[i], window: -1}
		if inWin {
			w := f.Windows[wi]
			r.window = firstWindow + wi
			r.weight = p.TP * TPWeight(w, i)
			if i == prob || i == w.Start {
				counted++
			}
		} else {
			r.weight = p.FP * FPWeight(prev, i)
		}
		out = append(out, r)
	}
	return out, counted
}

// Score is the result of one profile over a corpus.
type Score struct {
	Profile    string  `json:"profile"`
	Threshold  float64 `json:"threshold"`
	Raw        float64 `json:"raw"`
	Null       float64 `json:"null"`
	Perfect    float64 `json:"perfect"`
	Normalised float64 `json:"normalised"`
	Windows    int     `json:"windows"`
	TP         int     `json:"tp"` // windows with a detection
	FN         int     `json:"fn"` // windows without
	FP         int     `json:"fp"` // detections outside windows
}

func (s *Score) normalise(p Profile) {
	s.Null = -p.FN * float64(s.Windows)
	s.Perfect = p.TP * float64(s.Windows)
	if s.Perfect > s.Null {
		s.Normalised = 100 * (s.Raw - s.Null) / (s.Perfect - s.Null)
	}
}

// ScoreAt scores the corpus at a fixed threshold.
func ScoreAt(files []File, p Profile, threshold float64) Score {
	s := Score{Profile: p.Name, Threshold: threshold}
	next := 0
	for fi := range files {
		rows, counted := files[fi].rows(p, next)
		next += len(files[fi].Windows)
		s.Windows += counted
		best := map[int]float64{}
		for _, r := range rows {
			if r.score < threshold {
				continue
			}
			if r.window < 0 {
				s.Raw += r.weight
				s.FP++
				continue
			}
			if b, ok := best[r.window]; !ok || r.weight > b {
				best[r.window] = r.weight
			}
		}
		for _, b := range best {
			s.Raw += b
		}
		s.TP += len(best)
	}
	s.FN = s.Windows - s.TP
	s.Raw -= p.FN * float64(s.FN)
	s.normalise(p)
	return s
}

// Optimise returns the score at the threshold that maximises the corpus's raw
// score. It sorts all scorable rows by descending score and lowers the
// threshold one distinct score at a time, updating the raw score
// incrementally: O(n log n) for n rows. Ties go to the highest threshold. A
// threshold above every score (no detection) scores like the null detector.
func Optimise(files []File, p Profile) Score {
	var all []row
	windows, next := 0, 0
	for fi := range files {
		rows, counted := files[fi].rows(p, next)
		next += len(files[fi].Windows)
		windows += counted
		all = append(all, rows...)
	}
	slices.SortStableFunc(all, func(a, b row) int { return cmp.Compare(b.score, a.score) })

	best := make([]float64, next)
	detected := make([]bool, next)
	raw := -p.FN * float64(windows)
	bestRaw, bestThr := raw, math.Inf(1)
	if len(all) > 0 {
		bestThr = math.Nextafter(all[0].score, math.Inf(1))
	}
	for i := 0; i < len(all); {
		thr := all[i].score
		for ; i < len(all) && all[i].score == thr; i++ {
			r := all[i]
			switch {
			case r.window < 0:
				raw += r.weight
			case !detected[r.window]:
				detected[r.window] = true
				best[r.window] = r.weight
				raw += r.weight + p.FN
			case r.weight > best[r.window]:
				raw += r.weight - best[r.window]
				best[r.window] = r.weight
			}
		}
		if raw > bestRaw+1e-12 {
			bestRaw, bestThr = raw, thr
		}
	}
	// Recompute at the chosen threshold for the counts (and as a check of the
	// incremental sums).
	return ScoreAt(files, p, bestThr)
}
