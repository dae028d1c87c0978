package detector

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// SeriesState is the portable state of one series: what another detector
// needs to keep scoring it without a cold start (window, calibration, last
// timestamp, latest result, open anomaly). Inputs that move series between
// replicas (kafka) export it from the old owner and import it into the new.
type SeriesState struct {
	Tenant string
	Labels Labels
	// Window holds the newest values in time order, at most the model window.
	Window []float64
	// LastTs is the newest accepted sample's timestamp (ms); older samples
	// are dropped as out of order after import.
	LastTs int64

	// Calibration of the prediction error distribution.
	CalN        uint32
	CalErrMean  float32
	CalErrVar   float32
	CalShortErr float32
	// Value statistics, variance-drop state and empirical tails of the
	// scoring (format 2). CalVN 0 means they are absent (format 1, or a
	// series not scored yet): after import they restart, and the series
	// scores 0 for warmup_samples samples and conservatively for the next 100.
	CalVN                                                      uint32
	CalValMean, CalValVar, CalValShort, CalVarShort, CalVarLow float32
	// Shares of the 16 bins, then the largest value seen.
	CalErrTail, CalLvlTail [histBins + 1]float32
	// Running range of the values (format 3). A format 2 record decodes
	// with the long-term mean ± 3 standard deviations instead.
	CalValMax, CalValMin float32
	// Daily profile and the statistics of its residual (format 4).
	// CalResN 0 means they are absent (format 3 or older): after import the
	// profile restarts.
	CalResN                            uint32
	CalResMean, CalResVar, CalResShort float32
	CalResTail                         [histBins + 1]float32
	CalProfile                         [profileBins]float32
	CalProfileVisited                  uint32 // bit per bin
	CalProfileStart                    int64  // unix seconds
	// Spread around the profile per bin, the point term's tail and the
	// typical sampling interval (format 5). A format 4 record restarts them.
	CalProfileVar [profileBins]float32
	CalPointTail  [histBins + 1]float32
	CalIntervalMs float32
	CalCycle      bool // the profile is in use (DailyProfileRatio)
	// The point residual's short mean (PointWindow, format 6). A format 5
	// record restarts it at 0.
	CalPointShort float32

	// Latest result; ScoredTs is 0 if the series was never scored.
	Value, Score, Expected, Lower, Upper float64
	ScoredTs                             int64

	// Open anomaly; AnomalyOpen false means none. IDs are per process, so
	// an imported open anomaly gets a new ID.
	AnomalyOpen bool
	OpenedAt    int64
	LastAboveTs int64
	Peak        float64
	// Cause is the open anomaly's (format 7; CauseUnknown before).
	Cause Cause

	// What the series is scored as (counter_rate, format 7): Kind is
	// MetricTypeUnknown when not resolved yet (and in older records: the
	// series resolves again at its next sample); KindDeclared says metadata
	// declared it, not the name. CounterBase is a counter's last raw value,
	// if HasCounterBase (older records: its next sample only sets the base
	// again).
	Kind           MetricType
	KindDeclared   bool
	HasCounterBase bool
	CounterBase    float64
}

// Format versions: 1 has the error statistics only; 2 appends the value
// statistics and empirical tails; 3 appends the running range of the
// values; 4 the daily profile; 5 the spread around the profile, the point
// term's tail and the sampling interval; 6 the point residual's short
// mean; 7 what the series is scored as, a counter's last raw value and the
// open anomaly's cause. All decode.
const (
	stateFormatV1 = 1
	stateFormatV2 = 2
	stateFormatV3 = 3
	stateFormatV4 = 4
	stateFormatV5 = 5
	stateFormatV6 = 6
	stateFormatV7 = 7
)

// Format 7's kind byte: the MetricType in the low bits, and flags.
const (
	kindDeclaredBit = 0x80
	kindBaseBit     = 0x40 // a counter base (8 bytes) follows the cause
)

// rangeFromMoments is the range a format 2 record restores: mean ± 3
// standard deviations, which a calm series rarely leaves.
const rangeFromMoments = 3

// MarshalBinary encodes s in a compact versioned format.
func (s *SeriesState) MarshalBinary() ([]byte, error) {
	return s.AppendBinary(nil)
}

