package detector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/client_golang/prometheus"
)

const numShards = 256

// staleNaN is the bit pattern Prometheus uses to mark a series as stale.
const staleNaN = 0x7ff0000000000002

// IsStaleNaN reports whether v is a Prometheus staleness marker.
func IsStaleNaN(v float64) bool { return math.Float64bits(v) == staleNaN }

type shard struct {
	mu      sync.Mutex
	series  map[uint64]*series
	pending []*series
	results []loggedResult // result log, see EnableResultLog
	staged  []stagedSample // queued samples not yet in their backlogs (catchup.go)
}

// modelState is swapped atomically when a new model is loaded.
type modelState struct {
	model Model
	norm  Normalisation
}

// Detector holds the state of every scored series and runs inference in
// batches. Append may be called from many goroutines; Run drives the batching
// scheduler.
type Detector struct {
	cfg   Config
	gates []deviationGate // detector.scoring's, then deviation_overrides'
	bandZ bandZ
	// entities is nil unless corroboration is on (corroboration.go).
	entities *entityMarks
	logger   *slog.Logger
	metrics  *metrics
	sinks    []EventSink

	resultLogCap int // per shard; 0: no result log

	cu      catchUp
	tenants tenants
	tm      tenantMetrics

	model     atomic.Pointer[modelState]
	inferMu   sync.Mutex // one inference pass at a time
	numSeries atomic.Int64
	families  *FamilyTypes // metric family types from senders' metadata
	succ      *successors  // nil without churn_labels
	nextID    atomic.Uint64
	shards    [numShards]shard

	// inference buffers, owned by the goroutine holding inferMu.
	batch   []*series
	seqs    []uint32
	means   []float64
	scales  []float64
	offsets []float64 // daily profile added to each prediction
	sigma   []float32 // predicted scales of a DistributionModel
	input   []float32
	output  []float32
	winBuf  []float64
	enqueue []uint32
}

// New returns a detector. The model can be set later with SetModel; until
// then samples fill windows but nothing is scored.
func New(cfg Config, logger *slog.Logger, reg prometheus.Registerer, sinks ...EventSink) (*Detector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	d := &Detector{
		cfg:    cfg,
		gates:  cfg.deviationGates(),
		bandZ:  cfg.Scoring.bandZ(),
		logger: logger,
		sinks:  sinks,
	}
	for i := range d.shards {
		d.shards[i].series = make(map[uint64]*series)
	}
	if cfg.corroborates() {
		d.entities = newEntityMarks()
	}
	d.families = NewFamilyTypes(cfg.MaxMetricFamilies)
	if len(cfg.ChurnLabels) > 0 {
		d.succ = &successors{newest: map[uint64]*series{}}
	}
	d.metrics = newMetrics(reg, d)
	d.registerCatchUpMetrics(reg)
	d.registerTenantMetrics(reg)
	return d, nil
}

// SetModel installs a model. Series keep their windows and calibration when
// the window length is unchanged; otherwise their windows restart.
func (d *Detector) SetModel(m Model) {
	norm := DefaultNormalisation
	if p, ok := m.(NormalisationProvider); ok {
		norm = p.Normalisation()
	}
	d.inferMu.Lock()
	old := d.model.Swap(&modelState{model: m, norm: norm})
	d.inferMu.Unlock()
	d.metrics.setModel(m.Version())
	if old != nil && old.model.Window() != m.Window() {
		d.logger.Info("model window changed, series windows restart", "old", old.model.Window(), "new", m.Window())
	}
}

// Model returns the current model, or nil.
func (d *Detector) Model() Model {
	if st := d.model.Load(); st != nil {
		return st.model
	}
	return nil
}

// Ready reports whether a model is loaded.
func (d *Detector) Ready() bool { return d.model.Load() != nil }

// NumSeries returns the number of active series.
func (d *Detector) NumSeries() int { return int(d.numSeries.Load()) }

// Threshold returns the score at which anomalies open.
func (d *Detector) Threshold() float64 { return d.cfg.Scoring.Threshold }

