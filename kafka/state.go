package kafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
)

// State topic layout: one record per series, key = tenant and labels (so
// compaction keeps the newest state of each series), value =
// detector.SeriesState binary, written to partition source_partition mod the
// state topic's partition count, with the source topic and partition in
// headers. A new owner of partition p reads state partition p mod n from
// the start to the end offset it saw when the assignment began.
const (
	headerSourceTopic     = "x-sentinel-mesh-source-topic"
	headerSourcePartition = "x-sentinel-mesh-source-partition"
	stateProduceChunk     = 20_000
)

func (c *Consumer) ensureStateTopic(ctx context.Context) error {
	adm := kadm.NewClient(c.cl)
	compact := "compact"
	_, err := adm.CreateTopic(ctx, c.cfg.State.Partitions, c.cfg.State.ReplicationFactor,
		map[string]*string{"cleanup.policy": &compact}, c.cfg.State.Topic)
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("cannot create kafka.state.topic %s: %w", c.cfg.State.Topic, err)
	}
	return nil
}

// stateKey is the identity of a series in the state topic.
func stateKey(tenant string, ls detector.Labels) []byte {
	n := len(tenant) + 1
	for _, l := range ls {
		n += len(l.Name) + len(l.Value) + 2
	}
	b := make([]byte, 0, n)
	b = append(b, tenant...)
	b = append(b, 0xff)
	for _, l := range ls {
		b = append(b, l.Name...)
		b = append(b, 0xfe)
		b = append(b, l.Value...)
		b = append(b, 0xff)
	}
	return b
}

// checkpoint writes the state of every series read from parts and waits
// for the acknowledgements. Failures are logged and counted: a missed
// checkpoint costs a colder start on the next owner, not data.
func (c *Consumer) checkpoint(ctx context.Context, cl *kgo.Client, parts map[topicPartition]struct{}) {
	if c.cfg.State.Topic == "" || len(parts) == 0 {
		return
	}
	start := time.Now()
	var (
		recs    []*kgo.Record
		written int
		errs    []error
	)
	send := func() {
		if len(recs) == 0 {
			return
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			errs = append(errs, err)
		} else {
			written += len(recs)
		}
		clear(recs)
		recs = recs[:0]
	}
	c.o.Target.ExportState(func(tenant string, ls detector.Labels) bool {
		c.mu.Lock()
		k, ok := c.owner[detector.SeriesHash(tenant, ls)]
		c.mu.Unlock()
		if !ok {
			return false
		}
		_, want := parts[k]
		return want
	}, func(st detector.SeriesState) bool {
		c.mu.Lock()
		k := c.owner[detector.SeriesHash(st.Tenant, st.Labels)]
		c.mu.Unlock()
		val, _ := st.AppendBinary(nil)
		recs = append(recs, &kgo.Record{
			Topic:     c.cfg.State.Topic,
			Partition: k.partition,
			Key:       stateKey(st.Tenant, st.Labels),
			Value:     val,
			Headers: []kgo.RecordHeader{
				{Key: headerSourceTopic, Value: []byte(k.topic)},
				{Key: headerSourcePartition, Value: strconv.AppendInt(nil, int64(k.partition), 10)},
			},
		})
		if len(recs) >= stateProduceChunk {
			send()
		}
		return true
	})
	send()
	c.m.stateWritten.Add(float64(written))
	if err := errors.Join(errs...); err != nil {
		c.m.checkpointErrors.Inc()
		c.logger.Warn("cannot write series state checkpoint", "topic", c.cfg.State.Topic, "written", written, "err", err)
		return
	}
	c.logger.Info("wrote series state checkpoint", "series", written, "partitions", len(parts), "duration", time.Since(start))
}

