package detector

import (
	"iter"
	"math"
	"time"
)

// series is the state of one input series. All fields are guarded by the
// lock of the shard that holds the series.
type series struct {
	hash   uint64
	next   *series // hash-collision chain
	tenant string
	labels labelString // immutable for the series' life

	// ring holds the last len(ring) values as float32 offsets from ringBase:
	// half the memory of float64 values, and the precision stays relative
	// to the window's own spread, not to the values' magnitude (a counter
	// at 1e12 keeps its unit steps). head is the index of the oldest.
	ring     []float32
	ringBase float64
	head     int16  // the window is at most onnxmodel.MaxWindow (4096) long
	count    int16  // values in ring, up to len(ring)
	lastSeen uint32 // wall clock of the last sample (Unix seconds), for expiry

	seq       uint32 // bumped on every accepted sample; detects stale predictions
	pending   bool   // queued for inference
	predValid bool   // pred is the prediction for the next sample
	gate      uint16 // index in Detector.gates: direction and minimum deviations
	// kind is what the series is scored as (counter_rate): MetricTypeCounter
	// on its rate, MetricTypeGauge as sent, MetricTypeUnknown before its
	// first sample. kindDeclared: metadata said so, not the name.
	// kindEpoch is the familyTypes epoch it was resolved at (metadata.go),
	// in 16 bits: the struct must stay in its size class.
	kind         MetricType
	kindDeclared bool
	kindEpoch    uint16
	// enqueuedMicros is the wall clock when queued for inference
	// (wallMicros: wraps every 71 minutes, far beyond any latency).
	enqueuedMicros uint32
	lastTs         int64 // newest sample timestamp (ms)
	// prevRaw is a counter's previous raw value (counter_rate, counter.go);
	// NaN before its first sample and for other series.
	prevRaw float64

	// prediction for the next sample, denormalised, and the scale used.
	pred      float64
	predScale float64

	cal calibration

	// latest result
	value, score, expected, lower, upper float64
	scoredTs                             int64

	// an is allocated on the series' first score at or above the threshold:
	// a calm series, the common case, does not pay for it.
	an *anomalyState

	// bl holds the samples waiting for this series' next prediction
	// (detector.catch_up, catchup.go); nil unless the series lags.
	bl *backlog
}

// anomalyState is the anomaly bookkeeping and recent history of a series
// that has had an anomaly.
type anomalyState struct {
	id          uint64 // of the open anomaly; 0 when none is open
	openedAt    int64
	lastAboveTs int64
	peak        float64
	cause       Cause // of the open anomaly; not checkpointed (unknown after a restore)

	hist     []historyPoint
	histHead int32
	histLen  int32
}

// historyPoints yields the series' recent results, oldest first.
func (s *series) historyPoints() iter.Seq[*historyPoint] {
	return func(yield func(*historyPoint) bool) {
		a := s.an
		if a == nil {
			return
		}
		n := int32(len(a.hist))
		for j := range a.histLen {
			if !yield(&a.hist[(a.histHead+j)%n]) {
				return
			}
		}
	}
}

// anomalyOpen reports whether the series has an open anomaly.
func (s *series) anomalyOpen() bool { return s.an != nil && s.an.id != 0 }

// historyPoint is one past result kept for the API.
type historyPoint struct {
	ts                                   int64
	value, expected, lower, upper, score float32
}

// window copies the ring in time order into dst.
func (s *series) window(dst []float64) []float64 {
	dst = dst[:0]
	n := int16(len(s.ring))
	for i := int16(0); i < s.count; i++ {
		dst = append(dst, s.ringBase+float64(s.ring[(s.head+i)%n]))
	}
	return dst
}

func (s *series) push(v float64) {
	n := int16(len(s.ring))
	if s.count == 0 {
		s.ringBase = v
	}
	off := float32(v - s.ringBase)
	if math.IsInf(float64(off), 0) {
		// A jump beyond float32's range: rebase at v (older values that
		// are that far away overflow, and the window is not predicted).
		s.rebase(v)
		off = 0
	}
	if s.count < n {
		s.ring[(s.head+s.count)%n] = off
		s.count++
		return
	}
	s.ring[s.head] = off
	s.head = (s.head + 1) % n
	if s.head == 0 {
		// Once per turn of the ring, so offsets never span more than two
		// windows of the series' movement: one pass every len(ring) samples.
		s.rebase(v)
	}
}

// rebase moves ringBase to base, rewriting the offsets.
func (s *series) rebase(base float64) {
	d := s.ringBase - base
	for i := range s.ring {
		s.ring[i] = float32(float64(s.ring[i]) + d)
	}
	s.ringBase = base
}

// seen records the wall clock of a sample (for Expire).
func (s *series) seen(now time.Time) { s.lastSeen = uint32(now.Unix()) }

func (s *series) reset() {
	s.head, s.count = 0, 0
	s.predValid = false
}

func (s *series) record(p historyPoint) {
	a := s.an
	if a == nil || len(a.hist) == 0 {
		return
	}
	n := int32(len(a.hist))
	if a.histLen < n {
		a.hist[(a.histHead+a.histLen)%n] = p
		a.histLen++
		return
	}
	a.hist[a.histHead] = p
	a.histHead = (a.histHead + 1) % n
}
