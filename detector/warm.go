package detector

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// Warming a series from stored history (internal/backfill): the history
// runs through a window and a calibration of its own, as live samples
// would, one inference call per step for all series being warmed, and the
// result becomes the series' state. History yields no result, event or
// scoring metric: those belong to samples that arrive live.

// WarmSeries is the stored history of one series.
type WarmSeries struct {
	Tenant  string
	Labels  Labels   // sorted by name, as for Append
	Samples []Sample // in timestamp order; out-of-order and NaN samples are skipped
}

// WarmOutcome says what Warm did with one series.
type WarmOutcome uint8

const (
	// WarmInstalled: the series now has the warmed state; its next sample
	// is scored.
	WarmInstalled WarmOutcome = iota
	// WarmHasState: the series already had a calibration (restored,
	// warmed before, or scored live) and kept it.
	WarmHasState
	// WarmTooShort: the history never filled a window, so there is no
	// prediction to score the next sample against.
	WarmTooShort
	// WarmUnselected: detector.selectors do not match the series.
	WarmUnselected
	// WarmRefused: detector.max_series or the tenant's series limit.
	WarmRefused
	// WarmModelChanged: a model with another window was loaded meanwhile.
	WarmModelChanged
)

func (o WarmOutcome) String() string {
	switch o {
	case WarmInstalled:
		return "installed"
	case WarmHasState:
		return "has_state"
	case WarmTooShort:
		return "too_short"
	case WarmUnselected:
		return "unselected"
	case WarmRefused:
		return "refused"
	case WarmModelChanged:
		return "model_changed"
	}
	return fmt.Sprintf("WarmOutcome(%d)", uint8(o))
}

// NeedsWarm reports whether the series is unknown to the detector or has
// not yet been compared with a prediction, so history would help it.
func (d *Detector) NeedsWarm(tenant string, lbls Labels) bool {
	h := hashSeries(tenant, lbls)
	sh := &d.shards[h%numShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	s := d.lookup(sh, h, tenant, lbls)
	return s == nil || !hasState(s)
}

// hasState reports whether a series has a calibration worth keeping over a
// warmed one. Called with the shard lock held.
func hasState(s *series) bool { return s.cal.n > 0 || s.an != nil }

// lookup finds a series in its shard. Called with the shard lock held.
func (d *Detector) lookup(sh *shard, h uint64, tenant string, lbls Labels) *series {
	s := sh.series[h]
	for s != nil && (s.tenant != tenant || !s.labels.equal(lbls)) {
		s = s.next
	}
	return s
}

// Warm runs the histories through fresh windows and calibrations and
// installs the result as the state of each series that has none yet, so
// the series' next sample is scored without warm-up. out (len(hs)) gets
// each series' outcome.
//
// A series the detector already tracks without a calibration (created by
// its first live samples while its history was being fetched) takes the
// warmed state; its newest live sample, when newer than the history, is
// then scored against the warmed prediction, with its result and event as
// any live sample (samples between the history's end and that one do not
// enter the window).
//
// Inference holds the detector's inference lock for one step (one sample
// of every series) at a time, so live scoring goes on between steps.
// Warm may be called from several goroutines. It returns ctx's error if
// cancelled, or the model's error; outcomes are then incomplete.
func (d *Detector) Warm(ctx context.Context, hs []WarmSeries, out []WarmOutcome) error {
	if len(out) != len(hs) {
		return fmt.Errorf("cannot warm %d series into %d outcomes", len(hs), len(out))
	}
	ms := d.model.Load()
	if ms == nil {
		return errors.New("cannot warm series: no model loaded")
	}
	type warming struct {
		i       int // index in hs
		s       *series
		next    int  // next sample
		counter bool // scored on its rate (counter_rate)
	}
	ws := make([]warming, 0, len(hs))
	for i := range hs {
		h := &hs[i]
		switch {
		case !d.cfg.Selection.Matches(h.Labels):
			out[i] = WarmUnselected
		case !d.NeedsWarm(h.Tenant, h.Labels):
			// Checked before the work too, not only at install: a series
			// restored from a checkpoint costs no inference.
			out[i] = WarmHasState
		default:
			s := d.newSeries(hashSeries(h.Tenant, h.Labels), h.Tenant, h.Labels)
			counter, _ := d.resolveKind(s, h.Tenant, h.Labels, MetricTypeUnknown)
			ws = append(ws, warming{i: i, s: s, counter: counter})
		}
	}
	batch := make([]*series, 0, len(ws))
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		batch = batch[:0]
		for j := range ws {
			x := &ws[j]
			smps := hs[x.i].Samples
			for x.next < len(smps) {
				smp := smps[x.next]
				x.next++
				if d.warmSample(x.s, smp, x.counter) {
					batch = append(batch, x.s)
					break
				}
			}
		}
		if len(batch) == 0 {
			break
		}
		for _, s := range batch {
			s.enqueuedMicros = wallMicros(time.Now().UnixNano())
		}
		d.inferMu.Lock()
		if d.model.Load() != ms {
			d.inferMu.Unlock()
			for _, x := range ws {
				out[x.i] = WarmModelChanged
			}
			return nil
		}
		err := d.infer(ms, batch)
		d.inferMu.Unlock()
		if err != nil {
			return fmt.Errorf("cannot warm %d series: %w", len(batch), err)
		}
	}
	if d.model.Load() != ms {
		for _, x := range ws {
			out[x.i] = WarmModelChanged
		}
		return nil
	}
	var (
		counts scoreCounts
		events []Event
	)
	for _, x := range ws {
		out[x.i] = d.install(x.s, ms, &counts, &events)
	}
	d.metrics.countScores(counts)
	d.emit(events)
	return nil
}

