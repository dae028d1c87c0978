package detector

// Support for checkpoints of the whole detector (internal/checkpoint): the
// state of each series travels as the opaque, versioned SeriesState
// encoding, plus the one thing SeriesState deliberately leaves out, the ID
// of the series' open anomaly, which a restart (unlike a handoff between
// replicas) must keep so outputs can close what they opened.

// Shards is the number of shards SnapshotShard accepts (0 … Shards()-1).
func (d *Detector) Shards() int { return numShards }

// SnapshotShard calls fn with the state of every series of shard i and the
// ID of its open anomaly (0: none). fn runs under that shard's lock, and
// only it, for at most snapshotChunk series at a time, so ingest and
// scoring wait for a few series' encoding at most; fn should only encode st
// (st.AppendBinary) and must not call back into the detector. st is valid
// during the call only. A series removed meanwhile may still be passed.
func (d *Detector) SnapshotShard(i int, fn func(st *SeriesState, anomalyID uint64)) {
	sh := &d.shards[i]
	sh.mu.Lock()
	list := make([]*series, 0, len(sh.series))
	for _, head := range sh.series {
		for s := head; s != nil; s = s.next {
			list = append(list, s)
		}
	}
	sh.mu.Unlock()
	var st SeriesState // one allocation: st escapes into fn
	for len(list) > 0 {
		n := min(len(list), snapshotChunk)
		sh.mu.Lock()
		for _, s := range list[:n] {
			st = exportSeries(s)
			var id uint64
			if s.anomalyOpen() {
				id = s.an.id
			}
			fn(&st, id)
		}
		sh.mu.Unlock()
		list = list[n:]
	}
}

// snapshotChunk bounds the series SnapshotShard encodes per lock hold
// (about 2 µs each).
const snapshotChunk = 64

// RestoreState is ImportState for a restart: an open anomaly keeps
// anomalyID instead of getting a new one, so its close event carries the ID
// its open event had. It reports whether st was applied.
func (d *Detector) RestoreState(st SeriesState, anomalyID uint64) bool {
	if !d.ImportState(st) {
		return false
	}
	if !st.AnomalyOpen || anomalyID == 0 {
		return true
	}
	h := hashSeries(st.Tenant, st.Labels)
	sh := &d.shards[h%numShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for s := sh.series[h]; s != nil; s = s.next {
		if s.tenant == st.Tenant && s.labels.equal(st.Labels) && s.anomalyOpen() {
			s.an.id = anomalyID
			break
		}
	}
	return true
}

// LastAnomalyID is the ID given to the newest anomaly (0: none yet).
func (d *Detector) LastAnomalyID() uint64 { return d.nextID.Load() }

// SeedAnomalyIDs makes the next anomaly's ID greater than last.
func (d *Detector) SeedAnomalyIDs(last uint64) {
	for {
		cur := d.nextID.Load()
		if cur >= last || d.nextID.CompareAndSwap(cur, last) {
			return
		}
	}
}

// OpenAnomalies calls fn with an open event for every open anomaly, holding
// one shard lock at a time; fn must not call back into the detector. The
// event is rebuilt from the series' state: value, expected and bounds are
// the latest result's, Score and PeakScore the peak so far (the score at
// opening is not kept) and Direction that of the latest result. It serves
// re-announcing anomalies restored from a checkpoint to outputs that keep
// them alive by re-sending (Alertmanager).
func (d *Detector) OpenAnomalies(fn func(ev Event)) {
	ms := d.model.Load()
	for i := range d.shards {
		sh := &d.shards[i]
		var evs []Event
		sh.mu.Lock()
		for _, head := range sh.series {
			for s := head; s != nil; s = s.next {
				if !s.anomalyOpen() {
					continue
				}
				dir := DirectionUp
				if s.value < s.expected {
					dir = DirectionDown
				}
				ev := d.event(s, EventOpen, Sample{TimestampMs: s.an.openedAt, Value: s.value}, ms, dir)
				ev.Score = s.an.peak
				evs = append(evs, ev)
			}
		}
		sh.mu.Unlock()
		for _, ev := range evs {
			fn(ev)
		}
	}
}
