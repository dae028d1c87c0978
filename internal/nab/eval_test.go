package nab

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
)

// writeCorpus writes a small NAB-style corpus: one sine series with a level
// shift at row 300 and a window around it, and one series without windows
// that repeats a timestamp (as a few NAB files do).
func writeCorpus(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	ts := func(i int) string { return start.Add(time.Duration(i) * 5 * time.Minute).Format(timeLayout) }
	write := func(rel string, n int, value func(int) float64, tsOf func(int) string) {
		path := filepath.Join(dir, "data", rel)
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		var b strings.Builder
		b.WriteString("timestamp,value\n")
		for i := range n {
			fmt.Fprintf(&b, "%s,%g\n", tsOf(i), value(i))
		}
		require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o644))
	}
	write("cat/shift.csv", 400, func(i int) float64 {
		v := 10 + math.Sin(float64(i)/5)
		if i >= 300 {
			v += 20
		}
		return v
	}, ts)
	write("other/flat.csv", 100, func(i int) float64 { return float64(i % 3) }, func(i int) string {
		if i == 50 {
			return ts(49)
		}
		return ts(i)
	})
	windows := fmt.Sprintf(`{"cat/shift.csv": [["%s.000000", "%s.000000"]], "other/flat.csv": []}`, ts(290), ts(329))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "combined_windows.json"), []byte(windows), 0o644))
	return dir
}

func TestLoadCorpus(t *testing.T) {
	c, err := LoadCorpus(writeCorpus(t))
	require.NoError(t, err)
	require.Len(t, c.Series, 2)
	s := c.Series[0]
	require.Equal(t, "cat/shift.csv", s.Path)
	require.Equal(t, "cat", s.Category)
	require.Equal(t, "shift", s.Name)
	require.Equal(t, []Window{{290, 329}}, s.Windows)
	require.Equal(t, 500, c.Rows())
	require.Equal(t, 1, c.Windows())
	require.Equal(t, 40, sum(s.Label()))
}

func sum(xs []int) int {
	n := 0
	for _, x := range xs {
		n += x
	}
	return n
}

func TestLoadCorpusErrors(t *testing.T) {
	tests := []struct {
		name    string
		windows string
		want    string
	}{
		{"window edge not a row", `{"cat/shift.csv": [["2030-01-01 00:00:00", "2030-01-02 00:00:00"]]}`, "matches no row"},
		{"bad json", `{`, "cannot parse combined_windows.json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeCorpus(t)
			require.NoError(t, os.WriteFile(filepath.Join(dir, "combined_windows.json"), []byte(tc.windows), 0o644))
			_, err := LoadCorpus(dir)
			require.ErrorContains(t, err, tc.want)
		})
	}
	_, err := LoadCorpus(t.TempDir())
	require.ErrorContains(t, err, "cannot read the windows")
}

func TestRunAndReport(t *testing.T) {
	dir := writeCorpus(t)
	c, err := LoadCorpus(dir)
	require.NoError(t, err)
	cfg := detector.DefaultConfig
	cfg.Scoring.LearningPeriod = 0 // the shift comes on the file's second day
	for _, mode := range []Mode{ModeScores, ModeEvents} {
		t.Run(string(mode), func(t *testing.T) {
			o, err := Run(c, Detector{Name: "det", Config: cfg, Model: detector.WindowMeanModel{W: 32}, Mode: mode})
			require.NoError(t, err)
			require.Len(t, o.Scores, 2)
			shift := o.Scores[0]
			// Nothing is scored before the window is full and warm.
			for i := range 32 + detector.DefaultScoringConfig.WarmupSamples {
				require.Zero(t, shift[i], "row %d", i)
			}
			// The level shift at row 300 is the clearest anomaly of the file.
			require.GreaterOrEqual(t, shift[300], detector.DefaultScoringConfig.Threshold)

			r := EvaluateFold("corpus", "A", c, o)
			require.Len(t, r.NAB, 3)
			for _, s := range r.NAB {
				require.Equal(t, 1, s.TP, s.Profile)
				require.Greater(t, s.Normalised, 90.0, s.Profile)
			}
			if mode == ModeEvents {
				require.Equal(t, 1, r.Events.Detected)
				require.Equal(t, 1, r.Events.Incidents)
				require.LessOrEqual(t, r.Events.DelayMean, 10.0)
				// Every open is counted under its cause, and the shift's is
				// the model's prediction error (the window mean still
				// predicts the old level).
				var opens, trueOpens int
				for _, co := range r.Events.ByCause {
					opens, trueOpens = opens+co.Opens, trueOpens+co.TrueOpens
				}
				require.Equal(t, r.Events.Opens, opens)
				require.Equal(t, r.Events.TrueOpens, trueOpens)
				require.Equal(t, detector.CausePrediction, o.Causes[0][300])
				require.Contains(t, CauseMarkdown([]*FoldReport{r}), "| corpus | A | det | 1 (1), 1.00 |")
			}

			out := t.TempDir()
			require.NoError(t, WriteResults(out, c, o))
			f, err := os.Open(filepath.Join(out, "det", "cat", "det_shift.csv"))
			require.NoError(t, err)
			defer f.Close()
			recs, err := csv.NewReader(f).ReadAll()
			require.NoError(t, err)
			require.Len(t, recs, 401)
			require.Equal(t, []string{"timestamp", "value", "anomaly_score", "label"}, recs[0])
			require.Equal(t, "1", recs[301][3])
			require.Equal(t, "0", recs[1][3])
			raw, err := os.ReadFile(filepath.Join(out, "det-scores", "cat", "det-scores_shift.csv"))
			require.NoError(t, err)
			rawRecs, err := csv.NewReader(bytes.NewReader(raw)).ReadAll()
			require.NoError(t, err)
			require.Len(t, rawRecs, 401)
			require.Equal(t, strconv.FormatFloat(o.Raw[0][300], 'g', 6, 64), rawRecs[301][2])

			SetTransfer(r, r)
			require.NoError(t, WriteJSON(filepath.Join(out, "scores.json"), []*FoldReport{r}))
			require.Contains(t, FoldMarkdown([]*FoldReport{r}), "| corpus | A | det | window-mean-w32 |")
		})
	}
}

func TestUpdateDocSection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "doc.md")
	require.NoError(t, os.WriteFile(path, []byte("# T\n"+DocBegin+"\nold\n"+DocEnd+"\nafter\n"), 0o644))
	require.NoError(t, UpdateDocSection(path, DocBegin, DocEnd, "new\n"))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "# T\n"+DocBegin+"\nnew\n"+DocEnd+"\nafter\n", string(b))

	require.NoError(t, os.WriteFile(path, []byte("no markers"), 0o644))
	require.ErrorContains(t, UpdateDocSection(path, DocBegin, DocEnd, "x"), "markers")
}

func TestParseMode(t *testing.T) {
	m, err := ParseMode("events")
	require.NoError(t, err)
	require.Equal(t, ModeEvents, m)
	_, err = ParseMode("rows")
	require.Error(t, err)
}
