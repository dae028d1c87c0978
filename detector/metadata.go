package detector

import (
	"strings"
	"sync"
	"sync/atomic"
)

// Metric family metadata. Prometheus sends a metric family's type apart
// from its samples: in Remote-Write 1.0 as metadata-only requests (every
// minute by default, queue_config's send_metadata), so a series' own
// request does not say whether it is a counter. The detector keeps the
// types per tenant and family name and resolves each series against them
// (counter_rate), before falling back to the series' name.

// FamilyType is a metric family's type as Prometheus' metadata gives it.
type FamilyType uint8

const (
	FamilyTypeUnknown FamilyType = iota
	FamilyTypeCounter
	FamilyTypeGauge
	FamilyTypeHistogram
	FamilyTypeGaugeHistogram
	FamilyTypeSummary
	FamilyTypeInfo
	FamilyTypeStateSet
)

// MetricFamily is one metric family's type, as a sender declares it.
type MetricFamily struct {
	Name string
	Type FamilyType
}

// MetadataAppender is implemented by a detector that takes metric family
// metadata; inputs hand it the families of each request that carries
// them. Implementations must not retain the slice or its strings.
type MetadataAppender interface {
	AppendMetadata(tenant string, families []MetricFamily)
}

var _ MetadataAppender = (*Detector)(nil)

type familyKey struct{ tenant, name string }

// FamilyTypes holds the metric family types of every tenant, up to limit
// families in all; safe for concurrent use. The detector resolves its
// series against one, and so does the Kafka producer of --target=receiver,
// which forwards the types with the samples. epoch moves on whenever a
// family is added or changes type, so that series resolved against an
// earlier state look again.
type FamilyTypes struct {
	mu    sync.RWMutex
	types map[familyKey]FamilyType
	limit int
	epoch atomic.Uint32
}

// NewFamilyTypes returns an empty FamilyTypes for up to limit families.
func NewFamilyTypes(limit int) *FamilyTypes {
	return &FamilyTypes{types: map[familyKey]FamilyType{}, limit: limit}
}

// Set records families for tenant and returns how many new ones did not fit
// under the limit. Prometheus resends every family each minute: an
// unchanged family takes only the read lock.
func (f *FamilyTypes) Set(tenant string, families []MetricFamily) (refused int) {
	changed := families[:0:0]
	f.mu.RLock()
	for i, fam := range families {
		if fam.Name == "" {
			continue
		}
		if t, ok := f.types[familyKey{tenant, fam.Name}]; !ok || t != fam.Type {
			changed = families[i:]
			break
		}
	}
	f.mu.RUnlock()
	if len(changed) == 0 {
		return 0
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	moved := false
	for _, fam := range changed {
		if fam.Name == "" {
			continue
		}
		k := familyKey{tenant, fam.Name}
		t, ok := f.types[k]
		switch {
		case ok && t == fam.Type:
			continue
		case !ok && len(f.types) >= f.limit:
			refused++
			continue
		case !ok:
			k = familyKey{strings.Clone(tenant), strings.Clone(fam.Name)}
		}
		f.types[k] = fam.Type
		moved = true
	}
	if moved {
		f.epoch.Add(1)
	}
	return refused
}

// Len is the number of families held.
func (f *FamilyTypes) Len() int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return len(f.types)
}

// SeriesType resolves the series named name against its tenant's families:
// the family of that name, or, for the series of a classic histogram or
// summary and for an OpenMetrics counter, the family the suffix belongs to.
// MetricTypeUnknown when no family says (the name decides then).
func (f *FamilyTypes) SeriesType(tenant, name string) MetricType {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if len(f.types) == 0 {
		return MetricTypeUnknown
	}
	if t, ok := f.types[familyKey{tenant, name}]; ok {
		switch t {
		case FamilyTypeCounter:
			return MetricTypeCounter
		case FamilyTypeGauge, FamilyTypeGaugeHistogram, FamilyTypeInfo, FamilyTypeStateSet, FamilyTypeSummary:
			// A summary's own name is its quantiles: gauges.
			return MetricTypeGauge
		}
		return MetricTypeUnknown
	}
	for _, suffix := range cumulativeSuffixes {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			switch f.types[familyKey{tenant, base}] {
			case FamilyTypeHistogram, FamilyTypeSummary:
				return MetricTypeCounter
			case FamilyTypeGaugeHistogram:
				return MetricTypeGauge
			}
			return MetricTypeUnknown
		}
	}
	// OpenMetrics names a counter family without the _total of its series.
	if base, ok := strings.CutSuffix(name, "_total"); ok && f.types[familyKey{tenant, base}] == FamilyTypeCounter {
		return MetricTypeCounter
	}
	return MetricTypeUnknown
}

// AppendMetadata records the metric family types a sender declared for
// tenant (MetadataAppender). Series resolved before are resolved again at
// their next sample; one that turns out to be a counter after all, or a
// gauge, restarts its window and calibration there.
func (d *Detector) AppendMetadata(tenant string, families []MetricFamily) {
	if len(families) == 0 {
		return
	}
	if refused := d.families.Set(tenant, families); refused > 0 {
		d.metrics.familiesRefused.Add(float64(refused))
	}
}

// resolveKind says whether s's samples are scored on their rate, from what
// the input says (typ), the sender's metric family metadata, or the name,
// in that order, and records it in s. changed reports that s was resolved
// before as the other kind: its window and calibration hold the other
// quantity. Once metadata declared what s is, samples that do not say keep
// it. Called with the shard lock held.
func (d *Detector) resolveKind(s *series, tenant string, lbls Labels, typ MetricType) (counter, changed bool) {
	if k := d.gates[s.gate].kind; k != MetricTypeUnknown {
		// The configuration's word (deviation_overrides[].metric_type)
		// beats the sender's and the name's.
		changed = s.kind != MetricTypeUnknown && s.kind != k
		s.kind, s.kindDeclared = k, true
		return k == MetricTypeCounter, changed
	}
	if !d.cfg.CounterRate {
		return false, false
	}
	kind, declared := s.kind, s.kindDeclared
	switch epoch := uint16(d.families.epoch.Load()); {
	case typ != MetricTypeUnknown:
		kind, declared = typ, true
	case kind == MetricTypeUnknown || s.kindEpoch != epoch:
		s.kindEpoch = epoch
		if t := d.families.SeriesType(tenant, lbls.Get(MetricNameLabel)); t != MetricTypeUnknown {
			kind, declared = t, true
		} else if !declared {
			kind = MetricTypeGauge
			if isCounter(lbls, MetricTypeUnknown) {
				kind = MetricTypeCounter
			}
		}
	}
	changed = s.kind != MetricTypeUnknown && s.kind != kind
	s.kind, s.kindDeclared = kind, declared
	return kind == MetricTypeCounter, changed
}