// AppendBinary appends the encoding of s to b.
func (s *SeriesState) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, stateFormatV7)
	b = appendString(b, s.Tenant)
	b = binary.AppendUvarint(b, uint64(len(s.Labels)))
	for _, l := range s.Labels {
		b = appendString(b, l.Name)
		b = appendString(b, l.Value)
	}
	b = binary.AppendUvarint(b, uint64(len(s.Window)))
	for _, v := range s.Window {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
	}
	b = binary.AppendVarint(b, s.LastTs)
	b = binary.AppendUvarint(b, uint64(s.CalN))
	b = appendFloat32s(b, s.CalErrMean, s.CalErrVar, s.CalShortErr)
	for _, f := range [...]float64{s.Value, s.Score, s.Expected, s.Lower, s.Upper, s.Peak} {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
	}
	b = binary.AppendVarint(b, s.ScoredTs)
	var flags byte
	if s.AnomalyOpen {
		flags |= 1
	}
	b = append(b, flags)
	b = binary.AppendVarint(b, s.OpenedAt)
	b = binary.AppendVarint(b, s.LastAboveTs)
	b = binary.AppendUvarint(b, uint64(s.CalVN))
	if s.CalVN > 0 {
		b = appendFloat32s(b, s.CalValMean, s.CalValVar, s.CalValShort, s.CalVarShort, s.CalVarLow)
		b = appendFloat32s(b, s.CalErrTail[:]...)
		b = appendFloat32s(b, s.CalLvlTail[:]...)
		b = appendFloat32s(b, s.CalValMax, s.CalValMin)
		b = binary.AppendUvarint(b, uint64(s.CalResN))
		if s.CalResN > 0 {
			b = appendFloat32s(b, s.CalResMean, s.CalResVar, s.CalResShort)
			b = appendFloat32s(b, s.CalResTail[:]...)
			b = appendFloat32s(b, s.CalProfile[:]...)
			b = binary.LittleEndian.AppendUint32(b, s.CalProfileVisited)
			b = binary.AppendVarint(b, s.CalProfileStart)
			b = appendFloat32s(b, s.CalProfileVar[:]...)
			b = appendFloat32s(b, s.CalPointTail[:]...)
			b = appendFloat32s(b, s.CalIntervalMs)
			var cycle byte
			if s.CalCycle {
				cycle = 1
			}
			b = append(b, cycle)
			b = appendFloat32s(b, s.CalPointShort)
		}
	}
	kind := byte(s.Kind)
	if s.KindDeclared {
		kind |= kindDeclaredBit
	}
	if s.HasCounterBase {
		kind |= kindBaseBit
	}
	b = append(b, kind, byte(s.Cause))
	if s.HasCounterBase {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(s.CounterBase))
	}
	return b, nil
}

func appendFloat32s(b []byte, fs ...float32) []byte {
	for _, f := range fs {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(f))
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

var errShortState = errors.New("truncated series state")

type stateReader struct {
	b   []byte
	err error
}

func (r *stateReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errShortState
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *stateReader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errShortState
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *stateReader) fixed(n int) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b) < n {
		r.err = errShortState
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *stateReader) string() string {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.err = errShortState
		return ""
	}
	return string(r.fixed(int(n)))
}

func (r *stateReader) f64() float64 {
	if b := r.fixed(8); b != nil {
		return math.Float64frombits(binary.LittleEndian.Uint64(b))
	}
	return 0
}

func (r *stateReader) f32s(dst []float32) {
	for i := range dst {
		dst[i] = r.f32()
	}
}

func (r *stateReader) f32() float32 {
	if b := r.fixed(4); b != nil {
		return math.Float32frombits(binary.LittleEndian.Uint32(b))
	}
	return 0
}

// maxStateItems bounds label and window counts so a corrupt record cannot
// make UnmarshalBinary allocate without limit.
const maxStateItems = 1 << 16

