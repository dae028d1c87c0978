package kafka

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
)

// State topic layout: one record per series, key = the 8-byte big-endian
// series hash (detector.SeriesHash, the key of the receiver's sample records;
// compaction keeps the newest state of each series), value =
// detector.SeriesState binary, written to partition source_partition mod the
// state topic's partition count, with the source topic and partition in
// headers. A series that expired from the detector gets a tombstone (nil
// value) at the next checkpoint, so compaction drops it. A new owner of
// partition p reads state partition p mod n from the start to the end offset
// it saw when the assignment began and imports the newest record per key.
const (
	headerSourceTopic     = "x-sentinel-mesh-source-topic"
	headerSourcePartition = "x-sentinel-mesh-source-partition"
	stateProduceChunk     = 20_000
)

func (c *Consumer) ensureStateTopic(ctx context.Context) error {
	cl, err := kgo.NewClient(c.base...)
	if err != nil {
		return fmt.Errorf("cannot create kafka admin client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	compact := "compact"
	_, err = adm.CreateTopic(ctx, c.cfg.State.Partitions, c.cfg.State.ReplicationFactor,
		map[string]*string{"cleanup.policy": &compact}, c.cfg.State.Topic)
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("cannot create kafka.state.topic %s: %w", c.cfg.State.Topic, err)
	}
	return nil
}

// stateKey is the identity of a series in the state topic.
func stateKey(h uint64) []byte { return binary.BigEndian.AppendUint64(make([]byte, 0, 8), h) }

func stateHeaders(k topicPartition) []kgo.RecordHeader {
	return []kgo.RecordHeader{
		{Key: headerSourceTopic, Value: []byte(k.topic)},
		{Key: headerSourcePartition, Value: strconv.AppendInt(nil, int64(k.partition), 10)},
	}
}

// checkpoint writes the state of every series read from parts, and a
// tombstone for every series of parts the detector no longer has (expired),
// and waits for the acknowledgements. Failures are logged and counted: a
// missed checkpoint costs a colder start on the next owner, not data.
func (c *Consumer) checkpoint(ctx context.Context, cl *kgo.Client, parts map[topicPartition]struct{}) {
	if c.cfg.State.Topic == "" || len(parts) == 0 {
		return
	}
	start := time.Now()
	var (
		recs           []*kgo.Record
		written, tombs int
		pendingTombs   int
		errs           []error
		exported       = make(map[uint64]struct{})
	)
	send := func() {
		if len(recs) == 0 {
			return
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			errs = append(errs, err)
		} else {
			written += len(recs) - pendingTombs
			tombs += pendingTombs
		}
		pendingTombs = 0
		clear(recs)
		recs = recs[:0]
	}
	var cur topicPartition // partition of the series being exported (filter, then fn)
	c.o.Target.ExportState(func(tenant string, ls detector.Labels) bool {
		h := detector.SeriesHash(tenant, ls)
		c.mu.Lock()
		k, ok := c.owner[h]
		c.mu.Unlock()
		if !ok {
			return false
		}
		_, want := parts[k]
		return want
	}, func(st detector.SeriesState) bool {
		h := detector.SeriesHash(st.Tenant, st.Labels)
		exported[h] = struct{}{}
		c.mu.Lock()
		cur = c.owner[h]
		c.mu.Unlock()
		val, _ := st.AppendBinary(nil)
		recs = append(recs, &kgo.Record{
			Topic:     c.cfg.State.Topic,
			Partition: cur.partition,
			Key:       stateKey(h),
			Value:     val,
			Headers:   stateHeaders(cur),
		})
		if len(recs) >= stateProduceChunk {
			send()
		}
		return true
	})
	// Series of parts that are no longer in the detector expired (idle
	// timeout): tombstone them so compaction drops their state.
	c.mu.Lock()
	for h, k := range c.owner {
		if _, in := parts[k]; !in {
			continue
		}
		if _, ok := exported[h]; ok {
			continue
		}
		delete(c.owner, h)
		recs = append(recs, &kgo.Record{Topic: c.cfg.State.Topic, Partition: k.partition, Key: stateKey(h), Headers: stateHeaders(k)})
		pendingTombs++
	}
	c.mu.Unlock()
	send()
	c.m.stateWritten.Add(float64(written))
	c.m.stateTombstones.Add(float64(tombs))
	if err := errors.Join(errs...); err != nil {
		c.m.checkpointErrors.Inc()
		c.logger.Warn("cannot write series state checkpoint", "topic", c.cfg.State.Topic, "written", written, "tombstones", tombs, "err", err)
		return
	}
	c.logger.Info("wrote series state checkpoint", "series", written, "tombstones", tombs, "partitions", len(parts), "duration", time.Since(start))
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
	// The newest record per key wins (the topic may not be compacted yet);
	// a tombstone removes the key.
	type stateRec struct {
		src topicPartition
		val []byte
	}
	latest := make(map[string]stateRec)
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
			if len(r.Value) == 0 {
				delete(latest, string(r.Key))
				return
			}
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
			if _, ok := parts[src]; !ok {
				return
			}
			latest[string(r.Key)] = stateRec{src, r.Value}
		})
	}
	var st detector.SeriesState
	var decodeErrs int
	for _, rec := range latest {
		if err := st.UnmarshalBinary(rec.val); err != nil {
			decodeErrs++
			continue
		}
		if st.LastTs < minTs {
			continue
		}
		c.mu.Lock()
		c.owner[detector.SeriesHash(st.Tenant, st.Labels)] = rec.src
		c.mu.Unlock()
		if c.o.Target.ImportState(st) {
			restored++
		}
	}
	if decodeErrs > 0 {
		c.logger.Warn("skipped undecodable state records", "records", decodeErrs)
	}
	return restored, read, nil
}
