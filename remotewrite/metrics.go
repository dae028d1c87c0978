package remotewrite

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Reasons of sentinel_mesh_remote_write_samples_dropped_total: samples this
// package refuses before they reach the Appender. What the Appender refuses
// (out of order, NaN, stale, unselected, series cap) the detector counts
// itself in sentinel_mesh_samples_dropped_total{reason}; counting it here too
// would double count and collide with that metric's name.
const (
	idxInvalidSeries  = iota // the series failed validation
	idxHistogram             // native histogram rejected (accept_native_histograms: false)
	idxTooManySamples        // request over max_samples_per_request (lower bound: decoding stops there)
	numDropReasons
)

var dropReasons = [numDropReasons]string{
	idxInvalidSeries:  "invalid_series",
	idxHistogram:      "histogram",
	idxTooManySamples: "too_many_samples",
}

// metrics groups all collectors of the handler so they are registered
// together.
type metrics struct {
	requests        *prometheus.CounterVec   // version, code
	samplesReceived *prometheus.CounterVec   // version
	samplesDropped  *prometheus.CounterVec   // reason
	seriesInvalid   *prometheus.CounterVec   // reason
	exemplars       prometheus.Counter       // received and ignored
	duration        *prometheus.HistogramVec // version
	size            *prometheus.HistogramVec // encoding: compressed|decoded
	rateLimited     *prometheus.CounterVec   // tenant

	// Pre-resolved children for the per-request hot path: WithLabelValues
	// hashes the label values on every call.
	dropped [numDropReasons]prometheus.Counter
	invalid [numProblems]prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sentinel_mesh_remote_write_requests_total",
			Help: "Remote-write requests by protocol version (1, 2, unknown) and HTTP status code.",
		}, []string{"version", "code"}),
		samplesReceived: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sentinel_mesh_remote_write_samples_received_total",
			Help: "Float and native histogram samples decoded from remote-write requests.",
		}, []string{"version"}),
		samplesDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sentinel_mesh_remote_write_samples_dropped_total",
			Help: "Received samples refused before reaching the detector, by reason.",
		}, []string{"reason"}),
		seriesInvalid: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sentinel_mesh_remote_write_series_invalid_total",
			Help: "Series rejected by validation, by reason.",
		}, []string{"reason"}),
		exemplars: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sentinel_mesh_remote_write_exemplars_ignored_total",
			Help: "Exemplars received and ignored (not reported as written).",
		}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:                            "sentinel_mesh_remote_write_request_duration_seconds",
			Help:                            "Time to read, decode, validate and append one remote-write request.",
			Buckets:                         []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
			NativeHistogramBucketFactor:     1.1,
			NativeHistogramMaxBucketNumber:  100,
			NativeHistogramMinResetDuration: 0,
		}, []string{"version"}),
		size: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sentinel_mesh_remote_write_request_size_bytes",
			Help:    "Remote-write request body size, snappy-compressed and decoded.",
			Buckets: prometheus.ExponentialBuckets(1024, 4, 10), // 1KiB .. 256MiB
		}, []string{"encoding"}),
		// One series per tenant that was ever rate limited: tenants are
		// few (operators set them), and the sample count is what an
		// operator raising a tenant's limit needs.
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sentinel_mesh_remote_write_tenant_samples_rate_limited_total",
			Help: "Samples of requests refused with 429 because their tenant exceeded limits.max_samples_per_second, by tenant.",
		}, []string{"tenant"}),
	}
	for i, r := range dropReasons {
		m.dropped[i] = m.samplesDropped.WithLabelValues(r)
	}
	for p := Problem(1); p < numProblems; p++ {
		m.invalid[p] = m.seriesInvalid.WithLabelValues(p.String())
	}
	// Initialise the version series so rate() works from the first scrape.
	for _, v := range []string{"1", "2"} {
		m.samplesReceived.WithLabelValues(v)
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{
		m.requests, m.samplesReceived, m.samplesDropped, m.seriesInvalid,
		m.exemplars, m.duration, m.size, m.rateLimited,
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("cannot register remote-write metrics: %w", err)
		}
	}
	return m, nil
}
