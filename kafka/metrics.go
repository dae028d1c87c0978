package kafka

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the Kafka bridge's self-metrics. Create them once per process
// with NewMetrics and share them between consumer and producer.
type Metrics struct {
	lag              *prometheus.GaugeVec
	records          *prometheus.CounterVec
	samples          *prometheus.CounterVec
	deadLettered     prometheus.Counter
	batchDuration    prometheus.Histogram
	rebalances       *prometheus.CounterVec
	produceDuration  prometheus.Histogram
	producedRecords  *prometheus.CounterVec
	producedSamples  prometheus.Counter
	stateRestored    prometheus.Counter
	stateWritten     prometheus.Counter
	stateTombstones  prometheus.Counter
	restoreDuration  prometheus.Histogram
	checkpointErrors prometheus.Counter
}

// NewMetrics creates the metrics and registers them on reg (may be nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sentinel_mesh_kafka_consumer_lag",
			Help: "Records between the last consumed offset and the high watermark, per owned partition.",
		}, []string{"topic", "partition"}),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sentinel_mesh_kafka_consumer_records_total",
			Help: "Records consumed by outcome: ok, or the reason a bad record was skipped.",
		}, []string{"outcome"}),
		samples: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sentinel_mesh_kafka_consumer_samples_total",
			Help: "Samples of consumed records by outcome (accepted, out_of_order, nan, stale, unselected, series_cap, tenant_series_cap, invalid_series).",
		}, []string{"outcome"}),
		deadLettered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sentinel_mesh_kafka_consumer_dead_lettered_records_total",
			Help: "Bad records copied to kafka.consumer.dead_letter_topic.",
		}),
		batchDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sentinel_mesh_kafka_consumer_batch_duration_seconds",
			Help:    "Time to decode, append, flush and commit one polled batch.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 8),
		}),
		rebalances: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sentinel_mesh_kafka_consumer_rebalances_total",
			Help: "Partition assignment changes by kind (assigned, revoked, lost).",
		}, []string{"kind"}),
		produceDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sentinel_mesh_kafka_produce_duration_seconds",
			Help:    "Time from producing a remote-write request's records to their acknowledgement (acks=all).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 9),
		}),
		producedRecords: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sentinel_mesh_kafka_producer_records_total",
			Help: "Records produced by the remote-write forwarder by outcome (ok, error).",
		}, []string{"outcome"}),
		producedSamples: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sentinel_mesh_kafka_producer_samples_total",
			Help: "Samples acknowledged by Kafka.",
		}),
		stateRestored: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sentinel_mesh_kafka_state_series_restored_total",
			Help: "Series states imported from the state topic after partitions were assigned.",
		}),
		stateWritten: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sentinel_mesh_kafka_state_series_written_total",
			Help: "Series states written to the state topic.",
		}),
		stateTombstones: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sentinel_mesh_kafka_state_tombstones_written_total",
			Help: "Tombstones written to the state topic for series that expired from the detector.",
		}),
		restoreDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sentinel_mesh_kafka_state_restore_duration_seconds",
			Help:    "Time to restore the series state of newly assigned partitions.",
			Buckets: prometheus.ExponentialBuckets(0.01, 3, 8),
		}),
		checkpointErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sentinel_mesh_kafka_state_checkpoint_errors_total",
			Help: "State checkpoints that failed.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.lag, m.records, m.samples, m.deadLettered, m.batchDuration, m.rebalances,
			m.produceDuration, m.producedRecords, m.producedSamples, m.stateRestored, m.stateWritten,
			m.stateTombstones, m.restoreDuration, m.checkpointErrors)
	}
	return m
}
