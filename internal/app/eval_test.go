package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sentinel-mesh/sentinel-mesh/internal/config"
)

// writeTinyCorpus writes a corpus in the dev corpora's layout: two
// categories of two files, 3 days at 5 minutes of a noisy daily sine, each
// with one labelled drop on day 3.
func writeTinyCorpus(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	windows := map[string][][2]string{}
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	const n = 3 * 288
	for c, cat := range []string{"alpha", "beta"} {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, "data", cat), 0o755))
		for f := range 2 {
			var b strings.Builder
			b.WriteString("timestamp,value\n")
			for i := range n {
				v := 100 + 10*sinDay(i) + float64((i*7919+c*31+f*17)%13-6)/3
				if i >= 700 && i < 706 {
					v = 20
				}
				fmt.Fprintf(&b, "%s,%.3f\n", start.Add(time.Duration(i)*5*time.Minute).Format("2006-01-02 15:04:05"), v)
			}
			name := fmt.Sprintf("%s/s%d.csv", cat, f)
			require.NoError(t, os.WriteFile(filepath.Join(dir, "data", name), []byte(b.String()), 0o644))
			ts := func(i int) string {
				return start.Add(time.Duration(i) * 5 * time.Minute).Format("2006-01-02 15:04:05.000000")
			}
			windows[name] = [][2]string{{ts(700), ts(705)}}
		}
	}
	js, err := json.Marshal(windows)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "combined_windows.json"), js, 0o644))
	return dir
}

// sinDay is a daily sine sampled every 5 minutes.
func sinDay(i int) float64 {
	const perDay = 288
	x := float64(i%perDay) / perDay
	// A cheap sine: a parabola per half period, enough for a daily shape.
	if x < 0.5 {
		return 16 * x * (0.5 - x)
	}
	return -16 * (x - 0.5) * (1 - x)
}

// The threshold sweep renders one row per threshold, the configured one in
// bold, and refuses a threshold the configuration would refuse.
func TestThresholdSweep(t *testing.T) {
	dir := writeTinyCorpus(t)
	def := config.Default()
	cfg := &def
	table, err := runThresholdSweep(context.Background(), []string{dir}, []string{"baseline"}, []float64{0.6, cfg.Detector.Scoring.Threshold}, cfg, io.Discard)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(table), "\n")
	require.Len(t, lines, 4, table)
	corpus := filepath.Base(dir)
	require.Equal(t, "| threshold | window-mean-baseline, "+corpus+": F1 A / B (precision A / B) |", lines[0])
	require.True(t, strings.HasPrefix(lines[2], "| 0.6 | "), lines[2])
	require.True(t, strings.HasPrefix(lines[3], fmt.Sprintf("| **%g** | **", cfg.Detector.Scoring.Threshold)), lines[3])

	_, err = runThresholdSweep(context.Background(), []string{dir}, []string{"baseline"}, []float64{1.5}, cfg, io.Discard)
	require.ErrorContains(t, err, "detector.scoring.threshold must be in (0,1]")
}

// The heavy-tails table has a row per kind of noise and model, and pure
// Gaussian noise opens nothing.
func TestHeavyTailsTable(t *testing.T) {
	def := config.Default()
	var out strings.Builder
	f := &evalFlags{heavyTails: 5, models: []string{"baseline"}}
	require.NoError(t, runHeavyTails(context.Background(), f, &def, &out))
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 2+3, out.String())
	require.Contains(t, lines[0], "| noise every 1 min |")
	require.Contains(t, lines[0], "hosts of 5 series")
	require.Equal(t, "| gaussian | window-mean-baseline | 25 | 0 (0.000) | 0 (0.000) |", lines[4])
}
