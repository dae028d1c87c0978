package detector

import (
	"math"
	"slices"
	"sync"

	"github.com/cespare/xxhash/v2"
)

// Successors. A workload's series change identity whenever its process is
// replaced: a Kubernetes rollout, a rescheduled or restarted pod gives every
// series a new pod (and instance) label. Started cold, each would need a
// window and warm-up before it is scored, and then judge its first days
// against tails and a daily profile learnt from minutes of data, which is
// when a new series raises most of its false alarms. A new series that has
// the first of detector.churn_labels (pod) and differs from a live one only
// in them is that series' successor: it starts from its calibration (error and
// value statistics, tails, range, daily profile), so it is scored as soon
// as its own window is full, against what the workload has been doing.

// successors maps a churn key (the tenant and the labels other than the
// churn labels) to the newest live series of that key. Only series with
// the first churn label are in it.
type successors struct {
	mu     sync.Mutex
	newest map[uint64]*series
}

// churnKey hashes tenant and lbls without the churn labels; ok is false
// unless lbls has the first of them (pod by default): a pod's series has
// pod and instance, a host's or a probe target's only instance, and
// distinct hosts or targets are not one workload. The others are left out
// of the key where a series has them (cAdvisor's per-container id and name).
func churnKey(tenant string, lbls Labels, churn []string) (key uint64, ok bool) {
	var d xxhash.Digest
	d.Reset()
	_, _ = d.WriteString(tenant)
	for _, l := range lbls {
		if slices.Contains(churn, l.Name) {
			ok = ok || l.Name == churn[0]
			continue
		}
		_, _ = d.WriteString("\xff")
		_, _ = d.WriteString(l.Name)
		_, _ = d.WriteString("\xfe")
		_, _ = d.WriteString(l.Value)
	}
	return d.Sum64(), ok
}

// inherit makes the new series s, created in shard sh (whose lock the
// caller holds), the newest of its churn key and starts it from the
// calibration of the one before, if that is live. A predecessor in another
// shard whose lock is taken is skipped rather than waited for: shard locks
// are not ordered.
func (d *Detector) inherit(sh *shard, s *series, tenant string, lbls Labels) {
	if d.succ == nil {
		return
	}
	key, ok := churnKey(tenant, lbls, d.cfg.ChurnLabels)
	if !ok {
		return
	}
	prev := d.succ.track(key, s)
	if prev == nil {
		return
	}
	psh := &d.shards[prev.hash%numShards]
	if psh != sh {
		if !psh.mu.TryLock() {
			return
		}
		defer psh.mu.Unlock()
	}
	if prev.cal.n == 0 {
		return
	}
	s.cal = prev.cal
	s.cal.daily.inherited = true
	if t := prev.cal.daily.tails; t != nil {
		c := *t
		s.cal.daily.tails = &c
	}
	d.metrics.seriesInherited.Inc()
}

// confirmInherited checks an inherited calibration against the series' own
// first full window: a process that restarted from a different level (a
// new pod's memory, caches, connections) has a window median (a spike in
// the window does not move it) beyond what the
// predecessor's long-term statistics call normal (clipZ standard
// deviations, the z whose surprise is the threshold's, the same bound
// robust_updates clips at), and those statistics would score the new level
// as an anomaly. Then only what the predecessor's prediction errors say
// (how predictable the workload is, what a format 1 checkpoint carries) is
// kept and the rest restarts. Called before the first score.
func (c *calibration) confirmInherited(cfg *ScoringConfig, s *series) {
	c.daily.inherited = false
	if s.count == 0 {
		return
	}
	w := slices.Clone(s.ring[:s.count]) // once in a series' life
	slices.Sort(w)
	median := s.ringBase + float64(w[len(w)/2])
	if math.Abs(median-float64(c.valMean)) <= cfg.clipZ()*math.Sqrt(float64(c.valVar)) {
		return
	}
	gap := c.daily.gapMs
	*c = calibration{n: c.n, errMean: c.errMean, errVar: c.errVar, shortErr: c.shortErr}
	c.daily.gapMs = gap
}

// track makes s the newest series of key and returns the one before.
func (m *successors) track(key uint64, s *series) (prev *series) {
	m.mu.Lock()
	defer m.mu.Unlock()
	prev = m.newest[key]
	m.newest[key] = s
	return prev
}

// trackRestored makes a series restored from a checkpoint, handed over or
// warmed from history the newest of its key (unless a newer one is), so
// that its successors inherit from it.
func (d *Detector) trackRestored(s *series, tenant string, lbls Labels) {
	if d.succ == nil {
		return
	}
	if key, ok := churnKey(tenant, lbls, d.cfg.ChurnLabels); ok {
		d.succ.mu.Lock()
		if d.succ.newest[key] == nil {
			d.succ.newest[key] = s
		}
		d.succ.mu.Unlock()
	}
}

// forgetSuccessor drops s from the successors map when it is the newest of
// its key. Called when s is removed, with its shard lock held.
func (d *Detector) forgetSuccessor(s *series, lbls Labels) {
	if d.succ == nil {
		return
	}
	key, ok := churnKey(s.tenant, lbls, d.cfg.ChurnLabels)
	if !ok {
		return
	}
	d.succ.mu.Lock()
	if d.succ.newest[key] == s {
		delete(d.succ.newest, key)
	}
	d.succ.mu.Unlock()
}