// hashSeries identifies a series by tenant and label set.
func hashSeries(tenant string, lbls Labels) uint64 {
	// One Sum64 over a contiguous buffer is several times cheaper than many
	// small Digest writes; the array stays on the stack for typical series.
	var arr [512]byte
	b := append(arr[:0], tenant...)
	b = append(b, 0xff)
	for _, l := range lbls {
		b = append(b, l.Name...)
		b = append(b, 0xfe)
		b = append(b, l.Value...)
		b = append(b, 0xff)
	}
	return xxhash.Sum64(b)
}

// Append routes samples of one series into its state and scores each sample
// against the prediction made from the window before it. Samples must be in
// timestamp order; older ones are dropped and counted. lbls and samples are
// not retained. Inputs with many series per request use Begin instead.
func (d *Detector) Append(tenant string, lbls Labels, samples []Sample) AppendStats {
	return d.AppendTyped(tenant, lbls, samples, MetricTypeUnknown)
}

// AppendTyped is Append for an input that says what the series is (a
// counter is scored on its rate, counter_rate).
func (d *Detector) AppendTyped(tenant string, lbls Labels, samples []Sample, typ MetricType) AppendStats {
	b := d.Begin().(*appendBatch)
	st := b.AppendTyped(tenant, lbls, samples, typ)
	_ = b.Commit(context.Background()) // never fails
	return st
}

// Begin starts a batch of Appends that share one clock reading and hand their
// counters and events on once, at Commit.
func (d *Detector) Begin() Batch {
	b := batchPool.Get().(*appendBatch)
	b.d, b.now = d, time.Now()
	return b
}

// appendBatch is the Detector's Batch; pooled, so an input's request costs
// no allocation here. Its events slice is reused: sinks do not retain it.
type appendBatch struct {
	d      *Detector
	now    time.Time
	stats  AppendStats
	counts scoreCounts
	events []Event
	cuFree int64 // catch-up backlog slots reserved and not used (reserve)
	// AppendMany's scratch, reused across requests: each series' hash, the
	// indexes of the series to route, and those indexes in shard order.
	hashes []uint64
	valid  []int32
	order  []int32
}

var batchPool = sync.Pool{New: func() any { return new(appendBatch) }}

var (
	_ Batch         = (*appendBatch)(nil)
	_ ManyAppender  = (*appendBatch)(nil)
	_ TypedAppender = (*appendBatch)(nil)
	_ TypedAppender = (*Detector)(nil)
)

// maxPooledScratch bounds the AppendMany scratch a pooled batch keeps.
const maxPooledScratch = 1 << 16

// maxPooledEvents bounds the events array a pooled batch keeps, so one
// request that opened many anomalies does not pin a large array.
const maxPooledEvents = 1024

func (b *appendBatch) Append(tenant string, lbls Labels, samples []Sample) AppendStats {
	return b.AppendTyped(tenant, lbls, samples, MetricTypeUnknown)
}

func (b *appendBatch) AppendTyped(tenant string, lbls Labels, samples []Sample, typ MetricType) AppendStats {
	st := b.d.appendSeries(b, tenant, lbls, samples, typ)
	b.stats.Add(st)
	return st
}

// Commit updates the self-metrics, hands the batch's events to the sinks and
// returns the batch to the pool. It never fails.
func (b *appendBatch) Commit(context.Context) error {
	d := b.d
	if b.cuFree > 0 {
		d.cu.samples.Add(-b.cuFree)
	}
	d.metrics.countDrops(b.stats)
	if b.stats.TenantSeriesCap > 0 {
		d.metrics.samplesDropped.WithLabelValues("tenant_series_limit").Add(float64(b.stats.TenantSeriesCap))
	}
	d.metrics.countScores(b.counts)
	if b.stats.Accepted > 0 {
		d.metrics.lastSampleUnix.Store(b.now.Unix())
	}
	d.emit(b.events)
	events := b.events
	clear(events)
	if cap(events) > maxPooledEvents {
		events = nil
	}
	next := appendBatch{events: events[:0]}
	if cap(b.hashes) <= maxPooledScratch {
		next.hashes, next.valid, next.order = b.hashes[:0], b.valid[:0], b.order[:0]
	}
	*b = next
	batchPool.Put(b)
	return nil
}

