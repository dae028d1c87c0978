package kafka

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
	"github.com/sentinel-mesh/sentinel-mesh/remotewrite"
)

// Producer forwards remote-write series to kafka.producer.topic. It is the
// Appender of the remote-write handler in --target=receiver: it implements
// remotewrite.BatchAppender, so each HTTP request becomes one batch that is
// acknowledged by Kafka (acks=all) before the request answers 2xx.
//
// Every series of a request becomes one record: the key is the series hash
// of tenant and labels (so a series always lands in the same partition, in
// order), the value a snappy Remote-Write 1.0 request holding that series,
// the tenant travels in the kafka.tenant_header header.
type Producer struct {
	cl      *kgo.Client
	topic   string
	header  string
	timeout time.Duration
	sel     detector.Selection
	m       *Metrics
	logger  *slog.Logger
	scratch sync.Pool
	// families holds the metric family types of the Remote-Write 1.0
	// metadata requests this receiver took, so that each series' record
	// says what the series is (detector.counter_rate) to the detector that
	// consumes it.
	families *detector.FamilyTypes
}

var (
	_ detector.MetadataAppender = (*Producer)(nil)
	_ detector.TypedAppender    = (*produceBatch)(nil)
)

// ProducerOptions are the code-level settings of NewProducer.
type ProducerOptions struct {
	// Selection drops unselected series before they are produced (they
	// would be dropped by the detector anyway); nil forwards everything.
	Selection detector.Selection
	Metrics   *Metrics
	Logger    *slog.Logger
	// MaxMetricFamilies bounds the metric family types kept from metadata
	// (detector.max_metric_families); 0 takes the detector's default.
	MaxMetricFamilies int
	// ExtraOpts are appended to the kgo options (tests).
	ExtraOpts []kgo.Opt
}

// NewProducer connects a producer; Close releases it.
func NewProducer(cfg Config, o ProducerOptions) (*Producer, error) {
	if !cfg.Enabled() {
		return nil, errors.New("cannot create kafka producer: kafka.brokers is empty")
	}
	if cfg.Producer.Topic == "" {
		return nil, errors.New("cannot create kafka producer: kafka.producer.topic is empty")
	}
	opts, err := cfg.clientOpts()
	if err != nil {
		return nil, fmt.Errorf("cannot create kafka producer: %w", err)
	}
	opts = append(opts,
		kgo.DefaultProduceTopic(cfg.Producer.Topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(time.Duration(cfg.Producer.Linger)),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
		kgo.ProduceRequestTimeout(time.Duration(cfg.Producer.Timeout)),
	)
	opts = append(opts, o.ExtraOpts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("cannot create kafka producer: %w", err)
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(nil)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Producer{
		cl: cl, topic: cfg.Producer.Topic, header: cfg.TenantHeader,
		timeout: time.Duration(cfg.Producer.Timeout), sel: o.Selection, m: o.Metrics, logger: o.Logger,
	}
	p.scratch.New = func() any { return new([]byte) }
	if o.MaxMetricFamilies <= 0 {
		o.MaxMetricFamilies = detector.DefaultConfig.MaxMetricFamilies
	}
	p.families = detector.NewFamilyTypes(o.MaxMetricFamilies)
	return p, nil
}

// AppendMetadata keeps the metric family types of a metadata request: the
// records of later series of those families carry their type.
func (p *Producer) AppendMetadata(tenant string, families []detector.MetricFamily) {
	p.families.Set(tenant, families)
}

// Close flushes nothing (every batch is synchronous) and closes the client.
func (p *Producer) Close() { p.cl.Close() }

// Begin starts the batch of one remote-write request.
func (p *Producer) Begin() remotewrite.Batch { return &produceBatch{p: p} }

// Append produces one series synchronously; the handler uses batches, this
// is for other callers of a plain detector.Appender.
func (p *Producer) Append(tenant string, lbls detector.Labels, samples []detector.Sample) detector.AppendStats {
	b := produceBatch{p: p}
	st := b.AppendTyped(tenant, lbls, samples, detector.MetricTypeUnknown)
	if err := b.Commit(context.Background()); err != nil {
		p.logger.Warn("cannot produce series", "err", err)
		return detector.AppendStats{SeriesCap: len(samples)}
	}
	return st
}

// record encodes one series of type typ (as its input or its family's
// metadata says; unknown: the consuming detector goes by its name); it
// copies everything it needs from lbls and samples.
func (p *Producer) record(tenant string, lbls detector.Labels, samples []detector.Sample, typ detector.MetricType) *kgo.Record {
	if typ == detector.MetricTypeUnknown {
		typ = p.families.SeriesType(tenant, lbls.Get(detector.MetricNameLabel))
	}
	sp := p.scratch.Get().(*[]byte)
	var payload []byte
	payload, *sp = EncodeTypedSeriesV1(lbls, samples, typ, *sp)
	p.scratch.Put(sp)
	key := binary.BigEndian.AppendUint64(make([]byte, 0, 8), detector.SeriesHash(tenant, lbls))
	return &kgo.Record{
		Topic: p.topic,
		Key:   key,
		Value: payload,
		Headers: []kgo.RecordHeader{
			{Key: p.header, Value: []byte(tenant)},
			{Key: HeaderContentType, Value: []byte(remotewrite.ContentTypeProtobuf + ";proto=" + remotewrite.ProtoV1)},
			{Key: HeaderContentEncoding, Value: []byte("snappy")},
			{Key: HeaderRWVersion, Value: []byte("0.1.0")},
		},
	}
}

type produceBatch struct {
	p       *Producer
	recs    []*kgo.Record
	samples int
}

// Append encodes the series into a record; nothing is sent before Commit.
func (b *produceBatch) Append(tenant string, lbls detector.Labels, samples []detector.Sample) detector.AppendStats {
	return b.AppendTyped(tenant, lbls, samples, detector.MetricTypeUnknown)
}

// AppendTyped is Append for a series its input says the type of.
func (b *produceBatch) AppendTyped(tenant string, lbls detector.Labels, samples []detector.Sample, typ detector.MetricType) detector.AppendStats {
	if len(samples) == 0 {
		return detector.AppendStats{}
	}
	if !b.p.sel.Matches(lbls) {
		return detector.AppendStats{Unselected: len(samples)}
	}
	b.recs = append(b.recs, b.p.record(tenant, lbls, samples, typ))
	b.samples += len(samples)
	return detector.AppendStats{Accepted: len(samples)}
}

// Commit produces the batch and waits for every record's acknowledgement.
func (b *produceBatch) Commit(ctx context.Context) error {
	if len(b.recs) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, b.p.timeout)
	defer cancel()
	start := time.Now()
	res := b.p.cl.ProduceSync(ctx, b.recs...)
	b.p.m.produceDuration.Observe(time.Since(start).Seconds())
	var firstErr error
	failed := 0
	for _, r := range res {
		if r.Err != nil {
			failed++
			if firstErr == nil {
				firstErr = r.Err
			}
		}
	}
	b.p.m.producedRecords.WithLabelValues("ok").Add(float64(len(b.recs) - failed))
	if failed > 0 {
		b.p.m.producedRecords.WithLabelValues("error").Add(float64(failed))
		return fmt.Errorf("cannot produce %d of %d records to %s: %w", failed, len(b.recs), b.p.topic, firstErr)
	}
	b.p.m.producedSamples.Add(float64(b.samples))
	return nil
}
