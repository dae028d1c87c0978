package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
	"github.com/sentinel-mesh/sentinel-mesh/remotewrite"
)

// Target is what the consumer feeds: *detector.Detector.
type Target interface {
	// AppendTyped is detector.Appender's Append with what the payload
	// says the series is (Remote-Write 2.0 metadata).
	AppendTyped(tenant string, lbls detector.Labels, samples []detector.Sample, typ detector.MetricType) detector.AppendStats
	// AppendMetadata takes the metric family types of Remote-Write 1.0
	// payloads (detector.MetadataAppender).
	AppendMetadata(tenant string, families []detector.MetricFamily)
	Flush() error
	ExportState(filter func(tenant string, ls detector.Labels) bool, fn func(detector.SeriesState) bool)
	ImportState(detector.SeriesState) bool
	DeleteSeries(filter func(tenant string, ls detector.Labels) bool) int
}

// ConsumerOptions are the code-level settings of NewConsumer.
type ConsumerOptions struct {
	Target Target
	// Limits and MaxDecodedBytes validate remote-write payloads like the
	// HTTP endpoint does (remote_write section).
	Limits          remotewrite.Limits
	MaxDecodedBytes int64
	Metrics         *Metrics
	Logger          *slog.Logger
	// Ready gates consumption: Run joins the consumer group (and restores
	// state) only once it returns true, so no partition is held by a
	// replica that cannot score yet. Use the detector's Ready (model
	// loaded). nil: ready at once.
	Ready func() bool
	// ExtraOpts are appended to the kgo options (tests).
	ExtraOpts []kgo.Opt
}

type topicPartition struct {
	topic     string
	partition int32
}

// Consumer reads records in a consumer group into the detector with
// at-least-once semantics: offsets are committed only after a polled batch
// was appended and flushed. Rebalances block while a batch is processed.
type Consumer struct {
	cfg  Config
	o    ConsumerOptions
	cl   *kgo.Client // group client, created by connect once ready
	clMu sync.Mutex  // guards cl against kill from another goroutine
	// closeOnce closes cl once: kgo.Client.Close is not safe to call from
	// two goroutines at once, and kill (another goroutine) and Run's return
	// both close it.
	closeOnce sync.Once
	opts      []kgo.Opt // options of the group client
	base      []kgo.Opt // connection options, for the state restore client
	dec       *Decoder
	m         *Metrics
	logger    *slog.Logger

	mu    sync.Mutex
	owner map[uint64]topicPartition // series hash -> partition it is read from

	// batchSeen holds the series appended since the last Flush; owned by
	// the goroutine running processBatch.
	batchSeen map[uint64]struct{}
	owned     map[topicPartition]struct{}

	killed         atomic.Bool // tests: behave like a crashed process
	lastCheckpoint time.Time
	dlq            []*kgo.Record
}

