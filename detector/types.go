// Package detector keeps a short window per series, scores every new sample
// against an LSTM's prediction and tracks anomalies as events.
//
// It knows nothing about HTTP, protobuf or Prometheus wire types: inputs
// (remotewrite, kafka) translate their payloads into Labels and Samples, and
// outputs (exporter, loki, ...) read Results and Events.
package detector

import (
	"context"
	"sort"
	"strings"
)

// MetricNameLabel is the label that carries a series' metric name.
const MetricNameLabel = "__name__"

// Label is one name/value pair of a series.
type Label struct {
	Name, Value string
}

// Labels is a label set sorted by Name, without duplicate names.
type Labels []Label

// Get returns the value of the label called name, or "".
func (ls Labels) Get(name string) string {
	for _, l := range ls {
		if l.Name == name {
			return l.Value
		}
	}
	return ""
}

// Clone returns a deep copy whose strings do not alias the receiver's memory,
// for keeping labels that point into a reused request buffer.
func (ls Labels) Clone() Labels {
	n := 0
	for _, l := range ls {
		n += len(l.Name) + len(l.Value)
	}
	// One backing string for all names and values keeps a series' labels in a
	// single allocation.
	var b strings.Builder
	b.Grow(n)
	for _, l := range ls {
		b.WriteString(l.Name)
		b.WriteString(l.Value)
	}
	s := b.String()
	out := make(Labels, len(ls))
	off := 0
	for i, l := range ls {
		out[i].Name = s[off : off+len(l.Name)]
		off += len(l.Name)
		out[i].Value = s[off : off+len(l.Value)]
		off += len(l.Value)
	}
	return out
}