// appendSeries is Append for one series within batch b; typ is what the
// input says it is.
func (d *Detector) appendSeries(b *appendBatch, tenant string, lbls Labels, samples []Sample, typ MetricType) AppendStats {
	var st AppendStats
	if len(samples) == 0 {
		return st
	}
	if !d.cfg.Selection.Matches(lbls) {
		st.Unselected = len(samples)
		return st
	}
	h := hashSeries(tenant, lbls)
	sh := &d.shards[h%numShards]
	sh.mu.Lock()
	st = d.appendLocked(b, sh, h, tenant, lbls, samples, typ)
	sh.mu.Unlock()
	return st
}

// AppendMany appends the series of one request. It takes each shard's lock
// once for all of the request's series in that shard, instead of once per
// series: in a remote-write blast the shard locks' cache lines otherwise
// bounce between the cores for every series. Series are routed in shard
// order; each series' samples keep their order.
func (b *appendBatch) AppendMany(tenant string, series []SeriesSamples) AppendStats {
	d := b.d
	var st AppendStats
	// Counting sort of the series by shard; the scratch slices are reused.
	b.hashes = grow(b.hashes, len(series))
	b.valid = b.valid[:0]
	var perShard [numShards + 1]int32
	for i := range series {
		ss := &series[i]
		if len(ss.Samples) == 0 {
			continue
		}
		if !d.cfg.Selection.Matches(ss.Labels) {
			st.Unselected += len(ss.Samples)
			continue
		}
		h := hashSeries(tenant, ss.Labels)
		b.hashes[i] = h
		b.valid = append(b.valid, int32(i))
		perShard[h%numShards+1]++
	}
	for k := 1; k <= numShards; k++ {
		perShard[k] += perShard[k-1]
	}
	b.order = grow(b.order, len(b.valid))
	for _, i := range b.valid {
		k := b.hashes[i] % numShards
		b.order[perShard[k]] = i
		perShard[k]++
	}
	// perShard[k] is now the end of shard k's run in b.order.
	start := int32(0)
	for k := range numShards {
		end := perShard[k]
		if end == start {
			continue
		}
		sh := &d.shards[k]
		sh.mu.Lock()
		for _, i := range b.order[start:end] {
			ss := &series[i]
			st.Add(d.appendLocked(b, sh, b.hashes[i], tenant, ss.Labels, ss.Samples, ss.Type))
		}
		sh.mu.Unlock()
		start = end
	}
	b.stats.Add(st)
	return st
}