// NewConsumer connects to the brokers and joins the group once Run polls.
func NewConsumer(cfg Config, o ConsumerOptions) (*Consumer, error) {
	if !cfg.ConsumerEnabled() {
		return nil, errors.New("cannot create kafka consumer: kafka.brokers and kafka.consumer.topics (or topic_regex) must be set")
	}
	if o.Target == nil {
		return nil, errors.New("cannot create kafka consumer: nil Target")
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(nil)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Limits == (remotewrite.Limits{}) {
		o.Limits = remotewrite.DefaultConfig().DecodeLimits()
	}
	base, err := cfg.clientOpts()
	if err != nil {
		return nil, fmt.Errorf("cannot create kafka consumer: %w", err)
	}
	base = append(base, o.ExtraOpts...)
	c := &Consumer{
		cfg: cfg, o: o, base: base, m: o.Metrics, logger: o.Logger,
		dec:       NewDecoder(&cfg, o.Limits, o.MaxDecodedBytes),
		owner:     make(map[uint64]topicPartition),
		batchSeen: make(map[uint64]struct{}),
		owned:     make(map[topicPartition]struct{}),
	}
	c.dec.Metadata = o.Target.AppendMetadata
	cc := cfg.Consumer
	start := kgo.NewOffset().AtStart()
	if cc.StartOffset == "latest" {
		start = kgo.NewOffset().AtEnd()
	}
	opts := append([]kgo.Opt{}, base...)
	opts = append(opts,
		kgo.ConsumerGroup(cc.Group),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.ConsumeResetOffset(start),
		kgo.FetchMaxBytes(cc.FetchMaxBytes),
		kgo.MaxConcurrentFetches(cc.MaxConcurrentFetches),
		kgo.SessionTimeout(time.Duration(cc.SessionTimeout)),
		kgo.RebalanceTimeout(time.Duration(cc.RebalanceTimeout)),
		kgo.HeartbeatInterval(min(3*time.Second, time.Duration(cc.SessionTimeout)/3)),
		kgo.OnPartitionsAssigned(c.assigned),
		kgo.OnPartitionsRevoked(c.revoked),
		kgo.OnPartitionsLost(c.lost),
		// State and dead-letter records keep their source partition
		// (modulo the target topic's partition count).
		kgo.RecordPartitioner(kgo.BasicConsistentPartitioner(func(string) func(*kgo.Record, int) int {
			return func(r *kgo.Record, n int) int { return int(r.Partition) % n }
		})),
		kgo.RequiredAcks(kgo.AllISRAcks()),
	)
	if cc.TopicRegex != "" {
		opts = append(opts, kgo.ConsumeTopics(cc.TopicRegex), kgo.ConsumeRegex())
	} else {
		opts = append(opts, kgo.ConsumeTopics(cc.Topics...))
	}
	if err := kgo.ValidateOpts(opts...); err != nil {
		return nil, fmt.Errorf("cannot create kafka consumer: %w", err)
	}
	c.opts = opts
	if cfg.State.Topic != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.ensureStateTopic(ctx); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// connect creates the group client; the group is joined (and partitions
// assigned) from then on.
func (c *Consumer) connect() error {
	cl, err := kgo.NewClient(c.opts...)
	if err != nil {
		return fmt.Errorf("cannot create kafka consumer: %w", err)
	}
	c.clMu.Lock()
	c.cl = cl
	c.clMu.Unlock()
	c.lastCheckpoint = time.Now()
	return nil
}

// waitReady blocks until o.Ready reports true; false if ctx ended first.
func (c *Consumer) waitReady(ctx context.Context) bool {
	if c.o.Ready == nil || c.o.Ready() {
		return true
	}
	c.logger.Info("waiting for the detector to be ready (model loaded) before joining the consumer group", "group", c.cfg.Consumer.Group)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
			if c.o.Ready() {
				return true
			}
		}
	}
}

// Run consumes until ctx is done, then commits, writes a final state
// checkpoint of the owned partitions and leaves the group.
//
// Nothing is consumed before o.Ready reports true: the client that joins the
// group is created only then.
func (c *Consumer) Run(ctx context.Context) error {
	if !c.waitReady(ctx) || c.killed.Load() {
		return nil
	}
	if err := c.connect(); err != nil {
		return err
	}
	defer c.closeClient(c.cl)
	// A poll blocks rebalances until AllowRebalance; Close must not wait on it.
	defer c.cl.AllowRebalance()
	for {
		fetches := c.cl.PollRecords(ctx, c.cfg.Consumer.MaxPollRecords)
		if fetches.IsClientClosed() || c.killed.Load() {
			return nil
		}
		fetches.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				c.logger.Warn("kafka fetch failed", "topic", t, "partition", p, "err", err)
			}
		})
		c.processBatch(ctx, fetches)
		if ctx.Err() != nil {
			c.shutdown()
			return nil
		}
		c.cl.AllowRebalance()
	}
}

// shutdown writes the final checkpoint while the partitions are still ours;
// the revoke callback of the following Close then only forgets them.
func (c *Consumer) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(c.cfg.State.RestoreTimeout))
	defer cancel()
	if err := c.o.Target.Flush(); err != nil {
		c.logger.Warn("cannot flush detector at shutdown", "err", err)
	}
	if err := c.cl.CommitUncommittedOffsets(ctx); err != nil {
		c.logger.Warn("cannot commit offsets at shutdown", "err", err)
	}
	c.mu.Lock()
	parts := make(map[topicPartition]struct{}, len(c.owned))
	for k := range c.owned {
		parts[k] = struct{}{}
	}
	c.mu.Unlock()
	c.checkpoint(ctx, c.cl, parts)
}

