package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
	"github.com/sentinel-mesh/sentinel-mesh/kafka"
)

// Targets of --target.
const (
	TargetAll      = "all"
	TargetReceiver = "receiver"
	TargetDetector = "detector"
)

// kafkaState is what the Kafka bridge shares between New and its component.
type kafkaState struct {
	metrics  *kafka.Metrics
	producer *kafka.Producer
}

func (a *App) kafkaMetrics() *kafka.Metrics {
	if a.kafka.metrics == nil {
		a.kafka.metrics = kafka.NewMetrics(a.reg)
	}
	return a.kafka.metrics
}

// remoteWriteAppender is what the remote-write endpoint appends to: the
// detector, or in --target=receiver the Kafka producer (which is ready
// without a model: it only forwards).
func (a *App) remoteWriteAppender() (detector.Appender, func() bool, error) {
	switch a.opts.Target {
	case "", TargetAll, TargetDetector:
		return a.det, a.det.Ready, nil
	case TargetReceiver:
		if !a.cfg.Kafka.Enabled() {
			return nil, nil, errors.New("--target=receiver needs kafka.brokers and kafka.producer.topic")
		}
		p, err := kafka.NewProducer(a.cfg.Kafka, kafka.ProducerOptions{
			Selection:         a.cfg.Detector.Selection,
			MaxMetricFamilies: a.cfg.Detector.MaxMetricFamilies,
			Metrics:           a.kafkaMetrics(),
			Logger:            a.logger.With("component", "kafka-producer"),
		})
		if err != nil {
			return nil, nil, err
		}
		a.kafka.producer = p
		return p, func() bool { return true }, nil
	default:
		return nil, nil, fmt.Errorf("unknown --target %q (all, receiver, detector)", a.opts.Target)
	}
}

func init() {
	register(component{name: "kafka", build: buildKafka})
}

func buildKafka(a *App, _ *http.ServeMux) (func(context.Context) error, error) {
	if p := a.kafka.producer; p != nil {
		return func(ctx context.Context) error {
			<-ctx.Done()
			p.Close()
			return nil
		}, nil
	}
	if a.opts.Target == TargetDetector && !a.cfg.Kafka.ConsumerEnabled() {
		return nil, errors.New("--target=detector needs kafka.brokers and kafka.consumer.topics (or topic_regex)")
	}
	if !a.cfg.Kafka.ConsumerEnabled() {
		return nil, nil
	}
	c, err := kafka.NewConsumer(a.cfg.Kafka, kafka.ConsumerOptions{
		Target:          a.det,
		Limits:          a.cfg.RemoteWrite.DecodeLimits(),
		MaxDecodedBytes: a.cfg.RemoteWrite.MaxDecodedBytes,
		Metrics:         a.kafkaMetrics(),
		Logger:          a.logger.With("component", "kafka-consumer"),
		// Join the group only once the model is loaded: a replica that
		// cannot score must not hold partitions (or restore their state).
		Ready: a.storage.ready(a.det.Ready),
	})
	if err != nil {
		return nil, err
	}
	return c.Run, nil
}
