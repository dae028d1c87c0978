package detector

import (
	"sync"

	"github.com/cespare/xxhash/v2"
)

// An incident on a server or a pod usually shows on several of its metrics
// at once, each only moderately surprising. Corroboration lets the series of
// one entity (the series sharing the values of detector.entity_labels, by
// default one scrape target) vouch for each other: a sample scoring within
// scoring.corroboration_lift below the threshold is lifted by it when another
// series of its entity scored that much within the last two of its sampling
// intervals, and one scoring within corroboration_lift above the threshold is
// lowered by it when none did although the entity has other series that
// have been that surprising before: an excursion its siblings do not share
// is less likely an incident. Only samples scoring at least threshold -
// corroboration_lift touch the shared state below.

// corroborationIntervals is how many of a series' typical sampling intervals
// back a sibling's surprising sample still corroborates: one scrape of
// jitter between series scraped together (ops-dev event F1 moves by at most
// 0.01 between 1 and 6, docs/detection.md).
const corroborationIntervals = 2

const (
	entitySlots   = 1 << 15 // ~1.3 MB; more entities share slots (see entityMarks)
	entityStripes = 64
)

// entityMarks records, per entity, the latest samples that scored at least
// threshold - corroboration_lift: the latest one, and the latest of another
// series. Together they answer "did any other series of this entity score that much
// since t?". The table has a fixed size: entities whose hashes share a slot
// evict each other, which can lose a corroboration but never invent one
// (a slot remembers whose it is).
type entityMarks struct {
	stripes [entityStripes]sync.Mutex
	slots   []entitySlot
}

type entitySlot struct {
	entity uint64
	marks  [2]entityMark // [0] the latest; [1] the latest of another series than [0]
}

type entityMark struct {
	series uint64
	ts     int64
}

func newEntityMarks() *entityMarks {
	return &entityMarks{slots: make([]entitySlot, entitySlots)}
}

// labelGetter is a label set that can be asked for one label: Labels, or a
// series' labelString.
type labelGetter interface{ Get(name string) string }

// entityHash returns the hash of the tenant and the values of names in
// lbls, and false when lbls lacks any of them: a series without the full
// identity of an entity is corroborated by nothing.
func entityHash[L labelGetter](tenant string, lbls L, names []string) (uint64, bool) {
	if len(names) == 0 {
		return 0, false
	}
	var d xxhash.Digest
	d.Reset()
	_, _ = d.WriteString(tenant)
	for _, n := range names {
		v := lbls.Get(n)
		if v == "" {
			return 0, false
		}
		_, _ = d.WriteString("\xff")
		_, _ = d.WriteString(v)
	}
	return d.Sum64(), true
}

// corroborate records that series of entity scored at least
// threshold - corroboration_lift at ts and reports whether another series of
// the entity did so at a time in [since, ts] (corroborated), and whether any
// other series of the entity is on record at all (siblings).
func (m *entityMarks) corroborate(entity, series uint64, ts, since int64) (corroborated, siblings bool) {
	i := entity % entitySlots
	mu := &m.stripes[i%entityStripes]
	mu.Lock()
	defer mu.Unlock()
	sl := &m.slots[i]
	if sl.entity != entity {
		*sl = entitySlot{entity: entity}
	}
	other := sl.marks[0]
	if other.series == series {
		other = sl.marks[1]
	}
	siblings = other.series != 0
	corroborated = siblings && other.ts >= since && other.ts <= ts
	if sl.marks[0].series == series {
		sl.marks[0].ts = max(sl.marks[0].ts, ts)
	} else {
		sl.marks[1], sl.marks[0] = sl.marks[0], entityMark{series: series, ts: ts}
	}
	return corroborated, siblings
}

// corroborates reports whether the configuration turns corroboration on.
func (c *Config) corroborates() bool {
	return c.Scoring.CorroborationLift > 0 && len(c.EntityLabels) > 0
}

// corroborated returns the score of s's sample at ts and whether
// corroboration lifted it. With lift = corroboration_lift: a score in
// [threshold - lift, threshold) is lifted by lift (so it reaches the
// threshold and the evidence keeps its order) when another series of its
// entity scored at least threshold - lift within the last
// corroborationIntervals of s's typical sampling interval; a score in
// [threshold, threshold + lift) is lowered by lift when no other series did
// although the entity has others on record. Every such sample is recorded
// for its siblings. Called with s's shard lock held, for samples scoring at
// least threshold - lift only.
func (d *Detector) corroborated(s *series, score float64, ts int64) (float64, bool) {
	e, ok := entityHash(s.tenant, s.labels, d.cfg.EntityLabels)
	if !ok {
		return score, false
	}
	since := ts - int64(corroborationIntervals*float64(s.cal.daily.gapMs))
	corroborated, siblings := d.entities.corroborate(e, s.hash, ts, since)
	thr, lift := d.cfg.Scoring.Threshold, d.cfg.Scoring.CorroborationLift
	switch {
	case corroborated && score < thr:
		d.metrics.corroborated.Inc()
		return min(1, score+lift), true
	case !corroborated && siblings && score >= thr && score < thr+lift:
		d.metrics.uncorroborated.Inc()
		return score - lift, false
	}
	return score, false
}