// kill makes the consumer behave like a crashed process: no commit, no
// checkpoint, no revoke handling; the client is closed so the group
// rebalances without waiting for the session timeout.
func (c *Consumer) kill() {
	c.killed.Store(true)
	c.clMu.Lock()
	cl := c.cl
	c.clMu.Unlock()
	if cl != nil {
		c.closeClient(cl)
	}
}

// closeClient closes the group client cl the first time it is called.
func (c *Consumer) closeClient(cl *kgo.Client) { c.closeOnce.Do(cl.Close) }

func (c *Consumer) processBatch(ctx context.Context, fetches kgo.Fetches) {
	start := time.Now()
	var (
		st                        detector.AppendStats
		records, badRecs, invalid int
		reasons                   map[string]int
	)
	fetches.EachRecord(func(r *kgo.Record) {
		records++
		k := topicPartition{r.Topic, r.Partition}
		inv, err := c.dec.Decode(r, func(tenant string, ls detector.Labels, s []detector.Sample, typ detector.MetricType) {
			if len(s) == 0 {
				return
			}
			h := detector.SeriesHash(tenant, ls)
			var as detector.AppendStats
			for i := range s {
				// A sample is scored against the prediction from the window
				// before it: when this batch already appended to the series,
				// run inference first, so catching up on lag scores every
				// sample instead of only the first per batch.
				if _, again := c.batchSeen[h]; again {
					if err := c.o.Target.Flush(); err != nil {
						c.logger.Warn("detector flush failed", "err", err)
					}
					clear(c.batchSeen)
				}
				as.Add(c.o.Target.AppendTyped(tenant, ls, s[i:i+1], typ))
				c.batchSeen[h] = struct{}{}
			}
			st.Add(as)
			if as.Unselected > 0 || as.SeriesCap > 0 || as.TenantSeriesCap > 0 {
				return // not tracked by the detector: no state to hand over
			}
			c.mu.Lock()
			if c.owner[h] != k {
				c.owner[h] = k
			}
			c.mu.Unlock()
		})
		invalid += inv
		if err != nil {
			badRecs++
			reason := reasonBadProtobuf
			if br, ok := errors.AsType[*badRecord](err); ok {
				reason = br.reason
			}
			if reasons == nil {
				reasons = make(map[string]int)
			}
			if reasons[reason] == 0 {
				c.logger.Warn("skipping bad kafka record", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "reason", reason, "err", err)
			}
			reasons[reason]++
			c.deadLetter(r, err)
		}
	})
	clear(c.batchSeen)
	if records == 0 {
		return
	}
	if err := c.o.Target.Flush(); err != nil {
		c.logger.Warn("detector flush failed", "err", err)
	}
	// Commit even when ctx is cancelled: the batch is processed.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	c.flushDeadLetters(cctx)
	if err := c.cl.CommitUncommittedOffsets(cctx); err != nil {
		c.logger.Warn("cannot commit kafka offsets; the batch will be consumed again", "err", err)
	}

	m := c.m
	m.records.WithLabelValues("ok").Add(float64(records - badRecs))
	for r, n := range reasons {
		m.records.WithLabelValues(r).Add(float64(n))
	}
	for _, o := range [...]struct {
		name string
		n    int
	}{{"accepted", st.Accepted}, {"out_of_order", st.OutOfOrder}, {"nan", st.NaN}, {"stale", st.Stale},
		{"unselected", st.Unselected}, {"series_cap", st.SeriesCap}, {"tenant_series_cap", st.TenantSeriesCap}, {"invalid_series", invalid}} {
		if o.n > 0 {
			m.samples.WithLabelValues(o.name).Add(float64(o.n))
		}
	}
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		if n := len(p.Records); n > 0 {
			lag := p.HighWatermark - p.Records[n-1].Offset - 1
			m.lag.WithLabelValues(p.Topic, strconv.Itoa(int(p.Partition))).Set(float64(max(lag, 0)))
		}
	})
	m.batchDuration.Observe(time.Since(start).Seconds())
	c.logger.Debug("kafka batch", "records", records, "bad_records", badRecs, "accepted", st.Accepted,
		"out_of_order", st.OutOfOrder, "invalid_samples", invalid, "duration", time.Since(start))

	if c.cfg.State.Topic != "" && time.Since(c.lastCheckpoint) >= time.Duration(c.cfg.State.CheckpointInterval) {
		c.mu.Lock()
		parts := make(map[topicPartition]struct{}, len(c.owned))
		for k := range c.owned {
			parts[k] = struct{}{}
		}
		c.mu.Unlock()
		c.checkpoint(cctx, c.cl, parts)
		c.lastCheckpoint = time.Now()
	}
}

