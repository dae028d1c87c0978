package detector

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the detector's self-metrics, registered once per Detector.
type metrics struct {
	seriesCreated      prometheus.Counter
	seriesExpired      prometheus.Counter
	seriesLimitReached prometheus.Counter
	samplesDropped     *prometheus.CounterVec
	samplesScored      prometheus.Counter
	samplesUnscored    *prometheus.CounterVec
	batchSize          prometheus.Histogram
	inferenceDuration  prometheus.Histogram
	inferenceErrors    prometheus.Counter
	predictionLatency  prometheus.Histogram
	anomaliesOpen      prometheus.Gauge
	events             *prometheus.CounterVec
	modelInfo          *prometheus.GaugeVec
	resultLogDropped   prometheus.Counter
	lastSampleUnix     atomic.Int64 // wall clock of the newest accepted sample
}

func newMetrics(reg prometheus.Registerer, d *Detector) *metrics {
	m := &metrics{
		seriesCreated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sentinel_mesh_series_created_total",
			Help: "Series the detector started tracking.",
		}),
		seriesExpired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sentinel_mesh_series_expired_total",
			Help: "Series removed after detector.series_idle_timeout without samples.",
		}),
		seriesLimitReached: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sentinel_mesh_series_limit_reached_total",
			Help: "Append calls whose new series was refused because detector.max_series was reached.",
		}),
		samplesDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sentinel_mesh_samples_dropped_total",
			Help: "Samples not routed into series state, by reason.",
		}, []string{"reason"}),
		samplesScored: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sentinel_mesh_samples_scored_total",
			Help: "Samples compared with a prediction.",
		}),
		samplesUnscored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sentinel_mesh_samples_unscored_total",
			Help: "Accepted samples that got no score (warmup: too little history; inference_lag: prediction not ready).",
		}, []string{"reason"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sentinel_mesh_inference_batch_size",
			Help:    "Windows scored per ONNX Runtime call.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 8),
		}),
		inferenceDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sentinel_mesh_inference_duration_seconds",
			Help:    "Duration of one ONNX Runtime call.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 9),
		}),
		inferenceErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sentinel_mesh_inference_errors_total",
			Help: "Failed ONNX Runtime calls.",
		}),
		predictionLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sentinel_mesh_prediction_latency_seconds",
			Help:    "Time from a sample's arrival to the prediction its successor is scored against.",
			Buckets: prometheus.ExponentialBucketsRange(0.001, 10, 20),
		}),
		anomaliesOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sentinel_mesh_anomalies_open",
			Help: "Anomalies currently open.",
		}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sentinel_mesh_anomaly_events_total",
			Help: "Anomaly events, by kind (open, close).",
		}, []string{"kind"}),
		resultLogDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sentinel_mesh_result_log_dropped_total",
			Help: "Scored results not kept for the remote-write output because the result log was full.",
		}),
		modelInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sentinel_mesh_model_info",
			Help: "The model in use; value 1 for the current version.",
		}, []string{"version"}),
	}
	for _, r := range []string{"out_of_order", "nan", "stale", "unselected", "series_limit"} {
		m.samplesDropped.WithLabelValues(r)
	}
	for _, r := range []string{"warmup", "inference_lag"} {
		m.samplesUnscored.WithLabelValues(r)
	}
	for _, k := range []string{"open", "close"} {
		m.events.WithLabelValues(k)
	}
	if reg != nil {
		reg.MustRegister(
			m.seriesCreated, m.seriesExpired, m.seriesLimitReached, m.samplesDropped,
			m.samplesScored, m.samplesUnscored, m.batchSize, m.inferenceDuration,
			m.inferenceErrors, m.predictionLatency, m.anomaliesOpen, m.events, m.modelInfo, m.resultLogDropped,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "sentinel_mesh_series_active",
				Help: "Series the detector holds state for.",
			}, func() float64 { return float64(d.numSeries.Load()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "sentinel_mesh_last_sample_timestamp_seconds",
				Help: "When the detector last accepted a sample (wall clock); 0 before the first.",
			}, func() float64 { return float64(m.lastSampleUnix.Load()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "sentinel_mesh_series_limit",
				Help: "The configured detector.max_series.",
			}, func() float64 { return float64(d.cfg.MaxSeries) }),
		)
	}
	return m
}

func (m *metrics) countDrops(st AppendStats) {
	add := func(reason string, n int) {
		if n > 0 {
			m.samplesDropped.WithLabelValues(reason).Add(float64(n))
		}
	}
	add("out_of_order", st.OutOfOrder)
	add("nan", st.NaN)
	add("stale", st.Stale)
	add("unselected", st.Unselected)
	add("series_limit", st.SeriesCap)
}

func (m *metrics) setModel(version string) {
	m.modelInfo.Reset()
	m.modelInfo.WithLabelValues(version).Set(1)
}