// String renders the label set like PromQL does: {a="b", c="d"}.
func (ls Labels) String() string {
	var b strings.Builder
	b.WriteByte('{')
	for i, l := range ls {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(l.Name)
		b.WriteString(`="`)
		b.WriteString(strings.ReplaceAll(strings.ReplaceAll(l.Value, `\`, `\\`), `"`, `\"`))
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

// Sample is one observation of a series: a millisecond Unix timestamp and a value.
type Sample struct {
	TimestampMs int64
	Value       float64
}

// AppendStats counts what happened to the samples of one Append call.
type AppendStats struct {
	Accepted   int // routed into series state
	OutOfOrder int // timestamp not after the series' newest sample
	NaN        int // NaN values that are not stale markers; not scored
	Stale      int // Prometheus staleness markers; end the series' current run
	Unselected int // series not matched by the configured selectors
	SeriesCap  int // series would exceed detector.max_series
	// TenantSeriesCap: the series would exceed its tenant's
	// limits.max_series.
	TenantSeriesCap int
}

// Add adds o to s.
func (s *AppendStats) Add(o AppendStats) {
	s.Accepted += o.Accepted
	s.OutOfOrder += o.OutOfOrder
	s.NaN += o.NaN
	s.Stale += o.Stale
	s.Unselected += o.Unselected
	s.SeriesCap += o.SeriesCap
	s.TenantSeriesCap += o.TenantSeriesCap
}

// Appender is what inputs hand decoded series to. Implementations must not
// retain lbls or samples after returning: both may alias reused buffers.
type Appender interface {
	Append(tenant string, lbls Labels, samples []Sample) AppendStats
}

// TypedAppender is an Appender that also takes what the input says a series
// is (a counter is scored on its rate, counter_rate); inputs use it when it
// is there.
type TypedAppender interface {
	AppendTyped(tenant string, lbls Labels, samples []Sample, typ MetricType) AppendStats
}

// BatchAppender is an Appender that can also take many series as one batch,
// as an input does with one request: per-batch work (the clock, self-metrics,
// handing events to the sinks, or forwarding somewhere durable) happens once
// at Commit instead of once per series.
type BatchAppender interface {
	Appender
	Begin() Batch
}

// SeriesSamples is one series of a request, for ManyAppender.
type SeriesSamples struct {
	Labels  Labels
	Samples []Sample
	// Type is what the input says the series is (MetricTypeUnknown when
	// it does not say: the name decides, counter_rate).
	Type MetricType
}

// ManyAppender is a Batch that also takes a request's series at once, and
// can then route them in the order that is cheapest for it. Same contract
// as Append for each series; the returned stats are the sum over them.
type ManyAppender interface {
	AppendMany(tenant string, series []SeriesSamples) AppendStats
}

// Batch collects the series of one request. Append must copy what it keeps
// (Appender's contract). Commit returns once the batch is accepted, or with
// an error; it is called exactly once, and the Batch is not used after it.
type Batch interface {
	Appender
	Commit(ctx context.Context) error
}

// Direction says which deviations from the expected value count as anomalous.
type Direction int

const (
	DirectionBoth Direction = iota
	DirectionUp
	DirectionDown
)

func (d Direction) String() string {
	switch d {
	case DirectionUp:
		return "up"
	case DirectionDown:
		return "down"
	default:
		return "both"
	}
}

// Cause names the scoring term that contributed most to an anomaly's
// opening sample, so an alert can say what kind of surprise it was.
type Cause uint8

const (
	CauseUnknown Cause = iota
	// CausePrediction: the value is far from what the model predicted
	// (spikes, drops, sudden jumps).
	CausePrediction
	// CauseLevel: the series' recent mean left its long-term level.
	CauseLevel
	// CauseSeasonal: the value, or its recent level, is far from what the
	// series usually does at this time of day.
	CauseSeasonal
)

// Causes are the known causes, in the order reports list them.
var Causes = []Cause{CausePrediction, CauseLevel, CauseSeasonal}

func (c Cause) String() string {
	switch c {
	case CausePrediction:
		return "prediction"
	case CauseLevel:
		return "level"
	case CauseSeasonal:
		return "seasonal"
	default:
		return "unknown"
	}
}

// Result is the latest scoring of one series.
type Result struct {
	Tenant      string
	Labels      Labels // the input labels including __name__; see Results for how long the slice is valid
	TimestampMs int64  // timestamp of the scored sample
	Value       float64
	Score       float64 // anomaly score in [0,1]
	Expected    float64
	Lower       float64
	Upper       float64
	Anomalous   bool // an anomaly is open on this series
}

// EventKind tells an anomaly's opening from its closing.
type EventKind int

const (
	EventOpen EventKind = iota
	EventClose
)

func (k EventKind) String() string {
	if k == EventClose {
		return "close"
	}
	return "open"
}

// Event is the opening or closing of one anomaly on one series.
type Event struct {
	Kind         EventKind
	ID           uint64 // stable per anomaly: open and close share it
	Tenant       string
	Labels       Labels // the event's own copy; consumers share it, so do not modify
	OpenedAtMs   int64
	ClosedAtMs   int64 // set on close
	TimestampMs  int64 // sample that caused the event
	Value        float64
	Expected     float64
	Lower        float64
	Upper        float64
	Score        float64 // score of that sample
	PeakScore    float64 // highest score while open
	Direction    Direction
	ModelVersion string
	// Cause is the term that contributed most to the opening sample's score;
	// a close carries its open's.
	Cause Cause
	// Corroborated says an opening sample reached the threshold only because
	// another series of its entity was as surprising at the same time
	// (scoring.corroboration_lift); Score includes the lift.
	Corroborated bool
}

// EventSink receives anomaly events. HandleEvents is called from the detector's
// scheduler goroutine and from Append callers; implementations must be fast and
// must not block (queue and drop with a counter when full), and must not
// retain the slice: the detector reuses it.
type EventSink interface {
	HandleEvents([]Event)
}

// FromStrings builds Labels from name, value pairs and sorts them by name.
// It is meant for tests and configuration, not hot paths.
func FromStrings(nv ...string) Labels {
	ls := make(Labels, 0, len(nv)/2)
	for i := 0; i+1 < len(nv); i += 2 {
		ls = append(ls, Label{Name: nv[i], Value: nv[i+1]})
	}
	sort.Slice(ls, func(i, j int) bool { return ls[i].Name < ls[j].Name })
	return ls
}