// appendLocked routes samples of the series with hash h into shard sh,
// whose lock the caller holds. typ is what the input says the series is.
func (d *Detector) appendLocked(b *appendBatch, sh *shard, h uint64, tenant string, lbls Labels, samples []Sample, typ MetricType) AppendStats {
	var st AppendStats
	s := sh.series[h]
	for s != nil && (s.tenant != tenant || !s.labels.equal(lbls)) {
		s = s.next
	}
	if s == nil {
		var why refusal
		if s, why = d.createSeries(sh, h, tenant, lbls); s == nil {
			if why == refusedTenantSeriesCap {
				st.TenantSeriesCap = len(samples)
				d.tm.dropped.WithLabelValues(tenant, "series_limit").Add(float64(len(samples)))
			} else {
				st.SeriesCap = len(samples)
			}
			return st
		}
		d.inherit(sh, s, tenant, lbls)
		d.seenNew(s, samples) // backfill hook (warm.go)
	}
	ms := d.model.Load()
	if ms != nil && len(s.ring) != ms.model.Window() && !s.pending {
		s.ring = make([]float32, ms.model.Window())
		s.reset()
	}
	now := b.now.UnixNano()
	bl := s.bl // nil unless s lags
	counter, changed := d.resolveKind(s, tenant, lbls, typ)
	if changed && len(samples) > 0 {
		// The series now measures something else: its window and
		// calibration restart, in order with the samples it has waiting.
		s.prevRaw = math.NaN()
		restart := Sample{TimestampMs: samples[0].TimestampMs, Value: math.Float64frombits(kindChangeNaN)}
		if s.awaiting(bl) {
			bl = d.queue(sh, s, bl, restart, ms, now, b)
		} else {
			d.ingest(sh, s, restart, ms, now, &b.counts, &b.events)
		}
	}
	for _, smp := range samples {
		if IsStaleNaN(smp.Value) {
			st.Stale++
			s.prevRaw = math.NaN() // a counter's next sample starts afresh
		} else {
			last := s.lastTs
			if bl != nil && bl.len() > 0 {
				last = bl.newest
			}
			if smp.TimestampMs <= last {
				st.OutOfOrder++
				continue
			}
			if math.IsNaN(smp.Value) || math.IsInf(smp.Value, 0) {
				st.NaN++
				continue
			}
			st.Accepted++
			if counter {
				rate, ok := s.toRate(smp.Value, last, smp.TimestampMs)
				if !ok {
					// The first value only sets where the counter stands:
					// its timestamp is the newest accepted, in the backlog
					// when one is waiting, so the next rate spans from it.
					if bl != nil && bl.len() > 0 {
						bl.newest = smp.TimestampMs
					} else {
						s.lastTs = smp.TimestampMs
					}
					b.counts.counterStart++
					continue
				}
				smp.Value = rate
			}
		}
		if s.awaiting(bl) {
			// The prediction this sample is scored against is not made
			// yet: queue it, in order, behind the ones already waiting.
			bl = d.queue(sh, s, bl, smp, ms, now, b)
			continue
		}
		d.ingest(sh, s, smp, ms, now, &b.counts, &b.events)
	}
	s.seen(b.now)
	return st
}

func (d *Detector) newSeries(h uint64, tenant string, lbls Labels) *series {
	w := 32
	if ms := d.model.Load(); ms != nil {
		w = ms.model.Window()
	}
	s := &series{
		hash:    h,
		tenant:  clone(tenant),
		labels:  encodeLabels(lbls),
		ring:    make([]float32, w),
		gate:    d.cfg.gateIndex(lbls),
		prevRaw: math.NaN(),
	}
	return s
}

func clone(s string) string {
	if s == "" {
		return ""
	}
	b := make([]byte, len(s))
	copy(b, s)
	return string(b)
}

// deviation returns smp's deviation from the series' prediction, the
// normalised prediction error the calibration learns, and whether the
// deviation passes the direction and minimum-deviation knobs (gated).
func (d *Detector) deviation(s *series, smp Sample) (dev, e float64, gated bool) {
	dev = smp.Value - s.pred
	scale := s.predScale
	if p := &s.cal.daily; d.cfg.Scoring.SeasonalScale && p.cycle {
		// A series with a daily cycle errs more at some times of the day
		// (a daily step whose timing varies) than at others.
		scale = max(scale, math.Sqrt(p.varAt(smp.TimestampMs)))
	}
	gate := &d.gates[s.gate]
	gated = true
	switch gate.direction {
	case DirectionUp:
		gated = dev > 0
	case DirectionDown:
		gated = dev < 0
	}
	if math.Abs(dev) < max(gate.minAbs, gate.minRel*math.Abs(s.pred)) {
		gated = false
	}
	return dev, math.Abs(dev) / scale, gated
}

