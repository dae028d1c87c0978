package nab

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The report of handMadeEvents: the first incident found 5 rows in by the
// prediction term (its reopen is no false open), the second missed with its
// highest score, the false open and the early one.
func TestEventRecords(t *testing.T) {
	c, o := handMadeEvents()
	s := c.Series[0]
	at := func(i int) time.Time { return s.Times[i] }
	want := []EventRecord{
		{File: "cat/x.csv", Kind: "incident", Start: at(400), End: at(420), Rows: 21, Scored: true, Detected: true, FirstOpen: at(405), DelayRows: 5, Cause: "prediction", MaxScore: 0.9},
		{File: "cat/x.csv", Kind: "incident", Start: at(700), End: at(705), Rows: 6, Scored: true, MaxScore: 0.55},
		{File: "cat/x.csv", Kind: "false_open", Start: at(100), End: at(100), Rows: 1, Cause: "level", MaxScore: 0.9},
		{File: "cat/x.csv", Kind: "false_open", Start: at(600), End: at(600), Rows: 1, Scored: true, Cause: "seasonal", MaxScore: 0.9},
	}
	require.Equal(t, want, EventRecords(c, o))

	path := filepath.Join(t.TempDir(), "events.csv")
	require.NoError(t, WriteEventRecords(path, EventRecords(c, o)))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	require.Len(t, lines, 5)
	require.Equal(t, "file,kind,start,end,rows,scored,detected,first_open,delay_rows,cause,max_score", lines[0])
	require.Equal(t, "cat/x.csv,incident,1970-01-02 09:20:00,1970-01-02 11:00:00,21,true,true,1970-01-02 09:45:00,5,prediction,0.900", lines[1])
	require.Equal(t, "cat/x.csv,incident,1970-01-03 10:20:00,1970-01-03 10:45:00,6,true,false,,,,0.550", lines[2])
}

// On random labels and opens, the report adds up to ScoreEvents' figures.
func TestEventRecordsAddUpToScoreEvents(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	c := &Corpus{}
	o := &Output{}
	for f := range 30 {
		n := 200 + rng.IntN(2000)
		s := &Series{Path: "cat/" + string(rune('a'+f)) + ".csv", Times: make([]time.Time, n), Values: make([]float64, n)}
		for i := range s.Times {
			s.Times[i] = time.Unix(int64(i)*300, 0)
		}
		for start := rng.IntN(300); start < n; start += 5 + rng.IntN(400) {
			end := min(start+rng.IntN(30), n-1)
			s.Windows = append(s.Windows, Window{Start: start, End: end})
			start = end
		}
		scores := make([]float64, n)
		for range rng.IntN(40) {
			scores[rng.IntN(n)] = 0.8
		}
		c.Series = append(c.Series, s)
		o.Scores = append(o.Scores, scores)
	}
	want := ScoreEvents(c, o)
	var incidents, detected, falseOpens, early int
	for _, r := range EventRecords(c, o) {
		switch {
		case r.Kind == "incident" && r.Scored:
			incidents++
			if r.Detected {
				detected++
			}
		case r.Kind == "false_open" && r.Scored:
			falseOpens++
		case r.Kind == "false_open":
			early++
		}
	}
	require.Positive(t, want.Detected)
	require.Positive(t, want.Opens-want.TrueOpens)
	require.Equal(t, want.Incidents, incidents)
	require.Equal(t, want.Detected, detected)
	require.Equal(t, want.Opens-want.TrueOpens, falseOpens)
	require.Equal(t, want.EarlyFalse, early)
}