// UnmarshalBinary decodes data produced by MarshalBinary. s does not alias data.
func (s *SeriesState) UnmarshalBinary(data []byte) error {
	if len(data) == 0 || data[0] < stateFormatV1 || data[0] > stateFormatV7 {
		return fmt.Errorf("cannot decode series state: unknown format version")
	}
	r := stateReader{b: data[1:]}
	*s = SeriesState{Tenant: r.string()}
	n := r.uvarint()
	if n > maxStateItems {
		return fmt.Errorf("cannot decode series state: %d labels", n)
	}
	if n > 0 {
		s.Labels = make(Labels, 0, n)
	}
	for i := uint64(0); i < n && r.err == nil; i++ {
		s.Labels = append(s.Labels, Label{Name: r.string(), Value: r.string()})
	}
	n = r.uvarint()
	if n > maxStateItems {
		return fmt.Errorf("cannot decode series state: window of %d values", n)
	}
	if n > 0 {
		s.Window = make([]float64, 0, n)
	}
	for i := uint64(0); i < n && r.err == nil; i++ {
		s.Window = append(s.Window, r.f64())
	}
	s.LastTs = r.varint()
	s.CalN = uint32(r.uvarint())
	s.CalErrMean, s.CalErrVar, s.CalShortErr = r.f32(), r.f32(), r.f32()
	s.Value, s.Score, s.Expected, s.Lower, s.Upper, s.Peak = r.f64(), r.f64(), r.f64(), r.f64(), r.f64(), r.f64()
	s.ScoredTs = r.varint()
	if f := r.fixed(1); f != nil {
		s.AnomalyOpen = f[0]&1 != 0
	}
	s.OpenedAt = r.varint()
	s.LastAboveTs = r.varint()
	if data[0] >= stateFormatV2 {
		s.CalVN = uint32(r.uvarint())
		if s.CalVN > 0 {
			s.CalValMean, s.CalValVar, s.CalValShort, s.CalVarShort, s.CalVarLow = r.f32(), r.f32(), r.f32(), r.f32(), r.f32()
			r.f32s(s.CalErrTail[:])
			r.f32s(s.CalLvlTail[:])
			if data[0] >= stateFormatV3 {
				s.CalValMax, s.CalValMin = r.f32(), r.f32()
			} else {
				sd := float32(math.Sqrt(float64(max(s.CalValVar, 0))))
				s.CalValMax, s.CalValMin = s.CalValMean+rangeFromMoments*sd, s.CalValMean-rangeFromMoments*sd
			}
			if data[0] >= stateFormatV4 {
				s.CalResN = uint32(r.uvarint())
			}
			if s.CalResN > 0 {
				s.CalResMean, s.CalResVar, s.CalResShort = r.f32(), r.f32(), r.f32()
				r.f32s(s.CalResTail[:])
				r.f32s(s.CalProfile[:])
				if b := r.fixed(4); b != nil {
					s.CalProfileVisited = binary.LittleEndian.Uint32(b)
				}
				s.CalProfileStart = r.varint()
				if data[0] >= stateFormatV5 {
					r.f32s(s.CalProfileVar[:])
					r.f32s(s.CalPointTail[:])
					s.CalIntervalMs = r.f32()
					if f := r.fixed(1); f != nil {
						s.CalCycle = f[0]&1 != 0
					}
					if data[0] >= stateFormatV6 {
						s.CalPointShort = r.f32()
					}
				}
			}
		}
	}
	if data[0] >= stateFormatV7 {
		if f := r.fixed(2); f != nil {
			s.Kind, s.Cause = MetricType(f[0]&^(kindDeclaredBit|kindBaseBit)), Cause(f[1])
			s.KindDeclared, s.HasCounterBase = f[0]&kindDeclaredBit != 0, f[0]&kindBaseBit != 0
			if s.Kind > MetricTypeCounter {
				return fmt.Errorf("cannot decode series state: unknown kind %d", s.Kind)
			}
			if !slices.Contains(Causes, s.Cause) {
				s.Cause = CauseUnknown
			}
		}
		if s.HasCounterBase {
			s.CounterBase = r.f64()
		}
	}
	if r.err != nil {
		return fmt.Errorf("cannot decode series state: %w", r.err)
	}
	return nil
}

