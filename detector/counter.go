package detector

import (
	"fmt"
	"math"
	"strings"
)

// Counters. Prometheus counters only go up, and reset to 0 when their
// process restarts; their raw values say nothing about anomalies (an outage
// only bends the line), so a counter is scored on its per-second increase,
// the rate PromQL's rate() gives, and its expected value and band are rates.

// MetricType is what an input says a series is: Remote-Write 2.0 carries it
// per series; Remote-Write 1.0 and Kafka do not (MetricTypeUnknown).
type MetricType uint8

const (
	MetricTypeUnknown MetricType = iota
	MetricTypeGauge
	// MetricTypeCounter: a counter, or a cumulative series of a classic
	// histogram or summary (_bucket, _sum, _count).
	MetricTypeCounter
)

// UnmarshalYAML reads a metric type from "counter" or "gauge"
// (detector.deviation_overrides[].metric_type).
func (t *MetricType) UnmarshalYAML(unmarshal func(any) error) error {
	var s string
	if err := unmarshal(&s); err != nil {
		return err
	}
	switch s {
	case "counter":
		*t = MetricTypeCounter
	case "gauge":
		*t = MetricTypeGauge
	default:
		return fmt.Errorf("metric_type: unknown metric type %q: want counter or gauge", s)
	}
	return nil
}

// A counter's name ends in _total, and the cumulative series of a classic
// histogram or summary in one of cumulativeSuffixes: the names PromQL's
// rate() expects (it warns on others).
var cumulativeSuffixes = [...]string{"_sum", "_count", "_bucket"}

// isCounter says whether a series is scored on its rate (counter_rate): as
// the input says, or without that, by its name.
func isCounter(lbls Labels, t MetricType) bool {
	switch t {
	case MetricTypeCounter:
		return true
	case MetricTypeGauge:
		return false
	}
	name := lbls.Get(MetricNameLabel)
	if strings.HasSuffix(name, "_total") {
		return true
	}
	for _, suffix := range cumulativeSuffixes {
		if strings.HasSuffix(name, suffix) {
			return true
		}
	}
	return false
}

// toRate turns a counter's raw value at ms into its per-second increase
// since the previous value, at prevMs, and keeps the raw value for the next
// one; ok is false for the first value (after a stale marker or a restart
// too), which only sets the base.
func (s *series) toRate(raw float64, prevMs, ms int64) (rate float64, ok bool) {
	prev := s.prevRaw
	s.prevRaw = raw
	if math.IsNaN(prev) {
		return 0, false
	}
	return counterRate(prev, raw, prevMs, ms), true
}

// counterRate is a counter's per-second increase from prev at prevMs to v
// at ms. A decrease is a reset: the counter restarted from 0 and counted v
// since (Prometheus' rate semantics).
func counterRate(prev, v float64, prevMs, ms int64) float64 {
	inc := v - prev
	if inc < 0 {
		inc = v
	}
	return inc / (float64(ms-prevMs) / 1000)
}
