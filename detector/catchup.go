package detector

import (
	"errors"
	"math"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// CatchUpConfig bounds the per-series backlog that lets samples arriving
// faster than inference (a sender catching up its WAL after an outage, a
// replay) be scored in order, every one: a sample that arrives while its
// series waits for a prediction is queued instead of entering the window
// unscored, and is scored once the prediction it needs is made.
type CatchUpConfig struct {
	// MaxSamplesPerSeries bounds one series' backlog (16 bytes a sample,
	// allocated only while the series lags, freed when it caught up). A
	// sample beyond it enters the window with the whole backlog, unscored
	// (samples_unscored_total{reason="inference_lag"}), and scoring resumes
	// from there. 0 turns catch-up off: samples that arrive before the
	// prediction are never scored.
	MaxSamplesPerSeries int `yaml:"max_samples_per_series"`
	// MaxSamples bounds the backlogs of all series together, so a fleet
	// that lags at once (every series after an outage) cannot exhaust memory.
	MaxSamples int `yaml:"max_samples"`
}

// DefaultCatchUpConfig: 8,192 samples cover 34 h of a 15 s series; 4 Mi
// samples are 64 MiB of backlog at most.
var DefaultCatchUpConfig = CatchUpConfig{
	MaxSamplesPerSeries: 8192,
	MaxSamples:          4 << 20,
}

func (c CatchUpConfig) validate() []error {
	var errs []error
	if c.MaxSamplesPerSeries < 0 {
		errs = append(errs, errors.New("detector.catch_up.max_samples_per_series must be >= 0 (0: off)"))
	}
	if c.MaxSamples < 0 {
		errs = append(errs, errors.New("detector.catch_up.max_samples must be >= 0"))
	}
	return errs
}

// backlog is a growable ring of samples waiting, in order, for their
// series' next prediction. The series points to it (series.bl) only while
// it lags: a series that keeps up (the common case) pays 8 bytes of its
// 768-byte size class for it. A series' backlog is never empty, and a
// series with one is pending.
//
// The receive path does not write into buf: it appends a queued sample to
// its shard's staging log (shard.staged, written in arrival order, so the
// write stays in cache) and only counts it here; inference moves staged
// samples into buf (unstage) before it scores them. When many series lag,
// each series' slot in buf is a cache miss, and it is inference's thread,
// at a lower priority, that pays it.
type backlog struct {
	buf     []Sample // len is a power of two
	head, n int      // samples in buf
	staged  int      // samples in the shard's staging log, newer than buf's
	// newest is the timestamp of the newest queued sample (len() > 0).
	newest int64
}

// stagedSample is a queued sample not yet moved into its backlog's buf.
type stagedSample struct {
	bl  *backlog
	smp Sample
}

const minBacklog = 16

// maxKeptStaging bounds the staging log array a shard keeps once moved, so
// one burst does not pin a large array per shard.
const maxKeptStaging = 4096

// len is how many samples are queued, in buf and staged.
func (b *backlog) len() int { return b.n + b.staged }

func (b *backlog) push(s Sample) {
	if b.n == len(b.buf) {
		nb := make([]Sample, max(minBacklog, 2*len(b.buf)))
		for i := range b.n {
			nb[i] = b.buf[(b.head+i)&(len(b.buf)-1)]
		}
		b.buf, b.head = nb, 0
	}
	b.buf[(b.head+b.n)&(len(b.buf)-1)] = s
	b.n++
}

// pop removes the oldest sample from buf; b.n must be > 0.
func (b *backlog) pop() Sample {
	s := b.buf[b.head]
	b.head = (b.head + 1) & (len(b.buf) - 1)
	b.n--
	return s
}

// stage queues smp behind bl's samples through the shard's staging log.
// Called with the shard lock held.
func (sh *shard) stage(bl *backlog, smp Sample) {
	bl.staged++
	bl.newest = smp.TimestampMs
	sh.staged = append(sh.staged, stagedSample{bl, smp})
}

// unstage moves the shard's staged samples into their backlogs' bufs, in
// arrival order. Called with the shard lock held.
func (sh *shard) unstage() {
	for i := range sh.staged {
		e := &sh.staged[i]
		e.bl.push(e.smp)
		e.bl.staged--
	}
	if cap(sh.staged) > maxKeptStaging {
		sh.staged = nil
		return
	}
	clear(sh.staged)
	sh.staged = sh.staged[:0]
}

// catchUp is the detector's catch-up bookkeeping.
type catchUp struct {
	samples atomic.Int64 // queued in all backlogs
	series  atomic.Int64 // series with a backlog

	// Owned by the holder of inferMu: what draining backlogs in an
	// inference pass produced, handed on once per pass.
	counts  scoreCounts
	events  []Event
	drained int
}

// catchUpMetrics are registered next to the detector's own.
func (d *Detector) registerCatchUpMetrics(reg prometheus.Registerer) {
	if reg == nil {
		return
	}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sentinel_mesh_catch_up_backlog_samples",
			Help: "Samples queued for scoring behind their series' next prediction (detector.catch_up).",
		}, func() float64 { return float64(d.cu.samples.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sentinel_mesh_catch_up_backlog_series",
			Help: "Series with samples queued for scoring behind their next prediction.",
		}, func() float64 { return float64(d.cu.series.Load()) }),
	)
}