// warmSample pushes one history sample into s, updating its calibration
// as score would, and reports whether s now needs a prediction. A counter's
// samples become rates as in appendLocked.
func (d *Detector) warmSample(s *series, smp Sample, counter bool) bool {
	if IsStaleNaN(smp.Value) {
		s.reset()
		s.seq++
		s.prevRaw = math.NaN()
		return false
	}
	if smp.TimestampMs <= s.lastTs || math.IsNaN(smp.Value) || math.IsInf(smp.Value, 0) {
		return false
	}
	if counter {
		rate, ok := s.toRate(smp.Value, s.lastTs, smp.TimestampMs)
		if !ok {
			s.lastTs = smp.TimestampMs
			return false
		}
		smp.Value = rate
	}
	gapMs := smp.TimestampMs - s.lastTs
	s.lastTs = smp.TimestampMs
	if s.predValid {
		d.calibrate(s, smp, gapMs)
	}
	s.push(smp.Value)
	s.seq++
	s.predValid = false
	return int(s.count) == len(s.ring)
}

// calibrate is the part of score that teaches the calibration, without a
// result or anomaly transition (TestWarmMatchesLiveScoring compares the two).
func (d *Detector) calibrate(s *series, smp Sample, gapMs int64) {
	_, e, gated := d.deviation(s, smp)
	s.cal.observe(&d.cfg.Scoring, e, smp.Value, smp.TimestampMs, gapMs, gated)
}

// install makes the warmed w the state of its series (see Warm).
func (d *Detector) install(w *series, ms *modelState, counts *scoreCounts, events *[]Event) WarmOutcome {
	if !w.predValid {
		return WarmTooShort
	}
	sh := &d.shards[w.hash%numShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	now := time.Now()
	lbls := w.labels.labels()
	live := d.lookup(sh, w.hash, w.tenant, lbls)
	if live == nil {
		if live, _ = d.createSeries(sh, w.hash, w.tenant, lbls); live == nil {
			return WarmRefused
		}
		d.trackRestored(live, w.tenant, lbls)
		live.seen(now)
	} else if hasState(live) || live.pending || live.bl != nil {
		// Scored live meanwhile, or its first window is being predicted:
		// the live path has taken over.
		return WarmHasState
	}
	newest := Sample{TimestampMs: live.lastTs, Value: live.value}
	scoreNewest := live.count > 0 && live.lastTs > w.lastTs
	// A counter's newest raw value, if live samples came after the history.
	liveTs, liveRaw := live.lastTs, live.prevRaw
	live.ring, live.ringBase, live.head, live.count = w.ring, w.ringBase, w.head, w.count
	live.cal = w.cal
	live.pred, live.predScale, live.predValid = w.pred, w.predScale, true
	live.lastTs, live.prevRaw = w.lastTs, w.prevRaw
	live.kind, live.kindDeclared, live.kindEpoch = w.kind, w.kindDeclared, w.kindEpoch
	// An inference in flight for the old window must not land on this one.
	live.seq++
	if scoreNewest {
		d.ingest(sh, live, newest, ms, now.UnixNano(), counts, events)
	}
	if !math.IsNaN(liveRaw) && liveTs > w.lastTs {
		// The next rate spans from the newest live value, whether it was
		// scored (newest) or only set where the counter stood.
		live.lastTs, live.prevRaw = liveTs, liveRaw
	}
	return WarmInstalled
}

// seenNew tells detector.Config.NewSeries about a series the detector just
// started tracking. Called with the shard lock held; samples is not empty.
func (d *Detector) seenNew(s *series, samples []Sample) {
	if f := d.cfg.NewSeries; f != nil {
		f(s.tenant, s.labels.labels(), samples[0].TimestampMs)
	}
}

// OnNewSeries sets detector.Config.NewSeries. It must be called before
// samples are appended: the hook is read without synchronisation.
func (d *Detector) OnNewSeries(f func(tenant string, lbls Labels, firstTs int64)) {
	d.cfg.NewSeries = f
}
