package k8s

import (
	"strconv"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
)

// WorkloadResolver maps a series to its workload; *Enricher implements it.
type WorkloadResolver interface {
	Workload(lbls detector.Labels) (Workload, bool)
}

// Incidents groups the anomalies of one workload that open within a window
// of the first one into an incident. It implements exporter.IncidentAssigner
// and is shared by every output so they agree on IDs.
//
// An incident ID is a hash of tenant, workload and the first anomaly's
// opening time (sample time), so replicas fed the same data agree on it.
type Incidents struct {
	window   time.Duration
	resolver WorkloadResolver
	now      func() time.Time

	mu        sync.Mutex
	current   map[string]*incident // by tenant and workload
	anomalies map[uint64]*anomalyIncident
	calls     int
}

type incident struct {
	id        string
	firstMs   int64 // opening of its first anomaly, sample time
	touchedAt time.Time
}

type anomalyIncident struct {
	id       string
	closedAt time.Time // wall time of the close event; zero while open
}

// forgetAfter is how long an anomaly's incident is remembered after its
// close event, so every output that handles the close finds it.
const forgetAfter = time.Minute

// NewIncidents returns the grouping over resolver with window.
func NewIncidents(window time.Duration, resolver WorkloadResolver) *Incidents {
	return &Incidents{
		window: window, resolver: resolver, now: time.Now,
		current: map[string]*incident{}, anomalies: map[uint64]*anomalyIncident{},
	}
}

// Incident returns the incident of ev's anomaly, or "" when its series has
// no known workload.
func (in *Incidents) Incident(ev *detector.Event) string {
	now := in.now()
	in.mu.Lock()
	defer in.mu.Unlock()
	in.calls++
	if in.calls%1024 == 0 {
		in.gc(now)
	}
	if a, ok := in.anomalies[ev.ID]; ok {
		if ev.Kind == detector.EventClose && a.closedAt.IsZero() {
			a.closedAt = now
		}
		return a.id
	}
	w, ok := in.resolver.Workload(ev.Labels)
	if !ok {
		return ""
	}
	key := ev.Tenant + "\xff" + w.Namespace + "\xff" + w.Kind + "\xff" + w.Name
	inc := in.current[key]
	if inc == nil || ev.OpenedAtMs-inc.firstMs > in.window.Milliseconds() || ev.OpenedAtMs < inc.firstMs {
		inc = &incident{id: incidentID(key, ev.OpenedAtMs), firstMs: ev.OpenedAtMs}
		in.current[key] = inc
	}
	inc.touchedAt = now
	a := &anomalyIncident{id: inc.id}
	if ev.Kind == detector.EventClose {
		a.closedAt = now
	}
	in.anomalies[ev.ID] = a
	return inc.id
}

func incidentID(key string, firstMs int64) string {
	h := xxhash.Sum64String(key + "\xff" + strconv.FormatInt(firstMs, 10))
	s := strconv.FormatUint(h, 16)
	for len(s) < 16 {
		s = "0" + s
	}
	return s
}

func (in *Incidents) gc(now time.Time) {
	for id, a := range in.anomalies {
		if !a.closedAt.IsZero() && now.Sub(a.closedAt) > forgetAfter {
			delete(in.anomalies, id)
		}
	}
	// An incident takes new anomalies only within window of its first one;
	// afterwards it is only needed through in.anomalies.
	for k, inc := range in.current {
		if now.Sub(inc.touchedAt) > in.window+forgetAfter {
			delete(in.current, k)
		}
	}
}

// Len returns the number of anomalies and incidents remembered (for tests).
func (in *Incidents) Len() (anomalies, incidents int) {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.anomalies), len(in.current)
}