// SeriesHash is the stable 64-bit identity of a series, the same the
// detector shards by. Inputs use it to route a series to one partition.
func SeriesHash(tenant string, lbls Labels) uint64 { return hashSeries(tenant, lbls) }

// ExportState calls fn with the state of every series for which filter
// (nil: all) returns true, holding one shard lock at a time. The state's
// slices are fresh copies fn may keep; filter's ls is reused between calls.
// Stops early when fn returns false. filter and fn must not call back into
// the detector.
func (d *Detector) ExportState(filter func(tenant string, ls Labels) bool, fn func(SeriesState) bool) {
	var lbls Labels
	for i := range d.shards {
		sh := &d.shards[i]
		var out []SeriesState
		sh.mu.Lock()
		for _, head := range sh.series {
			for s := head; s != nil; s = s.next {
				if filter != nil {
					if lbls = s.labels.appendTo(lbls[:0]); !filter(s.tenant, lbls) {
						continue
					}
				}
				out = append(out, exportSeries(s))
			}
		}
		sh.mu.Unlock()
		for _, st := range out {
			if !fn(st) {
				return
			}
		}
	}
}

func exportSeries(s *series) SeriesState {
	st := SeriesState{
		Tenant: s.tenant, Labels: s.labels.labels(),
		Window:      s.window(nil),
		LastTs:      s.lastTs,
		CalN:        s.cal.n,
		CalErrMean:  s.cal.errMean,
		CalErrVar:   s.cal.errVar,
		CalShortErr: s.cal.shortErr,
		CalVN:       s.cal.vn,
		CalValMean:  s.cal.valMean, CalValVar: s.cal.valVar, CalValShort: s.cal.valShort,
		CalVarShort: s.cal.varShort, CalVarLow: s.cal.varLow,
		CalValMax: s.cal.valMax, CalValMin: s.cal.valMin,
		CalErrTail: s.cal.errTail.export(), CalLvlTail: s.cal.lvlTail.export(),
		CalResN: s.cal.daily.n, CalResMean: s.cal.daily.resMean, CalResVar: s.cal.daily.resVar,
		CalResShort: s.cal.daily.resShort,
		CalProfile:  s.cal.daily.bin, CalProfileVisited: s.cal.daily.visited, CalProfileStart: s.cal.daily.startSec,
		CalProfileVar: s.cal.daily.binVar, CalIntervalMs: s.cal.daily.gapMs, CalCycle: s.cal.daily.cycle, CalPointShort: s.cal.daily.ptShort,
		Value: s.value, Score: s.score, Expected: s.expected, Lower: s.lower, Upper: s.upper,
		ScoredTs: s.scoredTs,
	}
	if t := s.cal.daily.tails; t != nil {
		st.CalResTail, st.CalPointTail = t.res.export(), t.pt.export()
	}
	if a := s.an; a != nil {
		st.AnomalyOpen = a.id != 0
		st.OpenedAt, st.LastAboveTs, st.Peak = a.openedAt, a.lastAboveTs, a.peak
		if st.AnomalyOpen {
			st.Cause = a.cause
		}
	}
	st.Kind, st.KindDeclared = s.kind, s.kindDeclared
	if !math.IsNaN(s.prevRaw) {
		st.HasCounterBase, st.CounterBase = true, s.prevRaw
	}
	return st
}