// restore imports the newest state of the series of parts from the state
// topic. It reads up to the end offsets seen at the start; a checkpoint the
// previous owner wrote while revoking is complete by then.
func (c *Consumer) restore(ctx context.Context, cl *kgo.Client, parts map[topicPartition]struct{}) {
	start := time.Now()
	restored, read, err := c.restoreParts(ctx, cl, parts)
	c.m.restoreDuration.Observe(time.Since(start).Seconds())
	c.m.stateRestored.Add(float64(restored))
	if err != nil {
		c.logger.Warn("cannot restore series state; affected series start cold", "topic", c.cfg.State.Topic, "restored", restored, "err", err)
		return
	}
	c.logger.Info("restored series state", "series", restored, "records_read", read, "partitions", len(parts), "duration", time.Since(start))
}

func (c *Consumer) restoreParts(ctx context.Context, cl *kgo.Client, parts map[topicPartition]struct{}) (restored, read int, err error) {
	topic := c.cfg.State.Topic
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return 0, 0, fmt.Errorf("cannot list end offsets of %s: %w", topic, err)
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return 0, 0, fmt.Errorf("cannot list start offsets of %s: %w", topic, err)
	}
	n := int32(len(ends[topic]))
	if n == 0 {
		return 0, 0, fmt.Errorf("state topic %s has no partitions", topic)
	}
	remaining := make(map[int32]int64) // state partition -> end offset
	for k := range parts {
		sp := k.partition % n
		e, ok := ends.Lookup(topic, sp)
		if !ok || e.Err != nil {
			continue
		}
		if s, ok := starts.Lookup(topic, sp); ok && s.Err == nil && s.Offset >= e.Offset {
			continue // empty
		}
		remaining[sp] = e.Offset
	}
	if len(remaining) == 0 {
		return 0, 0, nil
	}
	assign := make(map[int32]kgo.Offset, len(remaining))
	for sp := range remaining {
		assign[sp] = kgo.NewOffset().AtStart()
	}
	opts := append([]kgo.Opt{}, c.base...)
	opts = append(opts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: assign}), kgo.FetchMaxBytes(64<<20))
	rc, err := kgo.NewClient(opts...)
	if err != nil {
		return 0, 0, fmt.Errorf("cannot create state reader: %w", err)
	}
	defer rc.Close()

	minTs := int64(0)
	if c.cfg.State.MaxAge > 0 {
		minTs = time.Now().Add(-time.Duration(c.cfg.State.MaxAge)).UnixMilli()
	}
	var st detector.SeriesState
	var decodeErrs int
	for len(remaining) > 0 {
		fs := rc.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return restored, read, fmt.Errorf("cannot read %s: %w (%d partitions unfinished)", topic, err, len(remaining))
		}
		fs.EachError(func(_ string, p int32, err error) {
			c.logger.Warn("state topic fetch failed", "partition", p, "err", err)
		})
		fs.EachRecord(func(r *kgo.Record) {
			end, ok := remaining[r.Partition]
			if !ok {
				return
			}
			if r.Offset+1 >= end {
				delete(remaining, r.Partition)
			}
			if r.Offset >= end {
				return
			}
			read++
			var src topicPartition
			for _, h := range r.Headers {
				switch h.Key {
				case headerSourceTopic:
					src.topic = string(h.Value)
				case headerSourcePartition:
					p, _ := strconv.ParseInt(string(h.Value), 10, 32)
					src.partition = int32(p)
				}
			}
			if _, ok := parts[src]; !ok || len(r.Value) == 0 {
				return
			}
			if err := st.UnmarshalBinary(r.Value); err != nil {
				decodeErrs++
				return
			}
			if st.LastTs < minTs {
				return
			}
			c.mu.Lock()
			c.owner[detector.SeriesHash(st.Tenant, st.Labels)] = src
			c.mu.Unlock()
			if c.o.Target.ImportState(st) {
				restored++
			}
		})
	}
	if decodeErrs > 0 {
		c.logger.Warn("skipped undecodable state records", "records", decodeErrs)
	}
	return restored, read, nil
}
