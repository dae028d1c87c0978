package limits

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

func ptr[T any](v T) *T { return &v }

func TestFor(t *testing.T) {
	c := Config{
		Limits: Limits{MaxSeries: 100, MaxSamplesPerSecond: 1000},
		Overrides: map[string]Override{
			"big":  {MaxSeries: ptr(5000), BurstSamples: ptr(50000)},
			"free": {MaxSeries: ptr(0), MaxSamplesPerSecond: ptr(0.0)},
		},
	}
	for _, tc := range []struct {
		tenant string
		want   Limits
	}{
		{"other", Limits{MaxSeries: 100, MaxSamplesPerSecond: 1000}},
		{"big", Limits{MaxSeries: 5000, MaxSamplesPerSecond: 1000, BurstSamples: 50000}},
		{"free", Limits{}},
	} {
		require.Empty(t, cmp.Diff(tc.want, c.For(tc.tenant)), tc.tenant)
	}
	require.Equal(t, 5000, c.SeriesLimit("big"))
	require.True(t, c.Enabled())
	require.False(t, (&Config{}).Enabled())
	require.True(t, (&Config{Overrides: map[string]Override{"a": {MaxSeries: ptr(1)}}}).Enabled())
}

func TestValidateNamesKeys(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    Config
		want []string
	}{
		{"defaults", Config{Limits: Limits{MaxSeries: -1, MaxSamplesPerSecond: -2, BurstSamples: -3}},
			[]string{"limits.max_series must be >= 0", "limits.max_samples_per_second must be", "limits.burst_samples must be >= 0"}},
		{"override", Config{Overrides: map[string]Override{"team-a": {MaxSamplesPerSecond: ptr(-1.0)}}},
			[]string{`limits.overrides["team-a"].max_samples_per_second must be`}},
		{"empty tenant", Config{Overrides: map[string]Override{"": {}}}, []string{`limits.overrides[""]: tenant ID must not be empty`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.Validate()
			require.Error(t, err)
			for _, w := range tc.want {
				require.ErrorContains(t, err, w)
			}
		})
	}
	require.NoError(t, (&Config{Limits: Limits{MaxSeries: 10, MaxSamplesPerSecond: 5}}).Validate())
}

func TestRateLimiter(t *testing.T) {
	c := Config{Overrides: map[string]Override{
		"a": {MaxSamplesPerSecond: ptr(100.0), BurstSamples: ptr(1000)},
		"b": {MaxSamplesPerSecond: ptr(10.0)}, // implied burst: DefaultMinBurst
	}}
	t0 := time.Unix(1000, 0)
	type step struct {
		tenant string
		n      int
		at     time.Duration
		ok     bool
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"burst then refill", []step{
			{"a", 800, 0, true},
			{"a", 800, 0, false},              // 200 left
			{"a", 800, time.Second, false},    // 300
			{"a", 800, 6 * time.Second, true}, // 800
			{"a", 1, 6 * time.Second, false},  // 0
			{"a", 100, 7 * time.Second, true}, // 100
		}},
		{"a request over the burst passes on a full bucket and leaves a debt", []step{
			{"a", 5000, 0, true},
			{"a", 1, 30 * time.Second, false}, // -5000 + 3000
			{"a", 1, 41 * time.Second, true},
		}},
		{"tenants are separate; unlimited tenants always pass", []step{
			{"a", 1000, 0, true},
			{"a", 1000, 0, false},
			{"b", 2000, 0, true},
			{"b", 2000, 0, false},
			{"c", 1 << 30, 0, true},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewRateLimiter(c)
			for i, s := range tc.steps {
				d := r.Allow(s.tenant, s.n, t0.Add(s.at))
				require.Equal(t, s.ok, d.OK, "step %d", i)
				if !d.OK {
					require.Positive(t, d.RetryAfter)
					require.NotZero(t, d.Rate)
				}
			}
		})
	}
}

// Buckets of tenants that stopped sending are forgotten once full again.
func TestRateLimiterForgetsIdleTenants(t *testing.T) {
	r := NewRateLimiter(Config{Limits: Limits{MaxSamplesPerSecond: 100}})
	t0 := time.Unix(1000, 0)
	for i := range 100 {
		r.Allow(string(rune('a'+i%26))+string(rune('a'+i/26)), 10, t0)
	}
	require.Len(t, r.buckets, 100)
	r.Allow("x", 10, t0.Add(2*sweepEvery))
	require.Len(t, r.buckets, 1)
}