// score compares smp with the series' pending prediction, updates the
// calibration and the anomaly state, and returns an event when an anomaly
// opens or closes. gapMs is the time since the previous accepted sample.
// Called with the shard lock held.
func (d *Detector) score(s *series, smp Sample, gapMs int64, ms *modelState, counts *scoreCounts) (Event, bool) {
	s.value = smp.Value
	if !s.predValid {
		if s.count > 0 && ms != nil && int(s.count) == len(s.ring) {
			// The window was full but inference had not caught up.
			counts.lag++
		}
		return Event{}, false
	}
	cfg := &d.cfg.Scoring
	if s.cal.daily.inherited {
		s.cal.confirmInherited(cfg, s)
	}
	var corroborated bool
	dev, e, gated := d.deviation(s, smp)
	// Bounds come from the calibration before this sample updates it.
	lower, upper := s.cal.bounds(cfg, &d.bandZ, s.pred, s.predScale)
	score, warm, cause := s.cal.observe(cfg, e, smp.Value, smp.TimestampMs, gapMs, gated)
	learning := warm && s.cal.learning(cfg, smp.TimestampMs)
	if learning {
		score, warm = 0, false
	}
	if !gated {
		// A deviation the knobs ignore never opens an anomaly.
		score = min(score, cfg.Threshold*0.99)
	} else if d.entities != nil && warm && score >= cfg.corroborationScore() {
		score, corroborated = d.corroborated(s, score, smp.TimestampMs)
	}
	s.score, s.expected, s.lower, s.upper, s.scoredTs = score, s.pred, lower, upper, smp.TimestampMs
	if score >= cfg.Threshold && s.an == nil {
		s.an = d.newAnomalyState()
	}
	s.record(historyPoint{ts: smp.TimestampMs, value: float32(smp.Value), expected: float32(s.pred), lower: float32(lower), upper: float32(upper), score: float32(score)})
	// A warm-up score is a placeholder, not a comparison the model can stand
	// behind: count it as unscored only.
	switch {
	case warm:
		counts.scored++
	case learning:
		counts.learning++
	default:
		counts.warmup++
	}

	dir := DirectionUp
	if dev < 0 {
		dir = DirectionDown
	}
	ev, ok := d.transition(s, score, smp, ms, dir, cause)
	if ok && ev.Kind == EventOpen {
		ev.Corroborated = corroborated
	}
	return ev, ok
}

// transition opens an anomaly when score reaches the threshold and closes an
// open one once the score has stayed below anomaly_close_below for
// anomaly_close_after. cause is the sample's (Cause), kept for an open.
// Called with the shard lock held.
func (d *Detector) transition(s *series, score float64, smp Sample, ms *modelState, dir Direction, cause Cause) (Event, bool) {
	if score >= d.cfg.Scoring.Threshold || (s.anomalyOpen() && score >= d.cfg.AnomalyCloseBelow) {
		if s.an == nil {
			// score allocates it first, so the history starts with this sample.
			s.an = d.newAnomalyState()
		}
		a := s.an
		a.lastAboveTs = smp.TimestampMs
		if a.id == 0 {
			a.id = d.nextID.Add(1)
			a.openedAt = smp.TimestampMs
			a.peak = score
			a.cause = cause
			d.metrics.anomaliesOpen.Inc()
			d.metrics.events.WithLabelValues("open", cause.String()).Inc()
			return d.event(s, EventOpen, smp, ms, dir), true
		}
		a.peak = max(a.peak, score)
		return Event{}, false
	}
	if s.anomalyOpen() && smp.TimestampMs-s.an.lastAboveTs >= time.Duration(d.cfg.AnomalyCloseAfter).Milliseconds() {
		return d.closeAnomalyAt(s, smp, ms, dir), true
	}
	return Event{}, false
}

func (d *Detector) event(s *series, kind EventKind, smp Sample, ms *modelState, dir Direction) Event {
	ev := Event{
		Kind:        kind,
		ID:          s.an.id,
		Tenant:      s.tenant,
		Labels:      s.labels.labels(),
		OpenedAtMs:  s.an.openedAt,
		TimestampMs: smp.TimestampMs,
		Value:       smp.Value,
		Expected:    s.expected,
		Lower:       s.lower,
		Upper:       s.upper,
		Score:       s.score,
		PeakScore:   s.an.peak,
		Direction:   dir,
		Cause:       s.an.cause,
	}
	if ms != nil {
		ev.ModelVersion = ms.model.Version()
	}
	return ev
}

func (d *Detector) closeAnomalyAt(s *series, smp Sample, ms *modelState, dir Direction) Event {
	ev := d.event(s, EventClose, smp, ms, dir)
	ev.ClosedAtMs = smp.TimestampMs
	s.an.id = 0
	d.metrics.anomaliesOpen.Dec()
	d.metrics.events.WithLabelValues("close", s.an.cause.String()).Inc()
	return ev
}

