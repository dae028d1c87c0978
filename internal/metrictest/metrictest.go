// Package metrictest reads metric values from a prometheus.Gatherer in
// tests, by metric name and label pairs.
package metrictest

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Value returns the sum of the values of every series of the counter, gauge
// or untyped metric name whose labels include all the name/value pairs kv.
// No matching series reads as 0, as a labelled counter reads before its
// first increment (a vector exports no series until a child is created).
// It fails the test if kv has odd length, the gather fails, or the metric is
// a histogram or summary.
func Value(t testing.TB, g prometheus.Gatherer, name string, kv ...string) float64 {
	t.Helper()
	v, _ := sum(t, g, name, kv)
	return v
}

// RequireValue is Value for a metric that must exist: it fails the test
// when no series of name matches kv (e.g. a collector that was never
// registered), where Value would return 0.
func RequireValue(t testing.TB, g prometheus.Gatherer, name string, kv ...string) float64 {
	t.Helper()
	v, n := sum(t, g, name, kv)
	if n == 0 {
		t.Fatalf("no series of metric %s with labels %q", name, kv)
	}
	return v
}

// sum returns the summed value and the number of matching series.
func sum(t testing.TB, g prometheus.Gatherer, name string, kv []string) (float64, int) {
	t.Helper()
	if len(kv)%2 != 0 {
		t.Fatalf("metric %s: odd number of label name/value arguments %q", name, kv)
	}
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("cannot gather metrics: %v", err)
	}
	total, n := 0.0, 0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if !hasLabels(m.GetLabel(), kv) {
				continue
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				total += m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				total += m.GetGauge().GetValue()
			case dto.MetricType_UNTYPED:
				total += m.GetUntyped().GetValue()
			default:
				t.Fatalf("metric %s is a %s, not a counter, gauge or untyped metric", name, mf.GetType())
			}
			n++
		}
	}
	return total, n
}

// hasLabels reports whether ls holds every name/value pair of kv.
func hasLabels(ls []*dto.LabelPair, kv []string) bool {
next:
	for i := 0; i < len(kv); i += 2 {
		for _, l := range ls {
			if l.GetName() == kv[i] && l.GetValue() == kv[i+1] {
				continue next
			}
		}
		return false
	}
	return true
}
