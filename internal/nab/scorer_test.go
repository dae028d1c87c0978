package nab

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// scores returns n zero scores with the given rows set to 1.
func scores(n int, hits ...int) []float64 {
	s := make([]float64, n)
	for _, h := range hits {
		s[h] = 1
	}
	return s
}

func TestProbationLength(t *testing.T) {
	tests := []struct{ n, want int }{
		{0, 0},
		{20, 3},      // floor(0.15*20) = 3
		{4033, 604},  // floor(604.95)
		{5000, 750},  // exactly the cap
		{15903, 750}, // capped
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, ProbationLength(tc.n), "n=%d", tc.n)
	}
}

// All hand-made files have 20 rows (probation: rows 0-2) and, unless said
// otherwise, one window [10,13] of length 4. Sigmoid values, with
// S(x) = 2/(1+exp(5x)) - 1 and S(-1) = 0.9866143:
//
//	TP row 10: S(-4/4)/S(-1) = 1
//	TP row 11: S(-3/4)/S(-1) = 0.9542/0.9866 = 0.9669891
//	TP row 12: S(-2/4)/S(-1) = 0.8597926
//	TP row 13: S(-1/4)/S(-1) = 0.5621241
//	FP row 14: S((14-13)/(4-1)) = S(1/3) = -0.6822618
//	FP row 15: S(2/3) = -0.9311096
//	FP row 19: S(6/3) = S(2) = -0.9999092; rows >= 13+3*3 = 22 would be -1
//
// One window gives null = -fn and perfect = +tp.
func TestScoreAt(t *testing.T) {
	win := []Window{{10, 13}}
	tests := []struct {
		name       string
		file       File
		profile    Profile
		raw        float64
		norm       float64
		tp, fn, fp int
	}{
		{
			name: "no detection costs fn", file: File{Scores: scores(20), Windows: win},
			profile: Standard, raw: -1, norm: 0, fn: 1,
		},
		{
			name: "detection at the left edge earns 1", file: File{Scores: scores(20, 10), Windows: win},
			profile: Standard, raw: 1, norm: 100, tp: 1,
		},
		{
			// Only the earliest of rows 11 and 13 counts: 0.9669891.
			// Normalised: 100*(0.9669891+1)/2 = 98.349455.
			name: "earliest detection counts", file: File{Scores: scores(20, 11, 13), Windows: win},
			profile: Standard, raw: 0.9669891, norm: 98.349455, tp: 1,
		},
		{
			// TP at the right edge 0.5621241, FP at row 15: 0.11 * -0.9311096 = -0.1024221.
			// raw = 0.4597020, normalised 100*(1.4597020)/2 = 72.98510.
			name: "FP after a window is relative to it", file: File{Scores: scores(20, 13, 15), Windows: win},
			profile: Standard, raw: 0.4597020, norm: 72.98510, tp: 1, fp: 1,
		},
		{
			// The same with fp = 0.22: 0.5621241 - 0.2048441 = 0.3572800; normalised 67.86400.
			name: "reward_low_FP_rate doubles the FP cost", file: File{Scores: scores(20, 13, 15), Windows: win},
			profile: LowFP, raw: 0.3572800, norm: 67.86400, tp: 1, fp: 1,
		},
		{
			// FP at row 5 with no window before it: -0.11. Missed window: -2.
			// null = -2, perfect = 1, raw = -2.11, normalised 100*(-0.11)/3 = -3.666667.
			name: "reward_low_FN_rate and FP before any window", file: File{Scores: scores(20, 5), Windows: win},
			profile: LowFN, raw: -2.11, norm: -3.666667, fn: 1, fp: 1,
		},
		{
			// Row 1 is probationary and ignored; row 14 is an FP: 0.11 * -0.6822618 = -0.0750488.
			name: "probationary rows are not scored", file: File{Scores: scores(20, 1, 14), Windows: win},
			profile: Standard, raw: -1.0750488, norm: -3.752440, fn: 1, fp: 1,
		},
		{
			// The window [0,2] lies in the probation: it is not counted (no
			// window left, so null = perfect and the normalised score is 0),
			// but the FP at row 19 is measured from it: 0.11 * S((19-2)/2) = -0.11.
			name: "window inside the probation", file: File{Scores: scores(20, 19), Windows: []Window{{0, 2}}},
			profile: Standard, raw: -0.11, norm: 0, fp: 1,
		},
		{
			// Window [1,4] overlaps the probation: counted, and detection at row 3
			// earns S(-(4-3+1)/4)/S(-1) = 0.8597926.
			name: "window overlapping the probation", file: File{Scores: scores(20, 3), Windows: []Window{{1, 4}}},
			profile: Standard, raw: 0.8597926, norm: 92.98963, tp: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := ScoreAt([]File{tc.file}, tc.profile, 0.5)
			require.InDelta(t, tc.raw, s.Raw, 1e-6)
			require.InDelta(t, tc.norm, s.Normalised, 1e-4)
			require.Equal(t, tc.tp, s.TP, "tp")
			require.Equal(t, tc.fn, s.FN, "fn")
			require.Equal(t, tc.fp, s.FP, "fp")
		})
	}
}