// awaiting reports whether s waits for a prediction that its next sample
// must be scored against (or has samples queued before it). Called with
// the shard lock held.
func (s *series) awaiting(bl *backlog) bool {
	return s.pending && ((bl != nil && bl.len() > 0) || int(s.count) == len(s.ring))
}

// queueWindow queues s for inference if its window is full. Called with the
// shard lock held.
func (d *Detector) queueWindow(sh *shard, s *series, ms *modelState, nowNano int64) {
	if ms != nil && int(s.count) >= ms.model.Window() && int(s.count) == len(s.ring) && !s.pending {
		s.pending = true
		s.enqueuedMicros = wallMicros(nowNano)
		sh.pending = append(sh.pending, s)
	}
}

// kindChangeNaN marks, in order with a series' samples, where it changed
// what it is scored as (a counter on its rate or a gauge as sent,
// resolveKind). A NaN payload no input carries: appendLocked drops NaNs
// other than Prometheus' stale marker.
const kindChangeNaN = 0x7ff0000000000003

// isRestart reports whether v is a stale marker or a kind change: the
// series' window starts afresh there.
func isRestart(v float64) bool {
	b := math.Float64bits(v)
	return b == staleNaN || b == kindChangeNaN
}

// restart handles a stale marker or kind change smp: the target is gone
// or the series now measures something else, so the run ends, an open
// anomaly closes, and the next sample starts a fresh window. seq moves on
// so an inference already running for the old window is not taken for the
// new one. After a kind change the calibration restarts too: rates and raw
// values share no statistics.
func (d *Detector) restart(s *series, smp Sample, ms *modelState, events *[]Event) {
	if s.anomalyOpen() {
		*events = append(*events, d.closeAnomaly(s, smp.TimestampMs, ms))
	}
	s.reset()
	s.seq++
	if math.Float64bits(smp.Value) == kindChangeNaN {
		s.cal = calibration{}
	}
}

// wallMicros is a wall clock in microseconds, modulo 2^32: the difference of
// two, as uint32, is right for spans under 71 minutes.
func wallMicros(nano int64) uint32 { return uint32(nano / 1000) }

// ingest routes one accepted sample (or stale marker) into s: scores it
// against the pending prediction, pushes it into the window and queues the
// window for inference. Called with the shard lock held.
func (d *Detector) ingest(sh *shard, s *series, smp Sample, ms *modelState, nowNano int64, counts *scoreCounts, events *[]Event) {
	if isRestart(smp.Value) {
		d.restart(s, smp, ms, events)
		return
	}
	gapMs := smp.TimestampMs - s.lastTs
	s.lastTs = smp.TimestampMs
	if ev, ok := d.score(s, smp, gapMs, ms, counts); ok {
		*events = append(*events, ev)
	}
	if d.resultLogCap > 0 && s.scoredTs == smp.TimestampMs {
		d.logResult(sh, s)
	}
	s.push(smp.Value)
	s.seq++
	s.predValid = false
	d.queueWindow(sh, s, ms, nowNano)
}

