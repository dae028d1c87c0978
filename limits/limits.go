// Package limits holds the per-tenant limits (the `limits:` section): the
// most series a tenant may hold in the detector and the most samples per
// second it may push, with per-tenant overrides, as Mimir's limits and
// runtime overrides do. It has no dependencies on the rest of the project,
// so the detector (series) and the remote-write input (rate) both use it.
package limits

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"
	"time"
)

// Limits are the limits of one tenant. Zero means unlimited.
type Limits struct {
	// MaxSeries is the most series the tenant may hold in the detector;
	// samples of further new series are refused (remote-write: 400).
	MaxSeries int `yaml:"max_series"`
	// MaxSamplesPerSecond is the tenant's sustained ingestion rate over the
	// remote-write input (float and histogram samples, valid or not);
	// requests over it are refused whole with 429.
	MaxSamplesPerSecond float64 `yaml:"max_samples_per_second"`
	// BurstSamples is how many samples the tenant may push at once above
	// the rate (the token bucket's size). 0 with a rate set: one second of
	// the rate, at least DefaultMinBurst.
	BurstSamples int `yaml:"burst_samples"`
}

// Override is one entry of limits.overrides; keys left out take the
// section's defaults.
type Override struct {
	MaxSeries           *int     `yaml:"max_series,omitempty"`
	MaxSamplesPerSecond *float64 `yaml:"max_samples_per_second,omitempty"`
	BurstSamples        *int     `yaml:"burst_samples,omitempty"`
}

// Config is the limits section: defaults for every tenant, and overrides
// by tenant ID.
type Config struct {
	Limits    `yaml:",inline"`
	Overrides map[string]Override `yaml:"overrides,omitempty"`
}

// DefaultMinBurst is the smallest implied burst: Prometheus sends up to
// 2,000 samples per request by default (queue_config.max_samples_per_send),
// and a bucket smaller than one request would refuse it forever.
const DefaultMinBurst = 2000

// For returns the limits of tenant: its override merged over the defaults.
func (c *Config) For(tenant string) Limits {
	l := c.Limits
	if o, ok := c.Overrides[tenant]; ok {
		if o.MaxSeries != nil {
			l.MaxSeries = *o.MaxSeries
		}
		if o.MaxSamplesPerSecond != nil {
			l.MaxSamplesPerSecond = *o.MaxSamplesPerSecond
		}
		if o.BurstSamples != nil {
			l.BurstSamples = *o.BurstSamples
		}
	}
	return l
}

// SeriesLimit returns tenant's series limit; 0 is unlimited.
func (c *Config) SeriesLimit(tenant string) int { return c.For(tenant).MaxSeries }

// Enabled reports whether any limit is set, so inputs can skip the
// bookkeeping entirely when none is.
func (c *Config) Enabled() bool {
	if c.MaxSeries > 0 || c.MaxSamplesPerSecond > 0 {
		return true
	}
	for _, o := range c.Overrides {
		if (o.MaxSeries != nil && *o.MaxSeries > 0) || (o.MaxSamplesPerSecond != nil && *o.MaxSamplesPerSecond > 0) {
			return true
		}
	}
	return false
}

// Validate reports every invalid field, naming its YAML key. Tenant IDs of
// overrides are checked by the caller against its tenant rules.
func (c *Config) Validate() error {
	errs := c.Limits.validate("limits")
	tenants := make([]string, 0, len(c.Overrides))
	for t := range c.Overrides {
		tenants = append(tenants, t)
	}
	sort.Strings(tenants) // stable error order
	for _, t := range tenants {
		key := fmt.Sprintf("limits.overrides[%q]", t)
		if t == "" {
			errs = append(errs, fmt.Errorf("%s: tenant ID must not be empty", key))
		}
		l := c.For(t)
		errs = append(errs, l.validate(key)...)
	}
	return errors.Join(errs...)
}

func (l Limits) validate(key string) []error {
	var errs []error
	if l.MaxSeries < 0 {
		errs = append(errs, fmt.Errorf("%s.max_series must be >= 0 (0: unlimited)", key))
	}
	if !(l.MaxSamplesPerSecond >= 0) || math.IsInf(l.MaxSamplesPerSecond, 0) {
		errs = append(errs, fmt.Errorf("%s.max_samples_per_second must be a finite number >= 0 (0: unlimited)", key))
	}
	if l.BurstSamples < 0 {
		errs = append(errs, fmt.Errorf("%s.burst_samples must be >= 0 (0: one second of max_samples_per_second)", key))
	}
	return errs
}

// burst is the token bucket size of l.
func (l Limits) burst() float64 {
	if l.BurstSamples > 0 {
		return float64(l.BurstSamples)
	}
	return max(l.MaxSamplesPerSecond, DefaultMinBurst)
}

// RateLimiter is a token bucket per tenant over Config's
// max_samples_per_second. It is safe for concurrent use.
type RateLimiter struct {
	cfg Config

	mu        sync.Mutex
	buckets   map[string]*bucket
	lastSweep time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

// NewRateLimiter returns a limiter for cfg's rates.
func NewRateLimiter(cfg Config) *RateLimiter {
	return &RateLimiter{cfg: cfg, buckets: make(map[string]*bucket)}
}

// Decision is the outcome of RateLimiter.Allow.
type Decision struct {
	OK         bool
	Rate       float64       // the tenant's max_samples_per_second (0: unlimited)
	Burst      int           // its bucket size
	RetryAfter time.Duration // when refused: until the bucket holds enough
}

// sweepEvery bounds how often idle buckets are forgotten; a bucket refilled
// to its burst is the same as no bucket, so tenants that stopped sending
// (or tenant IDs sent once) do not accumulate.
const sweepEvery = time.Minute

// Allow takes n samples from tenant's bucket at now. A request is admitted
// while the bucket holds at least min(n, burst) tokens, and then takes all n:
// the bucket may go below zero, so a request larger than the burst is not
// refused forever and the long-run rate still holds.
func (r *RateLimiter) Allow(tenant string, n int, now time.Time) Decision {
	l := r.cfg.For(tenant)
	if l.MaxSamplesPerSecond <= 0 {
		return Decision{OK: true}
	}
	burst := l.burst()
	d := Decision{Rate: l.MaxSamplesPerSecond, Burst: int(burst)}

	r.mu.Lock()
	defer r.mu.Unlock()
	if now.Sub(r.lastSweep) >= sweepEvery {
		r.sweep(now)
	}
	b := r.buckets[tenant]
	if b == nil {
		b = &bucket{tokens: burst, last: now}
		r.buckets[tenant] = b
	}
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = min(burst, b.tokens+el*l.MaxSamplesPerSecond)
		b.last = now
	}
	need := min(float64(n), burst)
	if b.tokens >= need {
		b.tokens -= float64(n)
		d.OK = true
		return d
	}
	d.RetryAfter = time.Duration((need - b.tokens) / l.MaxSamplesPerSecond * float64(time.Second))
	return d
}

// sweep forgets buckets that are full again. Called with mu held.
func (r *RateLimiter) sweep(now time.Time) {
	r.lastSweep = now
	for t, b := range r.buckets {
		l := r.cfg.For(t)
		if l.MaxSamplesPerSecond <= 0 || b.tokens+now.Sub(b.last).Seconds()*l.MaxSamplesPerSecond >= l.burst() {
			delete(r.buckets, t)
		}
	}
}
