package detector

// ResultsSince calls fn with every result of every scored series that is
// newer than the series' cursor, oldest first within a series, holding one
// shard lock at a time. cursor returns the timestamp of the newest result
// the caller already has for the series id (0 for none); id is stable for
// the life of a series (a hash of tenant and labels). r is reused between
// calls, and so is the slice r.Labels; fn must not retain them (the label
// strings it may). Stops early when fn returns false.
//
// The results come from the data a series already keeps, so the hot path
// is untouched: series that keep a history (those that have had an anomaly,
// with detector.history_points > 0) give every result still in their
// history ring, the latest one at full precision and older ones with the
// float32 precision of the history; other series give their latest result
// only.
//
// With the result log on (EnableResultLog), every result scored since the
// previous call is given instead, calm series included, and the log is
// emptied; results that did not fit the log were counted in
// sentinel_mesh_result_log_dropped_total.
func (d *Detector) ResultsSince(cursor func(id uint64) int64, fn func(id uint64, r *Result) bool) {
	if d.resultLogCap > 0 {
		d.drainResultLog(cursor, fn)
		return
	}
	var r Result
	var lbls Labels
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
				anomalous := s.anomalyOpen()
				lbls = s.labels.appendTo(lbls[:0])
				for p := range s.historyPoints() {
					if p.ts <= since || p.ts >= s.scoredTs {
						continue
					}
					r = Result{
						Tenant: s.tenant, Labels: lbls, TimestampMs: p.ts,
						Value: float64(p.value), Score: float64(p.score), Expected: float64(p.expected),
						Lower: float64(p.lower), Upper: float64(p.upper), Anomalous: anomalous,
					}
					if !fn(s.hash, &r) {
						sh.mu.Unlock()
						return
					}
				}
				r = Result{
					Tenant: s.tenant, Labels: lbls, TimestampMs: s.scoredTs,
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

// loggedResult is one scored sample in a shard's result log.
type loggedResult struct {
	s                                    *series
	ts                                   int64
	value, score, expected, lower, upper float64
	anomalous                            bool
}

// EnableResultLog makes every scored result available to ResultsSince, not
// only the latest per series: each shard keeps up to capacity/256 results
// (at least 64) until ResultsSince drains them; past that they are dropped
// and counted. Outputs that forward every score (remote-write of scores)
// turn it on; call it before samples arrive.
func (d *Detector) EnableResultLog(capacity int) {
	d.resultLogCap = max(capacity/numShards, 64)
}

// logResult appends s's latest result to the shard's log. Called with the
// shard lock held.
func (d *Detector) logResult(sh *shard, s *series) {
	if len(sh.results) >= d.resultLogCap {
		d.metrics.resultLogDropped.Inc()
		return
	}
	sh.results = append(sh.results, loggedResult{
		s: s, ts: s.scoredTs, value: s.value, score: s.score,
		expected: s.expected, lower: s.lower, upper: s.upper, anomalous: s.anomalyOpen(),
	})
}

// drainResultLog gives and empties every shard's result log, oldest first.
// When fn returns false the rest of that shard's log stays for the next call.
func (d *Detector) drainResultLog(cursor func(id uint64) int64, fn func(id uint64, r *Result) bool) {
	var r Result
	var lbls Labels
	for i := range d.shards {
		sh := &d.shards[i]
		sh.mu.Lock()
		done, stopped := len(sh.results), false
		for j := range sh.results {
			e := &sh.results[j]
			if e.ts <= cursor(e.s.hash) {
				continue
			}
			lbls = e.s.labels.appendTo(lbls[:0])
			r = Result{
				Tenant: e.s.tenant, Labels: lbls, TimestampMs: e.ts,
				Value: e.value, Score: e.score, Expected: e.expected,
				Lower: e.lower, Upper: e.upper, Anomalous: e.anomalous,
			}
			if !fn(e.s.hash, &r) {
				done, stopped = j+1, true
				break
			}
		}
		n := copy(sh.results, sh.results[done:])
		clear(sh.results[n:]) // drop series pointers so expired series can be collected
		sh.results = sh.results[:n]
		sh.mu.Unlock()
		if stopped {
			return
		}
	}
}

// Recent calls fn for every scored series matched by sel (and by tenant,
// when not empty) that has a result between fromMs and toMs (inclusive),
// with those results oldest first. lbls and points are reused between calls
// (the label strings may be kept).
//
// Calm series are included: every series contributes its latest result,
// at full precision, from the fields it keeps anyway; series that have had
// an anomaly add the older results of their history ring.
// So a selector over a healthy fleet returns one point per series and no
// per-series memory is added for it.
func (d *Detector) Recent(sel Selector, tenant string, fromMs, toMs int64, fn func(tenant string, lbls Labels, points []HistoryPoint) bool) {
	var pts []HistoryPoint
	var lbls Labels
	for i := range d.shards {
		sh := &d.shards[i]
		sh.mu.Lock()
		for _, head := range sh.series {
			for s := head; s != nil; s = s.next {
				if s.scoredTs == 0 || (tenant != "" && s.tenant != tenant) {
					continue
				}
				if lbls = s.labels.appendTo(lbls[:0]); !sel.Matches(lbls) {
					continue
				}
				pts = pts[:0]
				for p := range s.historyPoints() {
					// The ring holds the latest result too, as float32: it is
					// taken from the series fields below instead.
					if p.ts < fromMs || p.ts > toMs || p.ts >= s.scoredTs {
						continue
					}
					pts = append(pts, HistoryPoint{TimestampMs: p.ts, Value: float64(p.value), Score: float64(p.score), Expected: float64(p.expected), Lower: float64(p.lower), Upper: float64(p.upper)})
				}
				if s.scoredTs >= fromMs && s.scoredTs <= toMs {
					pts = append(pts, HistoryPoint{
						TimestampMs: s.scoredTs, Value: s.value, Score: s.score,
						Expected: s.expected, Lower: s.lower, Upper: s.upper,
					})
				}
				if len(pts) == 0 {
					continue
				}
				if !fn(s.tenant, lbls, pts) {
					sh.mu.Unlock()
					return
				}
			}
		}
		sh.mu.Unlock()
	}
}
