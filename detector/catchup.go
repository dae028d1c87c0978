package detector

import (
	"errors"
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
// series' next prediction. It lives in the shard's backlog map, not in the
// series: a series that keeps up (the common case) pays nothing for it.
type backlog struct {
	buf     []Sample
	head, n int
}

const minBacklog = 16

func (b *backlog) push(s Sample) {
	if b.n == len(b.buf) {
		nb := make([]Sample, max(minBacklog, 2*len(b.buf)))
		for i := range b.n {
			nb[i] = b.buf[(b.head+i)%len(b.buf)]
		}
		b.buf, b.head = nb, 0
	}
	b.buf[(b.head+b.n)%len(b.buf)] = s
	b.n++
}

func (b *backlog) pop() Sample {
	s := b.buf[b.head]
	b.head = (b.head + 1) % len(b.buf)
	b.n--
	return s
}

// newestTs is the timestamp of the newest queued sample; b.n must be > 0.
func (b *backlog) newestTs() int64 {
	return b.buf[(b.head+b.n-1)%len(b.buf)].TimestampMs
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
	return s.pending && ((bl != nil && bl.n > 0) || int(s.count) == len(s.ring))
}

// queueWindow queues s for inference if its window is full. Called with the
// shard lock held.
func (d *Detector) queueWindow(sh *shard, s *series, ms *modelState, nowNano int64) {
	if ms != nil && int(s.count) >= ms.model.Window() && int(s.count) == len(s.ring) && !s.pending {
		s.pending = true
		s.enqueuedNano = nowNano
		sh.pending = append(sh.pending, s)
	}
}

// ingest routes one accepted sample (or stale marker) into s: scores it
// against the pending prediction, pushes it into the window and queues the
// window for inference. Called with the shard lock held.
func (d *Detector) ingest(sh *shard, s *series, smp Sample, ms *modelState, nowNano int64, counts *scoreCounts, events *[]Event) {
	if IsStaleNaN(smp.Value) {
		// The target is gone: the run ends, an open anomaly closes, and the
		// next sample starts a fresh window. seq moves on so an inference
		// already running for the old window is not taken for the new one.
		if s.anomalyOpen() {
			*events = append(*events, d.closeAnomaly(s, smp.TimestampMs, ms))
		}
		s.reset()
		s.seq++
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

// queue appends smp to s's backlog, or, when the backlog (or all backlogs
// together) is full, lets the backlog and smp enter the window unscored so
// the series scores current data again from its next prediction on.
// Called with the shard lock held, when s.awaiting.
func (d *Detector) queue(sh *shard, s *series, smp Sample, ms *modelState, nowNano int64, counts *scoreCounts, events *[]Event) {
	bl := sh.backlog[s]
	cfg := &d.cfg.CatchUp
	// 0 is off: no backlog at all, not one of a single sample per lagging
	// series (which kept Run inferring back to back).
	if cfg.MaxSamplesPerSeries > 0 && (bl == nil || bl.n < cfg.MaxSamplesPerSeries) && d.cu.samples.Load() < int64(cfg.MaxSamples) {
		if bl == nil {
			if sh.backlog == nil {
				sh.backlog = make(map[*series]*backlog)
			}
			bl = &backlog{}
			sh.backlog[s] = bl
			d.cu.series.Add(1)
		}
		bl.push(smp)
		d.cu.samples.Add(1)
		return
	}
	// Overflow: skip ahead. The prediction in flight (if any) is for a
	// window these samples move past; seq tells inference to queue the
	// new window instead.
	if bl != nil {
		d.cu.samples.Add(-int64(bl.n))
		d.cu.series.Add(-1)
		delete(sh.backlog, s)
		for bl.n > 0 {
			d.skip(s, bl.pop(), ms, counts, events)
		}
	}
	d.skip(s, smp, ms, counts, events)
}

// skip pushes smp into the window without scoring it.
func (d *Detector) skip(s *series, smp Sample, ms *modelState, counts *scoreCounts, events *[]Event) {
	if IsStaleNaN(smp.Value) {
		if s.anomalyOpen() {
			*events = append(*events, d.closeAnomaly(s, smp.TimestampMs, ms))
		}
		s.reset()
		s.seq++
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
	bl := sh.backlog[s]
	if bl == nil {
		return
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
		delete(sh.backlog, s)
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