func TestOptimiseChoosesTheBestThreshold(t *testing.T) {
	// Two files, two windows. File a: the window [10,13] has 0.6 at row 12
	// (0.8597926) and an FP of 0.9 at row 5 (no window before: -0.11).
	// File b: window [10,13] has 0.7 at row 10 (1.0), FP 0.4 at row 15 (-0.1024221).
	//
	// Thresholds (standard profile, null = -2):
	//   > 0.9: nothing detected                      raw = -2
	//   0.9:   FP a5                                 raw = -2.11
	//   0.7:   + b10 (1 instead of -1)               raw = -0.11
	//   0.6:   + a12 (0.8597926 instead of -1)       raw = 1.7497926  <- best
	//   0.4:   + FP b15                              raw = 1.6473705
	//   0:     every other row too                   lower still
	a := File{Name: "a", Scores: make([]float64, 20), Windows: []Window{{10, 13}}}
	a.Scores[12], a.Scores[5] = 0.6, 0.9
	b := File{Name: "b", Scores: make([]float64, 20), Windows: []Window{{10, 13}}}
	b.Scores[10], b.Scores[15] = 0.7, 0.4
	files := []File{a, b}

	s := Optimise(files, Standard)
	require.Equal(t, 0.6, s.Threshold)
	require.InDelta(t, 1.7497926, s.Raw, 1e-6)
	require.InDelta(t, 100*(1.7497926+2)/4, s.Normalised, 1e-4)
	require.Equal(t, 2, s.TP)
	require.Equal(t, 1, s.FP)

	// With fp = 0.22 the FP at 0.9 costs 0.22 but the best threshold stays 0.6.
	s = Optimise(files, LowFP)
	require.Equal(t, 0.6, s.Threshold)
	require.InDelta(t, 1.8597926-0.22, s.Raw, 1e-6)
}

func TestOptimiseWithoutDetectionsIsNull(t *testing.T) {
	// Without windows every detection is an FP: the best is to detect
	// nothing (raw 0), and the normalised score is 0.
	f := File{Scores: scores(20, 5, 15)}
	s := Optimise([]File{f}, Standard)
	require.Equal(t, 0.0, s.Raw)
	require.Equal(t, 0.0, s.Normalised)
	require.Equal(t, 0, s.FP)
}

func TestOptimiseMatchesScoreAt(t *testing.T) {
	// The incremental sweep must agree with scoring from scratch at every
	// threshold it may choose.
	f := File{Scores: make([]float64, 40), Windows: []Window{{10, 13}, {20, 29}}}
	for i := range f.Scores {
		f.Scores[i] = float64((i*37)%17) / 17
	}
	for _, p := range Profiles {
		got := Optimise([]File{f}, p)
		for _, thr := range f.Scores {
			require.LessOrEqual(t, ScoreAt([]File{f}, p, thr).Raw, got.Raw+1e-9, "profile %s threshold %v", p.Name, thr)
		}
	}
}
