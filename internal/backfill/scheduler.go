package backfill

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
)

// Target is what series are warmed in; *detector.Detector implements it.
type Target interface {
	NeedsWarm(tenant string, lbls detector.Labels) bool
	Warm(ctx context.Context, hs []detector.WarmSeries, out []detector.WarmOutcome) error
}

// Sources of a series to warm, the source label of the self-metrics.
const (
	sourceStartup   = "startup"
	sourceNewSeries = "new_series"
)

type metrics struct {
	requests  *prometheus.CounterVec   // endpoint, code
	duration  *prometheus.HistogramVec // endpoint
	series    *prometheus.CounterVec   // source, outcome
	samples   *prometheus.CounterVec   // source
	pending   prometheus.Gauge
	startupOK prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sentinel_mesh_backfill_requests_total",
			Help: "Requests to backfill.url by endpoint (series, query, read) and HTTP status code (error: no response).",
		}, []string{"endpoint", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sentinel_mesh_backfill_request_duration_seconds",
			Help:    "Duration of one request to backfill.url.",
			Buckets: prometheus.ExponentialBuckets(0.005, 4, 8),
		}, []string{"endpoint"}),
		series: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sentinel_mesh_backfill_series_total",
			Help: "Series backfill tried to warm, by source (startup, new_series) and outcome (installed, has_state, no_history, too_short, unselected, refused, model_changed, failed, queue_full).",
		}, []string{"source", "outcome"}),
		samples: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sentinel_mesh_backfill_samples_total",
			Help: "History samples read from backfill.url, by source.",
		}, []string{"source"}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sentinel_mesh_backfill_pending_series",
			Help: "Series waiting to be read and warmed.",
		}),
		startupOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sentinel_mesh_backfill_startup_completed",
			Help: "1 once every backfill.startup selector has been listed and its series read and warmed (or failed).",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.duration, m.series, m.samples, m.pending, m.startupOK)
	}
	return m
}

// newSeries is a series the detector reported through Notify.
type newSeries struct {
	tenant  string
	labels  detector.Labels
	firstTs int64
}

// job is one batch of series of one tenant, read with one remote-read
// request (or one query per series) and warmed together.
type job struct {
	source string
	tenant string
	series []detector.Labels
	// cutoff, per series, drops history at or after the series' first live
	// sample: that sample is scored live, not learnt as history. nil: keep all.
	cutoff []int64
	endMs  int64
	done   func(installed int)
}

// Scheduler reads history and warms series: once at start for the series
// of backfill.startup, and for new series as Notify reports them.
type Scheduler struct {
	cfg    Config
	logger *slog.Logger
	m      *metrics
	c      *client
	queue  chan newSeries
}

// New returns a scheduler for an enabled configuration.
func New(cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*Scheduler, error) {
	s := &Scheduler{cfg: cfg, logger: logger, m: newMetrics(reg), queue: make(chan newSeries, cfg.QueueSize)}
	c, err := newClient(&s.cfg, s.m)
	if err != nil {
		return nil, err
	}
	s.c = c
	return s, nil
}

// Notify queues a series the detector has just started tracking; it is
// detector.Config.NewSeries. It never blocks (it runs under a detector
// lock): with the queue full the series is counted and left to warm up
// from live samples. lbls is the detector's own copy, never modified.
func (s *Scheduler) Notify(tenant string, lbls detector.Labels, firstTs int64) {
	if !s.cfg.OnNewSeries {
		return
	}
	select {
	case s.queue <- newSeries{tenant: tenant, labels: lbls, firstTs: firstTs}:
		s.m.pending.Inc()
	default:
		s.m.series.WithLabelValues(sourceNewSeries, "queue_full").Inc()
	}
}

// Run reads and warms until ctx is done.
func (s *Scheduler) Run(ctx context.Context, t Target) error {
	jobs := make(chan job)
	var wg sync.WaitGroup
	for range s.cfg.Concurrency {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case j := <-jobs:
					j.done(s.process(ctx, t, j))
				}
			}
		})
	}
	wg.Go(func() { s.startup(ctx, t, jobs) })
	wg.Go(func() { s.collect(ctx, jobs) })
	wg.Wait()
	return nil
}