// newAnomalyState allocates a series' anomaly state and, with
// detector.history_points, its history: kept only for series that had an
// anomaly, because it is what the API and the Grafana plugin draw and it
// would otherwise dominate the memory of a calm fleet. The history starts
// with the sample that first reaches the threshold.
func (d *Detector) newAnomalyState() *anomalyState {
	a := &anomalyState{}
	if d.cfg.HistoryPoints > 0 {
		a.hist = make([]historyPoint, d.cfg.HistoryPoints)
	}
	return a
}

// closeAnomaly closes an open anomaly without a new sample (stale marker or expiry).
func (d *Detector) closeAnomaly(s *series, ts int64, ms *modelState) Event {
	return d.closeAnomalyAt(s, Sample{TimestampMs: ts, Value: s.value}, ms, DirectionBoth)
}

func (d *Detector) emit(events []Event) {
	if len(events) == 0 {
		return
	}
	for _, sink := range d.sinks {
		sink.HandleEvents(events)
	}
}

// Run schedules inference until ctx is done: every batch interval, or as soon
// as a full batch is pending, and expires idle series once a minute.
func (d *Detector) Run(ctx context.Context) error {
	// Inference runs on this goroutine (ONNX Runtime with one intra-op
	// thread computes on the calling thread). When samples arrive faster
	// than they can be scored, ingestion should win the CPU and scoring
	// catch up through the series' backlogs (detector.catch_up): the thread
	// runs at a lower priority (detector.inference_nice). It stays locked,
	// so the thread exits with Run instead of carrying its priority to
	// other goroutines.
	runtime.LockOSThread()
	if err := lowerThreadPriority(d.cfg.InferenceNice); err != nil {
		d.logger.Warn("inference runs at normal priority", "err", err)
	}
	tick := time.NewTicker(time.Duration(d.cfg.BatchInterval))
	defer tick.Stop()
	expire := time.NewTicker(time.Minute)
	defer expire.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			if _, err := d.flushPass(); err != nil {
				d.logger.Error("inference failed", "err", err)
			}
			// A backlogged sample needs the prediction from the sample
			// before it: infer again at once until the backlogs are
			// drained, one prediction per lagging series per pass.
			for d.catchingUp() && ctx.Err() == nil {
				if _, err := d.flushPass(); err != nil {
					d.logger.Error("inference failed", "err", err)
					break
				}
				select {
				case now := <-expire.C:
					d.Expire(now)
				default:
				}
			}
		case now := <-expire.C:
			d.Expire(now)
		}
	}
}

// Flush runs inference on every pending window now, and again until no
// sample waits in a catch-up backlog: afterwards every sample appended
// before the call is scored (or counted as unscored). Eval harnesses call
// it after each step; the Kafka consumer before it commits offsets or
// writes state, which does not carry backlogs.
func (d *Detector) Flush() error {
	for {
		drained, err := d.flushPass()
		// A pass that drained backlogs queued the windows after them: one
		// more pass predicts those too, so no series is left queued.
		if err != nil || drained == 0 {
			return err
		}
	}
}

// flushPass runs inference once on every pending window: one prediction
// per lagging series. Run calls it, so ingestion and expiry go on between
// passes while backlogs drain.
// It returns how many backlogged samples it scored.
func (d *Detector) flushPass() (int, error) {
	d.inferMu.Lock()
	defer d.inferMu.Unlock()
	ms := d.model.Load()
	if ms == nil {
		return 0, nil
	}
	var errs []error
	for i := range d.shards {
		sh := &d.shards[i]
		sh.mu.Lock()
		// Backlogged samples the receivers staged move into their series'
		// backlogs here, on this thread.
		sh.unstage()
		d.batch = append(d.batch, sh.pending...)
		clear(sh.pending)
		sh.pending = sh.pending[:0]
		sh.mu.Unlock()
		for len(d.batch) >= d.cfg.BatchSize {
			if err := d.infer(ms, d.batch[:d.cfg.BatchSize]); err != nil {
				errs = append(errs, err)
			}
			n := copy(d.batch, d.batch[d.cfg.BatchSize:])
			clear(d.batch[n:])
			d.batch = d.batch[:n]
		}
	}
	if len(d.batch) > 0 {
		if err := d.infer(ms, d.batch); err != nil {
			errs = append(errs, err)
		}
		clear(d.batch)
		d.batch = d.batch[:0]
	}
	return d.flushCatchUp(), errors.Join(errs...)
}

