package api

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
)

// Anomaly is one anomaly as the store keeps it: the opening and closing events
// of the detector merged by ID.
type Anomaly struct {
	ID           uint64
	Tenant       string
	Labels       detector.Labels // shared with the detector, never modified
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
