package api

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
)

// Anomaly is one anomaly as the store keeps it: the opening and closing events
// of the detector merged by ID.
type Anomaly struct {
	ID           uint64
	Tenant       string
	Labels       detector.Labels // the opening event's, never modified
	OpenedAtMs   int64
	ClosedAtMs   int64 // 0 while open
	UpdatedAtMs  int64 // timestamp of the sample of the latest event
	Direction    detector.Direction
	Value        float64 // at the latest event
	Expected     float64
	Lower        float64
	Upper        float64
	Score        float64
	PeakScore    float64
	ModelVersion string
	// Corroborated: the anomaly opened because another series of its
	// entity was as surprising at the same time (detector.Event.Corroborated).
	Corroborated bool
	// Cause is the scoring term that opened it (detector.Event.Cause).
	Cause detector.Cause
}

// Open reports whether the anomaly has not closed yet.
func (a *Anomaly) Open() bool { return a.ClosedAtMs == 0 }

// Store keeps the last N anomalies in memory. It implements
// detector.EventSink; HandleEvents only takes a mutex for a few map and slice
// operations, so it never blocks the detector for long.
type Store struct {
	mu   sync.RWMutex
	ring []Anomaly // circular; next is the slot the next new anomaly takes
	next int
	full bool
	byID map[uint64]int // anomaly ID -> ring index

	evicted prometheus.Counter
	stored  prometheus.GaugeFunc
}

// NewStore returns a store holding up to size anomalies. reg may be nil.
func NewStore(size int, reg prometheus.Registerer) *Store {
	if size < 1 {
		size = 1
	}
	s := &Store{
		ring: make([]Anomaly, size),
		byID: make(map[uint64]int, size),
		evicted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sentinel_mesh_api_anomalies_evicted_total",
			Help: "Anomalies dropped from the API's in-memory store to make room for newer ones.",
		}),
	}
	s.stored = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "sentinel_mesh_api_anomalies_stored",
		Help: "Anomalies held in the API's in-memory store.",
	}, func() float64 { return float64(s.Len()) })
	if reg != nil {
		reg.MustRegister(s.evicted, s.stored)
	}
	return s
}

// Len returns the number of anomalies held.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.byID)
}

// HandleEvents merges events into the store.
func (s *Store) HandleEvents(evs []detector.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range evs {
		s.apply(&evs[i])
	}
}

func (s *Store) apply(ev *detector.Event) {
	idx, ok := s.byID[ev.ID]
	if !ok {
		// A new anomaly, or the close of one opened before the store started
		// or already evicted: either way it takes the next slot.
		idx = s.next
		if s.full {
			delete(s.byID, s.ring[idx].ID)
			s.evicted.Inc()
		}
		s.next = (s.next + 1) % len(s.ring)
		if s.next == 0 {
			s.full = true
		}
		s.byID[ev.ID] = idx
		s.ring[idx] = Anomaly{
			ID:         ev.ID,
			Tenant:     ev.Tenant,
			Labels:     ev.Labels,
			OpenedAtMs: ev.OpenedAtMs,
			Direction:  ev.Direction,
		}
	}
	a := &s.ring[idx]
	if ev.Kind == detector.EventOpen {
		a.Direction = ev.Direction
		a.Corroborated = ev.Corroborated
		a.Cause = ev.Cause
	} else {
		a.ClosedAtMs = ev.ClosedAtMs
		if a.ClosedAtMs == 0 {
			a.ClosedAtMs = ev.TimestampMs
		}
	}
	a.UpdatedAtMs = ev.TimestampMs
	a.Value, a.Expected, a.Lower, a.Upper, a.Score = ev.Value, ev.Expected, ev.Lower, ev.Upper, ev.Score
	a.PeakScore = max(a.PeakScore, ev.PeakScore, ev.Score)
	a.ModelVersion = ev.ModelVersion
}

// Snapshot calls fn with a copy of every anomaly held, newest first, until fn
// returns false. It holds the read lock while iterating.
func (s *Store) Snapshot(fn func(a Anomaly) bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := len(s.byID)
	for i := 1; i <= n; i++ {
		idx := (s.next - i + len(s.ring)) % len(s.ring)
		if !fn(s.ring[idx]) {
			return
		}
	}
}

// Get returns the anomaly with the given ID, if held.
func (s *Store) Get(id uint64) (Anomaly, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	idx, ok := s.byID[id]
	if !ok {
		return Anomaly{}, false
	}
	return s.ring[idx], true
}

// Versions of the store's checkpoint encoding: V2 adds a flags byte
// (corroborated) after each anomaly's model version; V1 still decodes.
const (
	storeFormatV1 = 1
	storeFormatV2 = 2
)

