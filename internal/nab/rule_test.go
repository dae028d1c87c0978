package nab

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A threshold rule fires on a run of scores held longer than its `for`, on
// the sample that is held when the `for` has passed; a lone sample of a
// 5-minute series is held exactly 5 minutes and does not fire for 5m.
func TestThresholdRulePages(t *testing.T) {
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	series := func(step time.Duration, raw []float64) (*Corpus, *Output) {
		s := &Series{Path: "c/x.csv", Times: make([]time.Time, len(raw)), Values: make([]float64, len(raw))}
		for i := range raw {
			s.Times[i] = start.Add(time.Duration(i) * step)
		}
		return &Corpus{Series: []*Series{s}}, &Output{Detector: "d", Raw: [][]float64{raw}, Scores: [][]float64{make([]float64, len(raw))}}
	}
	for _, tc := range []struct {
		name string
		step time.Duration
		rule ThresholdRule
		raw  []float64
		want []float64
	}{
		{"lone sample at 5 min", 5 * time.Minute, LegacyMixinRule,
			[]float64{0, 0.6, 0, 0}, []float64{0, 0, 0, 0}},
		{"two samples at 5 min: fires on the second", 5 * time.Minute, LegacyMixinRule,
			[]float64{0, 0.6, 0.9, 0, 0.2}, []float64{0, 0, 1, 0, 0}},
		{"for 0: every run fires on its first sample", 5 * time.Minute, ThresholdRule{MinScore: 0.5},
			[]float64{0.6, 0, 0.6, 0.7, 0}, []float64{1, 0, 1, 0, 0}},
		{"hourly: one sample is held an hour", time.Hour, LegacyMixinRule,
			[]float64{0, 0.6, 0}, []float64{0, 1, 0}},
		{"every minute: fires after 5 minutes, once per run", time.Minute, LegacyMixinRule,
			[]float64{0, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0, 0.6, 0.6}, []float64{0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0}},
		{"below the score: nothing", time.Minute, LegacyMixinRule,
			[]float64{0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4}, []float64{0, 0, 0, 0, 0, 0, 0, 0}},
		{"a run at the end is held until the last sample", time.Minute, LegacyMixinRule,
			[]float64{0, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6}, []float64{0, 0, 0, 0, 0, 0, 1, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, o := series(tc.step, tc.raw)
			got := tc.rule.Pages(c, o)
			require.Equal(t, tc.want, got.Scores[0])
			require.Equal(t, ModeEvents, got.Mode)
		})
	}
	require.Equal(t, "anomaly_score >= 0.5 for 5 min", LegacyMixinRule.String())
}