// startup lists the series of each backfill.startup selector and queues
// those the detector has no state for.
func (s *Scheduler) startup(ctx context.Context, t Target, jobs chan<- job) {
	if len(s.cfg.Startup) == 0 {
		s.m.startupOK.Set(1)
		return
	}
	start := time.Now()
	endMs := start.UnixMilli()
	startMs := endMs - time.Duration(s.cfg.Lookback).Milliseconds()
	var (
		mu                        sync.Mutex
		total, installed, batches int
		wg                        sync.WaitGroup
	)
	for _, st := range s.cfg.Startup {
		for _, sel := range st.Selectors {
			listed, err := s.c.series(ctx, st.Tenant, sel, startMs, endMs)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				s.logger.Warn("backfill: cannot list startup series; they warm up from live samples", "tenant", st.Tenant, "selector", sel, "err", err)
				continue
			}
			var todo []detector.Labels
			for _, ls := range listed {
				if t.NeedsWarm(st.Tenant, ls) {
					todo = append(todo, ls)
				} else {
					s.m.series.WithLabelValues(sourceStartup, detector.WarmHasState.String()).Inc()
				}
			}
			s.logger.Info("backfill: startup series listed", "tenant", st.Tenant, "selector", sel, "series", len(listed), "to_warm", len(todo))
			s.m.pending.Add(float64(len(todo)))
			mu.Lock()
			total += len(todo)
			mu.Unlock()
			for len(todo) > 0 {
				n := min(len(todo), s.cfg.MaxSeriesPerRequest)
				wg.Add(1)
				j := job{source: sourceStartup, tenant: st.Tenant, series: todo[:n], endMs: endMs, done: func(ok int) {
					mu.Lock()
					installed += ok
					batches++
					s.logger.Info("backfill: startup progress", "batches", batches, "series_installed", installed, "series_total", total)
					mu.Unlock()
					wg.Done()
				}}
				todo = todo[n:]
				select {
				case jobs <- j:
				case <-ctx.Done():
					wg.Done()
					return
				}
			}
		}
	}
	wg.Wait()
	s.m.startupOK.Set(1)
	s.logger.Info("backfill: startup done", "series_installed", installed, "series_total", total, "duration", time.Since(start).Round(time.Millisecond))
}

// collect batches new series by tenant: a batch goes out when it is full
// or new_series_batch_wait after its first series.
func (s *Scheduler) collect(ctx context.Context, jobs chan<- job) {
	batches := map[string][]newSeries{}
	timer := time.NewTimer(0)
	<-timer.C
	armed := false
	send := func(tenant string) bool {
		b := batches[tenant]
		delete(batches, tenant)
		j := job{source: sourceNewSeries, tenant: tenant, done: func(int) {}}
		for _, ns := range b {
			j.series = append(j.series, ns.labels)
			j.cutoff = append(j.cutoff, ns.firstTs)
			j.endMs = max(j.endMs, ns.firstTs-1)
		}
		select {
		case jobs <- j:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case ns := <-s.queue:
			batches[ns.tenant] = append(batches[ns.tenant], ns)
			if len(batches[ns.tenant]) >= s.cfg.MaxSeriesPerRequest {
				if !send(ns.tenant) {
					return
				}
			}
			if !armed && len(batches) > 0 {
				timer.Reset(time.Duration(s.cfg.NewSeriesBatchWait))
				armed = true
			}
		case <-timer.C:
			armed = false
			for tenant := range batches {
				if !send(tenant) {
					return
				}
			}
		}
	}
}

// process reads and warms one batch and returns how many series it
// installed. One log line per batch.
func (s *Scheduler) process(ctx context.Context, t Target, j job) int {
	defer s.m.pending.Sub(float64(len(j.series)))
	start := time.Now()
	startMs := j.endMs - time.Duration(s.cfg.Lookback).Milliseconds()
	hist, err := s.c.read(ctx, j.tenant, j.series, startMs, j.endMs)
	if err != nil {
		if ctx.Err() == nil {
			s.m.series.WithLabelValues(j.source, "failed").Add(float64(len(j.series)))
			s.logger.Warn("backfill: cannot read history; the series warm up from live samples", "source", j.source, "tenant", j.tenant, "series", len(j.series), "err", err)
		}
		return 0
	}
	hs := make([]detector.WarmSeries, 0, len(j.series))
	samples := 0
	for i, ls := range j.series {
		smps := hist[i]
		if j.cutoff != nil {
			n := 0
			for n < len(smps) && smps[n].TimestampMs < j.cutoff[i] {
				n++
			}
			smps = smps[:n]
		}
		if len(smps) == 0 {
			s.m.series.WithLabelValues(j.source, "no_history").Inc()
			continue
		}
		samples += len(smps)
		hs = append(hs, detector.WarmSeries{Tenant: j.tenant, Labels: ls, Samples: smps})
	}
	s.m.samples.WithLabelValues(j.source).Add(float64(samples))
	out := make([]detector.WarmOutcome, len(hs))
	if err := t.Warm(ctx, hs, out); err != nil {
		if ctx.Err() == nil {
			s.m.series.WithLabelValues(j.source, "failed").Add(float64(len(hs)))
			s.logger.Warn("backfill: cannot warm series; they warm up from live samples", "source", j.source, "tenant", j.tenant, "series", len(hs), "err", err)
		}
		return 0
	}
	var counts [detector.WarmModelChanged + 1]int
	for _, o := range out {
		counts[o]++
	}
	attrs := []any{"source", j.source, "tenant", j.tenant, "series", len(j.series), "samples", samples,
		"no_history", len(j.series) - len(hs), "duration", time.Since(start).Round(time.Millisecond)}
	for o, n := range counts {
		if n > 0 {
			s.m.series.WithLabelValues(j.source, detector.WarmOutcome(o).String()).Add(float64(n))
			attrs = append(attrs, detector.WarmOutcome(o).String(), n)
		}
	}
	s.logger.Info("backfill: batch warmed", attrs...)
	return counts[detector.WarmInstalled]
}