// AppendCheckpoint appends the encoding of every anomaly held, oldest first,
// to b: what RestoreCheckpoint needs to rebuild the store after a restart.
func (s *Store) AppendCheckpoint(b []byte) []byte {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := len(s.byID)
	b = append(b, storeFormatV2)
	b = binary.AppendUvarint(b, uint64(n))
	for i := n; i >= 1; i-- {
		a := &s.ring[(s.next-i+len(s.ring))%len(s.ring)]
		b = binary.AppendUvarint(b, a.ID)
		b = appendString(b, a.Tenant)
		b = binary.AppendUvarint(b, uint64(len(a.Labels)))
		for _, l := range a.Labels {
			b = appendString(b, l.Name)
			b = appendString(b, l.Value)
		}
		b = binary.AppendVarint(b, a.OpenedAtMs)
		b = binary.AppendVarint(b, a.ClosedAtMs)
		b = binary.AppendVarint(b, a.UpdatedAtMs)
		b = binary.AppendVarint(b, int64(a.Direction))
		for _, f := range [...]float64{a.Value, a.Expected, a.Lower, a.Upper, a.Score, a.PeakScore} {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
		}
		b = appendString(b, a.ModelVersion)
		var flags byte
		if a.Corroborated {
			flags |= storeFlagCorroborated
		}
		flags |= byte(a.Cause) << storeCauseShift & storeCauseMask
		b = append(b, flags)
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// RestoreCheckpoint adds the anomalies encoded by AppendCheckpoint, oldest
// first, as if their latest events had just arrived; beyond the store's
// size the oldest are evicted. On a decoding error nothing is added.
func (s *Store) RestoreCheckpoint(data []byte) error {
	as, err := decodeAnomalies(data)
	if err != nil {
		return fmt.Errorf("cannot decode anomaly store: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range as {
		a := &as[i]
		if _, ok := s.byID[a.ID]; ok {
			continue // an event since the start already brought it
		}
		idx := s.next
		if s.full {
			delete(s.byID, s.ring[idx].ID)
			s.evicted.Inc()
		}
		s.next = (s.next + 1) % len(s.ring)
		if s.next == 0 {
			s.full = true
		}
		s.byID[a.ID] = idx
		s.ring[idx] = *a
	}
	return nil
}

var errShortStore = errors.New("truncated")

// maxStoreItems bounds counts read from a checkpoint, so damaged input
// cannot make the decoder allocate without limit.
const maxStoreItems = 1 << 24

func decodeAnomalies(data []byte) ([]Anomaly, error) {
	if len(data) == 0 || (data[0] != storeFormatV1 && data[0] != storeFormatV2) {
		return nil, errors.New("unknown format version")
	}
	version := data[0]
	r := storeReader{b: data[1:]}
	n := r.uvarint()
	if n > maxStoreItems || n > uint64(len(r.b)) {
		return nil, fmt.Errorf("%d anomalies in %d bytes", n, len(r.b))
	}
	as := make([]Anomaly, 0, n)
	for range n {
		a := Anomaly{ID: r.uvarint(), Tenant: r.string()}
		nl := r.uvarint()
		if nl > uint64(len(r.b)) {
			return nil, errShortStore
		}
		if nl > 0 {
			a.Labels = make(detector.Labels, 0, nl)
		}
		for range nl {
			a.Labels = append(a.Labels, detector.Label{Name: r.string(), Value: r.string()})
		}
		a.OpenedAtMs, a.ClosedAtMs, a.UpdatedAtMs = r.varint(), r.varint(), r.varint()
		a.Direction = detector.Direction(r.varint())
		a.Value, a.Expected, a.Lower, a.Upper, a.Score, a.PeakScore = r.f64(), r.f64(), r.f64(), r.f64(), r.f64(), r.f64()
		a.ModelVersion = r.string()
		if version >= storeFormatV2 {
			flags := r.byte()
			a.Corroborated = flags&storeFlagCorroborated != 0
			a.Cause = detector.Cause(flags & storeCauseMask >> storeCauseShift)
		}
		if r.err != nil {
			return nil, r.err
		}
		as = append(as, a)
	}
	return as, nil
}

type storeReader struct {
	b   []byte
	err error
}

func (r *storeReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errShortStore
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *storeReader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errShortStore
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *storeReader) string() string {
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.b)) {
		r.err = errShortStore
		return ""
	}
	out := string(r.b[:n])
	r.b = r.b[n:]
	return out
}

func (r *storeReader) f64() float64 {
	if r.err != nil || len(r.b) < 8 {
		r.err = errShortStore
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(r.b))
	r.b = r.b[8:]
	return v
}

func (r *storeReader) byte() byte {
	if r.err != nil || len(r.b) < 1 {
		r.err = errShortStore
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

// storeFlagCorroborated marks Anomaly.Corroborated in the flags byte; bits
// 1-2 hold Anomaly.Cause (0, unknown, in checkpoints written before it).
const (
	storeFlagCorroborated = 1 << 0
	storeCauseShift       = 1
	storeCauseMask        = 3 << storeCauseShift
)