func (c *Consumer) deadLetter(r *kgo.Record, err error) {
	if c.cfg.Consumer.DeadLetterTopic == "" {
		return
	}
	hdrs := append([]kgo.RecordHeader{}, r.Headers...)
	hdrs = append(hdrs,
		kgo.RecordHeader{Key: HeaderError, Value: []byte(err.Error())},
		kgo.RecordHeader{Key: "x-sentinel-mesh-source", Value: fmt.Appendf(nil, "%s/%d/%d", r.Topic, r.Partition, r.Offset)})
	c.dlq = append(c.dlq, &kgo.Record{Topic: c.cfg.Consumer.DeadLetterTopic, Partition: r.Partition, Key: r.Key, Value: r.Value, Headers: hdrs})
}

// flushDeadLetters produces the batch's bad records before its offsets are
// committed; a failure is logged and counted, it does not block the partition.
func (c *Consumer) flushDeadLetters(ctx context.Context) {
	if len(c.dlq) == 0 {
		return
	}
	if err := c.cl.ProduceSync(ctx, c.dlq...).FirstErr(); err != nil {
		c.logger.Warn("cannot produce to the dead-letter topic", "topic", c.cfg.Consumer.DeadLetterTopic, "records", len(c.dlq), "err", err)
	} else {
		c.m.deadLettered.Add(float64(len(c.dlq)))
	}
	clear(c.dlq)
	c.dlq = c.dlq[:0]
}

func toSet(m map[string][]int32) map[topicPartition]struct{} {
	out := make(map[topicPartition]struct{})
	for t, ps := range m {
		for _, p := range ps {
			out[topicPartition{t, p}] = struct{}{}
		}
	}
	return out
}

func (c *Consumer) assigned(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
	if c.killed.Load() {
		return
	}
	parts := toSet(m)
	c.m.rebalances.WithLabelValues("assigned").Inc()
	c.logger.Info("kafka partitions assigned", "partitions", m)
	if c.cfg.State.Topic != "" {
		rctx, cancel := context.WithTimeout(ctx, time.Duration(c.cfg.State.RestoreTimeout))
		defer cancel()
		c.restore(rctx, cl, parts)
		// Predict from the restored windows now, so the first sample of
		// every restored series is scored instead of only refilling it.
		if err := c.o.Target.Flush(); err != nil {
			c.logger.Warn("detector flush after restore failed", "err", err)
		}
	}
	c.mu.Lock()
	for k := range parts {
		c.owned[k] = struct{}{}
	}
	c.mu.Unlock()
}

func (c *Consumer) revoked(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
	if c.killed.Load() {
		return
	}
	parts := toSet(m)
	c.m.rebalances.WithLabelValues("revoked").Inc()
	c.logger.Info("kafka partitions revoked", "partitions", m)
	if err := c.o.Target.Flush(); err != nil {
		c.logger.Warn("detector flush failed", "err", err)
	}
	if err := cl.CommitUncommittedOffsets(ctx); err != nil {
		c.logger.Warn("cannot commit offsets of revoked partitions", "err", err)
	}
	c.checkpoint(ctx, cl, parts)
	c.forget(parts)
}

func (c *Consumer) lost(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	if c.killed.Load() {
		return
	}
	c.m.rebalances.WithLabelValues("lost").Inc()
	c.logger.Warn("kafka partitions lost", "partitions", m)
	c.forget(toSet(m))
}

// forget drops the series of parts: their new owner scores them now.
func (c *Consumer) forget(parts map[topicPartition]struct{}) {
	c.mu.Lock()
	for k := range parts {
		delete(c.owned, k)
		c.m.lag.DeleteLabelValues(k.topic, strconv.Itoa(int(k.partition)))
	}
	c.mu.Unlock()
	n := c.o.Target.DeleteSeries(func(tenant string, ls detector.Labels) bool {
		h := detector.SeriesHash(tenant, ls)
		c.mu.Lock()
		defer c.mu.Unlock()
		k, ok := c.owner[h]
		if !ok {
			return false
		}
		if _, gone := parts[k]; gone {
			delete(c.owner, h)
			return true
		}
		return false
	})
	c.logger.Info("forgot series of moved partitions", "series", n)
}
