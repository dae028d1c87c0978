package detector

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// TenantLimits gives each tenant's series limit (0: unlimited);
// *limits.Config implements it.
type TenantLimits interface {
	SeriesLimit(tenant string) int
}

// tenants counts series per tenant for the per-tenant series limit and its
// self-metrics. Touched only when a series is created or removed, never per
// sample. Lock order: shard, then tenants.
type tenants struct {
	mu     sync.Mutex
	series map[string]int64
}

// reserve counts a new series of tenant unless tenant is at limit (0:
// unlimited); it reports whether the series may be created.
func (t *tenants) reserve(tenant string, limit int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if limit > 0 && t.series[tenant] >= int64(limit) {
		return false
	}
	if t.series == nil {
		t.series = make(map[string]int64)
	}
	t.series[tenant]++
	return true
}

// release uncounts a removed series. A tenant without series is forgotten,
// so tenant IDs seen once do not accumulate.
func (t *tenants) release(tenant string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.series[tenant]--; t.series[tenant] <= 0 {
		delete(t.series, tenant)
	}
}

// tenantMetrics are the per-tenant self-metrics. Their cardinality is the
// number of tenants: the gauge has a series per tenant holding series, the
// counter one per tenant that was refused a series.
type tenantMetrics struct {
	dropped *prometheus.CounterVec // tenant, reason
}

// tenantCollector exports sentinel_mesh_tenant_series from the counts at
// scrape time, so a tenant whose series all expired leaves no stale gauge.
type tenantCollector struct {
	d    *Detector
	desc *prometheus.Desc
}

func (c tenantCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c tenantCollector) Collect(ch chan<- prometheus.Metric) {
	t := &c.d.tenants
	t.mu.Lock()
	defer t.mu.Unlock()
	for tenant, n := range t.series {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), tenant)
	}
}

func (d *Detector) registerTenantMetrics(reg prometheus.Registerer) {
	d.tm.dropped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sentinel_mesh_tenant_samples_dropped_total",
		Help: "Samples refused by a per-tenant limit, by tenant and reason (series_limit: the tenant holds limits.max_series series).",
	}, []string{"tenant", "reason"})
	if reg == nil {
		return
	}
	reg.MustRegister(d.tm.dropped, tenantCollector{d: d, desc: prometheus.NewDesc(
		"sentinel_mesh_tenant_series",
		"Series the detector holds, by tenant.",
		[]string{"tenant"}, nil,
	)})
}

// createSeries links a new series into sh unless detector.max_series or the
// tenant's series limit is reached; then it returns nil and which limit
// refused it. Called with the shard lock held.
func (d *Detector) createSeries(sh *shard, h uint64, tenant string, lbls Labels) (*series, refusal) {
	if d.numSeries.Load() >= int64(d.cfg.MaxSeries) {
		d.metrics.seriesLimitReached.Inc()
		return nil, refusedSeriesCap
	}
	limit := 0
	if d.cfg.TenantLimits != nil {
		limit = d.cfg.TenantLimits.SeriesLimit(tenant)
	}
	if !d.tenants.reserve(tenant, limit) {
		return nil, refusedTenantSeriesCap
	}
	s := d.newSeries(h, tenant, lbls)
	s.next = sh.series[h]
	sh.series[h] = s
	d.numSeries.Add(1)
	d.metrics.seriesCreated.Inc()
	return s, refusedNone
}

type refusal uint8

const (
	refusedNone refusal = iota
	refusedSeriesCap
	refusedTenantSeriesCap
)
