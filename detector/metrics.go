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
	dropped            dropCounters // samplesDropped by reason, bound once
	samplesScored      prometheus.Counter
	samplesUnscored    *prometheus.CounterVec
	unscoredWarmup     prometheus.Counter // samplesUnscored{reason="warmup"}
	unscoredLearning   prometheus.Counter // samplesUnscored{reason="learning"}
	unscoredLag        prometheus.Counter // samplesUnscored{reason="inference_lag"}
	// samplesUnscored{reason="counter_start"}: a counter's first value
	// (counter_rate) only sets where it stands.
	unscoredCounterStart prometheus.Counter
	batchSize            prometheus.Histogram
	inferenceDuration    prometheus.Histogram
	inferenceErrors      prometheus.Counter
	predictionLatency    prometheus.Histogram
	anomaliesOpen        prometheus.Gauge
	events               *prometheus.CounterVec
	modelInfo            *prometheus.GaugeVec
	resultLogDropped     prometheus.Counter
	corroborated         prometheus.Counter
	uncorroborated       prometheus.Counter
	familiesRefused      prometheus.Counter
	seriesInherited      prometheus.Counter
	lastSampleUnix       atomic.Int64 // wall clock of the newest accepted sample
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
			Help: "Samples compared with a prediction after warm-up (warm-up samples count in sentinel_mesh_samples_unscored_total{reason=\"warmup\"}).",
		}),
		samplesUnscored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sentinel_mesh_samples_unscored_total",
			Help: "Accepted samples that got no score (warmup: too little history; learning: the series is younger than detector.scoring.learning_period; inference_lag: prediction not ready; counter_start: a counter's first value, or its first after a stale marker or a restart, only sets the base its rate is taken from).",
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
			Help: "Anomaly events, by kind (open, close) and cause (the scoring term that opened the anomaly: prediction, level, seasonal; a close counts under its open's, unknown after a restore).",
		}, []string{"kind", "cause"}),
		corroborated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sentinel_mesh_samples_corroborated_total",
			Help: "Samples whose score was lifted because another series of their entity (detector.entity_labels) was surprising at the same time (detector.scoring.corroboration_lift).",
		}),
		uncorroborated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sentinel_mesh_samples_uncorroborated_total",
			Help: "Samples just over the threshold whose score was lowered because no other series of their entity was surprising at the same time, although others have been before (detector.scoring.corroboration_lift).",
		}),
		seriesInherited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sentinel_mesh_series_inherited_total",
			Help: "New series that started from the calibration of a live series differing only in detector.churn_labels (a replaced pod's).",
		}),
		familiesRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sentinel_mesh_metric_families_refused_total",
			Help: "Metric family types from senders' metadata not kept because detector.max_metric_families was reached; their series are typed by name.",
		}),
		resultLogDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sentinel_mesh_result_log_dropped_total",
			Help: "Scored results not kept for the remote-write output because the result log was full.",
		}),
		modelInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sentinel_mesh_model_info",
			Help: "The model in use; value 1 for the current version.",
		}, []string{"version"}),
	}
	m.dropped = dropCounters{
		outOfOrder:  m.samplesDropped.WithLabelValues("out_of_order"),
		nan:         m.samplesDropped.WithLabelValues("nan"),
		stale:       m.samplesDropped.WithLabelValues("stale"),
		unselected:  m.samplesDropped.WithLabelValues("unselected"),
		seriesLimit: m.samplesDropped.WithLabelValues("series_limit"),
	}
	m.unscoredWarmup = m.samplesUnscored.WithLabelValues("warmup")
	m.unscoredLearning = m.samplesUnscored.WithLabelValues("learning")
	m.unscoredLag = m.samplesUnscored.WithLabelValues("inference_lag")
	m.unscoredCounterStart = m.samplesUnscored.WithLabelValues("counter_start")
	for _, k := range []string{"open", "close"} {
		for _, c := range Causes {
			m.events.WithLabelValues(k, c.String())
		}
	}
	if reg != nil {
		reg.MustRegister(
			m.seriesCreated, m.seriesExpired, m.seriesLimitReached, m.samplesDropped,
			m.samplesScored, m.samplesUnscored, m.batchSize, m.inferenceDuration,
			m.inferenceErrors, m.predictionLatency, m.anomaliesOpen, m.events, m.modelInfo, m.resultLogDropped, m.corroborated, m.uncorroborated,
			m.familiesRefused, m.seriesInherited,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "sentinel_mesh_series_active",
				Help: "Series the detector holds state for.",
			}, func() float64 { return float64(d.numSeries.Load()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "sentinel_mesh_last_sample_timestamp_seconds",
				Help: "When the detector last accepted a sample (wall clock); 0 before the first.",
			}, func() float64 { return float64(m.lastSampleUnix.Load()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "sentinel_mesh_metric_families",
				Help: "Metric family types kept from senders' metadata (over all tenants), by which series are scored on their rate or as sent (detector.counter_rate).",
			}, func() float64 { return float64(d.families.Len()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "sentinel_mesh_series_limit",
				Help: "The configured detector.max_series.",
			}, func() float64 { return float64(d.cfg.MaxSeries) }),
		)
	}
	return m
}

type dropCounters struct {
	outOfOrder, nan, stale, unselected, seriesLimit prometheus.Counter
}

func (m *metrics) countDrops(st AppendStats) {
	add := func(c prometheus.Counter, n int) {
		if n > 0 {
			c.Add(float64(n))
		}
	}
	add(m.dropped.outOfOrder, st.OutOfOrder)
	add(m.dropped.nan, st.NaN)
	add(m.dropped.stale, st.Stale)
	add(m.dropped.unselected, st.Unselected)
	add(m.dropped.seriesLimit, st.SeriesCap)
}

// scoreCounts counts one batch's scoring outcomes, so the shared counters
// are touched once per batch (one request) rather than once per sample.
type scoreCounts struct {
	scored, warmup, learning, lag, counterStart int
}

func (m *metrics) countScores(c scoreCounts) {
	if c.scored > 0 {
		m.samplesScored.Add(float64(c.scored))
	}
	if c.warmup > 0 {
		m.unscoredWarmup.Add(float64(c.warmup))
	}
	if c.learning > 0 {
		m.unscoredLearning.Add(float64(c.learning))
	}
	if c.lag > 0 {
		m.unscoredLag.Add(float64(c.lag))
	}
	if c.counterStart > 0 {
		m.unscoredCounterStart.Add(float64(c.counterStart))
	}
}

func (m *metrics) setModel(version string) {
	m.modelInfo.Reset()
	m.modelInfo.WithLabelValues(version).Set(1)
}
