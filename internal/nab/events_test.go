package nab

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
)

// handMadeEvents is a hand-made series of 1,000 rows at 5 minutes (warm-up
// 150) with two incidents, the first opened twice (a reopen), the second
// missed, one false open and an early one (in the warm-up). Raw holds the
// opens' scores and one below the threshold after the second incident.
func handMadeEvents() (*Corpus, *Output) {
	const n = 1000
	s := &Series{Path: "cat/x.csv", Times: make([]time.Time, n), Values: make([]float64, n),
		Windows: []Window{{Start: 400, End: 420}, {Start: 700, End: 705}}}
	for i := range s.Times {
		s.Times[i] = time.Unix(int64(i)*300, 0).UTC()
	}
	c := &Corpus{Series: []*Series{s}}
	o := &Output{Scores: [][]float64{make([]float64, n)}, Raw: [][]float64{make([]float64, n)},
		Causes: [][]detector.Cause{make([]detector.Cause, n)}}
	for _, open := range []struct {
		row   int
		cause detector.Cause
	}{
		{100, detector.CauseLevel},      // in the warm-up: an early false open only
		{405, detector.CausePrediction}, // detects the first incident after 5 rows
		{425, detector.CausePrediction}, // reopens inside it (up to 10 rows after its end)
		{600, detector.CauseSeasonal},   // false
	} {
		o.Scores[0][open.row], o.Raw[0][open.row], o.Causes[0][open.row] = 0.9, 0.9, open.cause
	}
	o.Raw[0][712] = 0.55 // under the threshold, 7 rows after the second incident
	return c, o
}

// The event rules on handMadeEvents.
func TestScoreEvents(t *testing.T) {
	c, o := handMadeEvents()
	got := ScoreEvents(c, o)
	require.Equal(t, 3, got.Opens)
	require.Equal(t, 2, got.TrueOpens)
	require.Equal(t, 2, got.Incidents)
	require.Equal(t, 1, got.Detected)
	require.InDelta(t, 2.0/3, got.Precision, 1e-12)
	require.InDelta(t, 0.5, got.IncidentPrecision, 1e-12, "one detected incident, one false open")
	require.InDelta(t, 0.5, got.Recall, 1e-12)
	require.Equal(t, 5.0, got.DelayMedian)
	require.Equal(t, map[string]CauseOpens{"prediction": {Opens: 2, TrueOpens: 2}, "seasonal": {Opens: 1}}, got.ByCause)
	require.Equal(t, 1, got.EarlyFalse)
	require.InDelta(t, 150*300.0/86400, got.EarlySeriesDays, 1e-9, "the warm-up's 150 rows of 5 minutes")
	require.InDelta(t, 1/got.EarlySeriesDays, got.EarlyFalsePerDay, 1e-12)
}