// infer scores one batch. Called with inferMu held.
func (d *Detector) infer(ms *modelState, batch []*series) error {
	w := ms.model.Window()
	n := len(batch)
	d.input = grow(d.input, n*w)
	d.output = grow(d.output, n)
	d.seqs = grow(d.seqs, n)
	d.means = grow(d.means, n)
	d.scales = grow(d.scales, n)
	d.offsets = grow(d.offsets, n)
	d.enqueue = grow(d.enqueue, n)
	valid := 0
	nowNano := time.Now().UnixNano()
	for _, s := range batch {
		sh := &d.shards[s.hash%numShards]
		sh.mu.Lock()
		if int(s.count) != w || len(s.ring) != w {
			// The window restarted (stale marker, model change) since queuing.
			s.pending = false
			if len(s.ring) != w {
				s.ring = make([]float32, w)
				s.reset()
				s.seq++
			}
			d.drain(sh, s, ms, nowNano)
			sh.mu.Unlock()
			continue
		}
		d.winBuf = s.window(d.winBuf)
		d.offsets[valid] = d.deseasonalise(s, d.winBuf)
		d.seqs[valid] = s.seq
		d.enqueue[valid] = s.enqueuedMicros
		sh.mu.Unlock()
		d.means[valid], d.scales[valid] = ms.norm.normaliseWindow(d.input[valid*w:(valid+1)*w], d.winBuf)
		batch[valid] = s
		valid++
	}
	if valid == 0 {
		return nil
	}
	start := time.Now()
	var err error
	// sigma stays nil unless this model predicts scales: d.sigma may still
	// hold those of a distribution model that a reload replaced.
	var sigma []float32
	if dm, ok := ms.model.(DistributionModel); ok {
		d.sigma = grow(d.sigma, n)
		sigma = d.sigma[:valid]
		err = dm.PredictDistribution(d.input[:valid*w], valid, d.output[:valid], sigma)
	} else {
		err = ms.model.Predict(d.input[:valid*w], valid, d.output[:valid])
	}
	elapsed := time.Since(start)
	d.metrics.inferenceDuration.Observe(elapsed.Seconds())
	d.metrics.batchSize.Observe(float64(valid))
	if err != nil {
		d.metrics.inferenceErrors.Inc()
		// No prediction: the queued samples go on unscored, so a failing
		// model cannot hold backlogs (and Run's catch-up loop) forever.
		for _, s := range batch[:valid] {
			sh := &d.shards[s.hash%numShards]
			sh.mu.Lock()
			s.pending = false
			s.predValid = false
			d.drain(sh, s, ms, nowNano)
			sh.mu.Unlock()
		}
		return fmt.Errorf("cannot run model %s on %d windows: %w", ms.model.Version(), valid, err)
	}
	nowNano = time.Now().UnixNano()
	for i, s := range batch[:valid] {
		p := float64(d.output[i])
		sh := &d.shards[s.hash%numShards]
		sh.mu.Lock()
		// pending stays set while the window is in flight, so samples that
		// arrive meanwhile wait in the backlog for this prediction.
		s.pending = false
		if s.seq == d.seqs[i] {
			s.pred = d.means[i] + p*d.scales[i] + d.offsets[i]
			s.predScale = d.scales[i]
			// The model's own uncertainty, in the window's units.
			if sigma != nil {
				if sg := float64(sigma[i]); sg > 0 && !math.IsNaN(sg) {
					s.predScale *= sg
				}
			}
			s.predValid = !math.IsNaN(s.pred) && !math.IsInf(s.pred, 0)
		} else {
			// The window moved on while in flight (samples skipped in,
			// a stale marker): predict the new one.
			d.queueWindow(sh, s, ms, nowNano)
		}
		d.drain(sh, s, ms, nowNano)
		sh.mu.Unlock()
		d.metrics.predictionLatency.Observe(float64(wallMicros(nowNano)-d.enqueue[i]) / 1e6)
	}
	return nil
}

