// Package exporter publishes the detector's results: the anomaly_* gauges on
// /metrics, and (in sibling files) the outputs that push them elsewhere.
package exporter

import (
	"sort"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
)

// ResultSource is what the collector reads; *detector.Detector implements it.
type ResultSource interface {
	Results(fn func(r *detector.Result) bool)
	Model() detector.Model
}

// LabelEnricher adds labels (e.g. Kubernetes workload) to a series' outputs.
type LabelEnricher interface {
	Enrich(tenant string, lbls detector.Labels, add func(name, value string))
}

// LabelNames are the names of the labels the exporter adds to every output.
type LabelNames struct {
	Metric string `yaml:"metric"` // carries the input series' __name__
	Tenant string `yaml:"tenant"` // carries the tenant; omitted for the empty tenant
	Model  string `yaml:"model"`  // carries the model version
}

// DefaultLabelNames are the output label names used unless configured.
var DefaultLabelNames = LabelNames{Metric: "metric", Tenant: "tenant", Model: "model"}

// Output metric names.
const (
	ScoreMetric    = "anomaly_score"
	ExpectedMetric = "anomaly_expected"
	LowerMetric    = "anomaly_lower"
	UpperMetric    = "anomaly_upper"
	// OpenMetric is 1 while an anomaly is open on the input series and
	// absent otherwise, as ALERTS is for a firing alert: a PromQL alert on
	// it pages exactly when the detector's anomaly opens and stops when it
	// closes, which a threshold on anomaly_score alone cannot (the score is
	// per sample, and an open anomaly's later samples score lower).
	OpenMetric = "anomaly_open"
)

// OutputLabels builds the label set of a series' outputs: the input labels
// without __name__, the metric name under names.Metric, tenant and model
// labels, and enrichment labels. An input label that clashes with an added
// one is kept as exported_<name>, as Prometheus does on scrape. The result is
// sorted by name and appended to dst.
func OutputLabels(dst []detector.Label, names LabelNames, tenant, model string, in detector.Labels, enr LabelEnricher) []detector.Label {
	start := len(dst)
	added := func(n string) bool {
		return n == names.Metric || (n == names.Tenant && tenant != "") || n == names.Model
	}
	for _, l := range in {
		switch {
		case l.Name == detector.MetricNameLabel:
			dst = append(dst, detector.Label{Name: names.Metric, Value: l.Value})
		case added(l.Name):
			dst = append(dst, detector.Label{Name: "exported_" + l.Name, Value: l.Value})
		default:
			dst = append(dst, l)
		}
	}
	if tenant != "" {
		dst = append(dst, detector.Label{Name: names.Tenant, Value: tenant})
	}
	dst = append(dst, detector.Label{Name: names.Model, Value: model})
	if enr != nil {
		enr.Enrich(tenant, in, func(n, v string) {
			for i := start; i < len(dst); i++ {
				if dst[i].Name == n {
					return // input labels win over enrichment
				}
			}
			dst = append(dst, detector.Label{Name: n, Value: v})
		})
	}
	out := dst[start:]
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return dst
}

// Collector exposes anomaly_score, anomaly_expected, anomaly_lower and
// anomaly_upper for every scored series, and anomaly_open for those with an
// open anomaly. It is an unchecked collector: the label names vary per
// series, so it describes nothing up front.
type Collector struct {
	src      ResultSource
	names    LabelNames
	enricher LabelEnricher
	descs    [4]*prometheus.Desc
	open     *prometheus.Desc
}

// NewCollector returns a collector over src. enricher may be nil.
func NewCollector(src ResultSource, names LabelNames, enricher LabelEnricher) *Collector {
	return &Collector{
		src:      src,
		names:    names,
		enricher: enricher,
		descs: [4]*prometheus.Desc{
			prometheus.NewDesc(ScoreMetric, "Anomaly score of the input series' latest sample, 0 (normal) to 1 (anomalous).", nil, nil),
			prometheus.NewDesc(ExpectedMetric, "Value the model expected for the input series' latest sample.", nil, nil),
			prometheus.NewDesc(LowerMetric, "Lower bound of the normal range for the latest sample.", nil, nil),
			prometheus.NewDesc(UpperMetric, "Upper bound of the normal range for the latest sample.", nil, nil),
		},
		open: prometheus.NewDesc(OpenMetric, openHelp, nil, nil),
	}
}

const openHelp = "1 while an anomaly is open on the input series (opened at the detector's threshold, not yet closed); absent otherwise."

// Describe sends nothing: the collector is unchecked.
func (c *Collector) Describe(chan<- *prometheus.Desc) {}

// Collect sends four gauges per scored series, five while an anomaly is open
// on it. Label pairs are built once per series and shared by its gauges.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	version := ""
	if m := c.src.Model(); m != nil {
		version = m.Version()
	}
	var buf []detector.Label
	c.src.Results(func(r *detector.Result) bool {
		buf = OutputLabels(buf[:0], c.names, r.Tenant, version, r.Labels, c.enricher)
		pairs := make([]dto.LabelPair, len(buf))
		ptrs := make([]*dto.LabelPair, len(buf))
		for i, l := range buf {
			pairs[i].Name = proto.String(strings.Clone(l.Name))
			pairs[i].Value = proto.String(strings.Clone(l.Value))
			ptrs[i] = &pairs[i]
		}
		values := [4]float64{r.Score, r.Expected, r.Lower, r.Upper}
		for i, v := range values {
			ch <- &gauge{desc: c.descs[i], labels: ptrs, value: v}
		}
		if r.Anomalous {
			ch <- &gauge{desc: c.open, labels: ptrs, value: 1}
		}
		return true
	})
}

// gauge is a const gauge whose labels were prepared by the collector.
type gauge struct {
	desc   *prometheus.Desc
	labels []*dto.LabelPair
	value  float64
}

func (g *gauge) Desc() *prometheus.Desc { return g.desc }

func (g *gauge) Write(m *dto.Metric) error {
	m.Label = g.labels
	m.Gauge = &dto.Gauge{Value: proto.Float64(g.value)}
	return nil
}
