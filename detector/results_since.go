package detector

// ResultsSince calls fn with every result of every scored series that is
// newer than the series' cursor, oldest first within a series, holding one
// shard lock at a time. cursor returns the timestamp of the newest result
// the caller already has for the series id (0 for none); id is stable for
// the life of a series (a hash of tenant and labels). r is reused between
// calls; fn must not retain it. Stops early when fn returns false.
//
// The results come from the data a series already keeps, so the hot path
// is untouched: series that keep a history (those that have had an anomaly,
// with detector.history_points > 0) give every result still in their
// history ring, the latest one at full precision and older ones with the
// float32 precision of the history; other series give their latest result
// only.
func (d *Detector) ResultsSince(cursor func(id uint64) int64, fn func(id uint64, r *Result) bool) {
	var r Result
	for i := range d.shards {
		sh := &d.shards[i]
		sh.mu.Lock()
		for _, head := range sh.series {
			for s := head; s != nil; s = s.next {
				if s.scoredTs == 0 {
					continue
				}
				since := cursor(s.hash)
				if s.scoredTs <= since {
					continue
				}
				anomalous := s.anomalyID != 0
				n := int32(len(s.hist))
				for j := int32(0); j < s.histLen; j++ {
					p := &s.hist[(s.histHead+j)%n]
					if p.ts <= since || p.ts >= s.scoredTs {
						continue
					}
					e, h := float64(p.expected), float64(p.half)
					r = Result{
						Tenant: s.tenant, Labels: s.labels, TimestampMs: p.ts,
						Value: float64(p.value), Score: float64(p.score), Expected: e,
						Lower: e - h, Upper: e + h, Anomalous: anomalous,
					}
					if !fn(s.hash, &r) {
						sh.mu.Unlock()
						return
					}
				}
				r = Result{
					Tenant: s.tenant, Labels: s.labels, TimestampMs: s.scoredTs,
					Value: s.value, Score: s.score, Expected: s.expected,
					Lower: s.lower, Upper: s.upper, Anomalous: anomalous,
				}
				if !fn(s.hash, &r) {
					sh.mu.Unlock()
					return
				}
			}
		}
		sh.mu.Unlock()
	}
}