// cuChunk is how many of max_samples' slots a batch reserves at a time: one
// atomic operation per chunk instead of one per queued sample. (A locked
// instruction waits for the sample's store into the backlog, a cache miss
// when many series lag, to complete.) Slots a batch does not use go back at
// Commit, so the backlogs together never exceed max_samples.
const cuChunk = 256

// reserve takes one of max_samples' slots for a sample of batch b, or
// reports false when they are all taken.
func (d *Detector) reserve(b *appendBatch) bool {
	if b.cuFree > 0 {
		b.cuFree--
		return true
	}
	limit := int64(d.cfg.CatchUp.MaxSamples)
	for {
		cur := d.cu.samples.Load()
		if cur >= limit {
			return false
		}
		n := min(cuChunk, limit-cur)
		if d.cu.samples.CompareAndSwap(cur, cur+n) {
			b.cuFree = n - 1
			return true
		}
	}
}

// queue appends smp to s's backlog bl (nil if s has none) and returns the
// backlog; or, when the backlog (or all backlogs together) is full, lets the
// backlog and smp enter the window unscored, so the series scores current
// data again from its next prediction on, and returns nil.
// Called with the shard lock held, when s.awaiting.
func (d *Detector) queue(sh *shard, s *series, bl *backlog, smp Sample, ms *modelState, nowNano int64, b *appendBatch) *backlog {
	cfg := &d.cfg.CatchUp
	// 0 is off: no backlog at all, not one of a single sample per lagging
	// series (which kept Run inferring back to back).
	if cfg.MaxSamplesPerSeries > 0 && (bl == nil || bl.len() < cfg.MaxSamplesPerSeries) && d.reserve(b) {
		if bl == nil {
			bl = &backlog{}
			s.bl = bl
			d.cu.series.Add(1)
		}
		sh.stage(bl, smp)
		return bl
	}
	// Overflow: skip ahead. The prediction in flight (if any) is for a
	// window these samples move past; seq tells inference to queue the
	// new window instead.
	if bl != nil {
		if bl.staged > 0 {
			sh.unstage()
		}
		d.cu.samples.Add(-int64(bl.n))
		d.cu.series.Add(-1)
		s.bl = nil
		for bl.n > 0 {
			d.skip(s, bl.pop(), ms, &b.counts, &b.events)
		}
	}
	d.skip(s, smp, ms, &b.counts, &b.events)
	return nil
}

// skip pushes smp into the window without scoring it.
func (d *Detector) skip(s *series, smp Sample, ms *modelState, counts *scoreCounts, events *[]Event) {
	if isRestart(smp.Value) {
		d.restart(s, smp, ms, events)
		return
	}
	counts.lag++
	s.lastTs = smp.TimestampMs
	s.value = smp.Value
	s.push(smp.Value)
	s.seq++
	s.predValid = false
}

// drain scores s's queued samples in order until s waits for a prediction
// again or its backlog is empty. Called by inference, with the shard lock
// held, once s's prediction (or its failure) is known.
func (d *Detector) drain(sh *shard, s *series, ms *modelState, nowNano int64) {
	bl := s.bl
	if bl == nil {
		return
	}
	if bl.staged > 0 {
		sh.unstage()
	}
	n := 0
	for bl.n > 0 && !s.pending {
		d.ingest(sh, s, bl.pop(), ms, nowNano, &d.cu.counts, &d.cu.events)
		n++
	}
	d.cu.samples.Add(-int64(n))
	d.cu.drained += n
	if bl.n == 0 {
		d.cu.series.Add(-1)
		s.bl = nil
	}
}

// flushCatchUp hands on what draining produced in one inference pass and
// returns how many backlogged samples it scored. Called with inferMu held.
func (d *Detector) flushCatchUp() int {
	d.metrics.countScores(d.cu.counts)
	d.cu.counts = scoreCounts{}
	d.emit(d.cu.events)
	clear(d.cu.events)
	d.cu.events = d.cu.events[:0]
	n := d.cu.drained
	d.cu.drained = 0
	return n
}

// catchingUp reports whether some series has queued samples, so Run
// infers again at once instead of waiting for the next batch interval.
func (d *Detector) catchingUp() bool { return d.cu.series.Load() > 0 }