// ImportState installs st as the state of its series, creating the series
// if needed. A local series whose newest sample is at least as new as
// st.LastTs keeps its own state. It reports whether st was applied; false
// also when the series is unselected or detector.max_series is reached.
// A full window is queued for inference so the next sample is scored.
func (d *Detector) ImportState(st SeriesState) bool {
	if !d.cfg.Selection.Matches(st.Labels) {
		return false
	}
	h := hashSeries(st.Tenant, st.Labels)
	sh := &d.shards[h%numShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	s := sh.series[h]
	for s != nil && (s.tenant != st.Tenant || !s.labels.equal(st.Labels)) {
		s = s.next
	}
	if s == nil {
		if s, _ = d.createSeries(sh, h, st.Tenant, st.Labels); s == nil {
			return false
		}
		d.trackRestored(s, st.Tenant, st.Labels)
	} else if s.lastTs >= st.LastTs || s.bl != nil {
		// Samples waiting in the backlog are newer than what a state
		// record carries.
		return false
	}
	ms := d.model.Load()
	if ms != nil && len(s.ring) != ms.model.Window() {
		s.ring = make([]float32, ms.model.Window())
	}
	s.reset()
	win := st.Window
	if len(win) > len(s.ring) {
		win = win[len(win)-len(s.ring):]
	}
	for _, v := range win {
		s.push(v)
	}
	s.seq++
	s.lastTs = st.LastTs
	s.seen(time.Now())
	s.cal = restoreCalibration(&st)
	s.value, s.score, s.expected, s.lower, s.upper, s.scoredTs = st.Value, st.Score, st.Expected, st.Lower, st.Upper, st.ScoredTs
	if st.AnomalyOpen && s.an == nil {
		s.an = d.newAnomalyState()
	}
	switch {
	case st.AnomalyOpen && !s.anomalyOpen():
		s.an.id = d.nextID.Add(1)
		d.metrics.anomaliesOpen.Inc()
	case !st.AnomalyOpen && s.anomalyOpen():
		s.an.id = 0
		d.metrics.anomaliesOpen.Dec()
	}
	if a := s.an; a != nil {
		a.openedAt, a.lastAboveTs, a.peak = st.OpenedAt, st.LastAboveTs, st.Peak
		a.cause = st.Cause
	}
	// The kind resolves again at the next sample (metadata may have moved
	// on); a counter continues from its last raw value.
	s.kind, s.kindDeclared, s.kindEpoch = st.Kind, st.KindDeclared, 0
	s.prevRaw = math.NaN()
	if st.HasCounterBase {
		s.prevRaw = st.CounterBase
	}
	if ms != nil && int(s.count) == len(s.ring) && !s.pending {
		s.pending = true
		s.enqueuedMicros = wallMicros(time.Now().UnixNano())
		sh.pending = append(sh.pending, s)
	}
	return true
}

// DeleteSeries forgets every series for which filter returns true, without
// closing their anomalies (the series moved to another replica, which
// continues them), and returns how many it removed. Series queued for
// inference are removed once the queue drained (on a later call). filter's
// ls is reused between calls.
func (d *Detector) DeleteSeries(filter func(tenant string, ls Labels) bool) int {
	var lbls Labels
	return d.removeSeries(func(s *series) bool {
		if lbls = s.labels.appendTo(lbls[:0]); !filter(s.tenant, lbls) {
			return false
		}
		if s.anomalyOpen() {
			d.metrics.anomaliesOpen.Dec()
		}
		return true
	})
}

// restoreCalibration is the calibration carried by st. Without the value
// statistics (CalVN 0) they and the tails restart.
func restoreCalibration(st *SeriesState) calibration {
	c := calibration{n: st.CalN, errMean: st.CalErrMean, errVar: st.CalErrVar, shortErr: st.CalShortErr}
	if st.CalVN > 0 {
		c.vn = st.CalVN
		c.valMean, c.valVar, c.valShort = st.CalValMean, st.CalValVar, st.CalValShort
		c.varShort, c.varLow = st.CalVarShort, st.CalVarLow
		c.valMax, c.valMin = st.CalValMax, st.CalValMin
		c.errTail.restore(st.CalErrTail)
		c.lvlTail.restore(st.CalLvlTail)
		if st.CalResN > 0 {
			c.daily = dailyProfile{
				bin: st.CalProfile, visited: st.CalProfileVisited, startSec: st.CalProfileStart,
				n: st.CalResN, resMean: st.CalResMean, resVar: st.CalResVar, resShort: st.CalResShort,
				binVar: st.CalProfileVar, gapMs: st.CalIntervalMs, cycle: st.CalCycle, ptShort: st.CalPointShort,
			}
			var none [histBins + 1]float32
			if st.CalResTail != none || st.CalPointTail != none {
				t := c.daily.cycleTails()
				t.res.restore(st.CalResTail)
				t.pt.restore(st.CalPointTail)
			}
		}
		// Not carried: the band extrapolates from the tail's maximum until
		// calm samples teach it again.
		c.setBandMax(float64(c.errTail.max))
	}
	return c
}