// deseasonalise subtracts the daily profile from the window of a series
// with a daily cycle (ScoringConfig.DailyProfileForecast) and returns the
// profile at the next sample's expected time, to be added to the
// prediction; 0 for other series. The window's values are placed in time
// by the series' typical interval. Called with the shard lock held.
func (d *Detector) deseasonalise(s *series, win []float64) float64 {
	p := &s.cal.daily
	if !d.cfg.Scoring.DailyProfileForecast || !p.cycle || p.gapMs <= 0 {
		return 0
	}
	step := int64(p.gapMs)
	for i := range win {
		win[i] -= p.at(s.lastTs - int64(len(win)-1-i)*step)
	}
	return p.at(s.lastTs + step)
}

// grow returns b resized to n, reusing its array when it is large enough.
func grow[T any](b []T, n int) []T {
	if cap(b) < n {
		return make([]T, n)
	}
	return b[:n]
}

// Expire removes series idle for longer than series_idle_timeout, closing
// their open anomalies.
func (d *Detector) Expire(now time.Time) {
	cutoff := now.Add(-time.Duration(d.cfg.SeriesIdleTimeout)).Unix()
	ms := d.model.Load()
	var events []Event
	d.removeSeries(func(s *series) bool {
		if int64(s.lastSeen) >= cutoff {
			return false
		}
		if s.anomalyOpen() {
			events = append(events, d.closeAnomaly(s, s.lastTs, ms))
		}
		d.metrics.seriesExpired.Inc()
		return true
	})
	d.emit(events)
}

// removeSeries unlinks every series for which drop returns true, holding one
// shard lock at a time. drop runs under that lock and may update the series'
// bookkeeping. Series queued for inference are kept: the scheduler holds
// pointers to them; a later call removes them.
func (d *Detector) removeSeries(drop func(s *series) bool) int {
	removed := 0
	for i := range d.shards {
		sh := &d.shards[i]
		sh.mu.Lock()
		for h, head := range sh.series {
			var keep *series
			for s := head; s != nil; {
				next := s.next
				if !s.pending && drop(s) {
					if d.succ != nil {
						d.forgetSuccessor(s, s.labels.labels())
					}
					d.numSeries.Add(-1)
					d.tenants.release(s.tenant)
					removed++
				} else {
					s.next = keep
					keep = s
				}
				s = next
			}
			if keep == nil {
				delete(sh.series, h)
			} else {
				sh.series[h] = keep
			}
		}
		sh.mu.Unlock()
	}
	return removed
}

// Results calls fn with the latest result of every scored series, holding one
// shard lock at a time. r and the slice r.Labels are reused between calls;
// fn must not retain them (the label strings it may). Stops early when fn
// returns false.
func (d *Detector) Results(fn func(r *Result) bool) {
	var r Result
	var lbls Labels
	for i := range d.shards {
		sh := &d.shards[i]
		sh.mu.Lock()
		for _, head := range sh.series {
			for s := head; s != nil; s = s.next {
				if s.scoredTs == 0 {
					continue
				}
				lbls = s.labels.appendTo(lbls[:0])
				r = Result{
					Tenant: s.tenant, Labels: lbls, TimestampMs: s.scoredTs,
					Value: s.value, Score: s.score, Expected: s.expected,
					Lower: s.lower, Upper: s.upper, Anomalous: s.anomalyOpen(),
				}
				if !fn(&r) {
					sh.mu.Unlock()
					return
				}
			}
		}
		sh.mu.Unlock()
	}
}

// HistoryPoint is one past result of a series.
type HistoryPoint struct {
	TimestampMs                          int64
	Value, Score, Expected, Lower, Upper float64
}
