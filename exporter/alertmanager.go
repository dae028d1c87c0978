package exporter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/config"
	"github.com/prometheus/common/model"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
)

// AlertName is the alertname label of the alerts sentinel-mesh sends.
const AlertName = "AnomalyDetected"

// AlertmanagerConfig is the `alertmanager:` section. Empty URLs disable it.
type AlertmanagerConfig struct {
	// URLs are Alertmanager base URLs (http://alertmanager:9093); every
	// alert goes to each of them, like Prometheus does for an HA pair.
	URLs []string `yaml:"urls"`
	// ResendInterval is how often open anomalies are re-sent. While open an
	// alert's endsAt is now + 3*resend_interval, so Alertmanager resolves
	// it by itself if sentinel-mesh goes away.
	ResendInterval model.Duration `yaml:"resend_interval"`
	// Timeout bounds one request; MinBackoff, MaxBackoff and MaxRetries
	// bound retries of a request that got 429, 5xx or a transport error.
	Timeout    model.Duration `yaml:"timeout"`
	MinBackoff model.Duration `yaml:"min_backoff"`
	MaxBackoff model.Duration `yaml:"max_backoff"`
	MaxRetries int            `yaml:"max_retries"`
	// CriticalScore is the (peak) score from which severity is "critical".
	CriticalScore float64 `yaml:"critical_score"`
	// RunbookURL becomes the runbook_url annotation when set.
	RunbookURL string `yaml:"runbook_url"`
	// GeneratorURL is sent as the alerts' generatorURL when set.
	GeneratorURL string `yaml:"generator_url"`
	// ExternalLabels are added to every alert (series labels win).
	ExternalLabels map[string]string `yaml:"external_labels"`
	// MaxAlerts bounds the alerts tracked at once; anomalies opening past it
	// are counted in sentinel_mesh_alertmanager_alerts_dropped_total.
	MaxAlerts int `yaml:"max_alerts"`
	// HTTPClientConfig holds basic_auth, authorization, tls_config, ...
	HTTPClientConfig config.HTTPClientConfig `yaml:",inline"`
}

// DefaultAlertmanagerConfig returns the alertmanager section used for
// omitted keys.
func DefaultAlertmanagerConfig() AlertmanagerConfig {
	return AlertmanagerConfig{
		ResendInterval:   model.Duration(time.Minute),
		Timeout:          model.Duration(10 * time.Second),
		MinBackoff:       model.Duration(500 * time.Millisecond),
		MaxBackoff:       model.Duration(5 * time.Second),
		MaxRetries:       3,
		CriticalScore:    0.99,
		MaxAlerts:        10_000,
		HTTPClientConfig: config.DefaultHTTPClientConfig,
	}
}

// UnmarshalYAML starts from the defaults so omitted keys keep them.
func (c *AlertmanagerConfig) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultAlertmanagerConfig()
	type plain AlertmanagerConfig
	if err := unmarshal((*plain)(c)); err != nil {
		return fmt.Errorf("cannot parse alertmanager: %w", err)
	}
	return nil
}

// Enabled reports whether the output is configured.
func (c *AlertmanagerConfig) Enabled() bool { return len(c.URLs) > 0 }

// Validate reports every invalid field, naming its YAML key.
func (c *AlertmanagerConfig) Validate() error {
	if !c.Enabled() {
		return nil
	}
	var errs []error
	for i, u := range c.URLs {
		if err := validateURL(u); err != nil {
			errs = append(errs, fmt.Errorf("alertmanager.urls[%d]: %w", i, err))
		}
	}
	if c.ResendInterval <= 0 {
		errs = append(errs, errors.New("alertmanager.resend_interval must be > 0"))
	}
	errs = append(errs, validateSending("alertmanager", c.Timeout, c.MinBackoff, c.MaxBackoff, c.MaxRetries)...)
	if !(c.CriticalScore > 0 && c.CriticalScore <= 1) {
		errs = append(errs, errors.New("alertmanager.critical_score must be in (0,1]"))
	}
	if c.MaxAlerts <= 0 {
		errs = append(errs, errors.New("alertmanager.max_alerts must be > 0"))
	}
	for k := range c.ExternalLabels {
		if k == "" || strings.HasPrefix(k, "__") {
			errs = append(errs, fmt.Errorf("alertmanager.external_labels: invalid label name %q", k))
		}
	}
	if err := c.HTTPClientConfig.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("alertmanager: invalid HTTP client settings: %w", err))
	}
	return errors.Join(errs...)
}

type alertmanagerMetrics struct {
	sent     prometheus.Counter
	dropped  *prometheus.CounterVec
	requests *prometheus.CounterVec
	duration prometheus.Histogram
}

func newAlertmanagerMetrics(reg prometheus.Registerer, a *Alertmanager) *alertmanagerMetrics {
	m := &alertmanagerMetrics{
		sent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sentinel_mesh_alertmanager_alerts_sent_total",
			Help: "Alerts (firing or resolved) an Alertmanager accepted; re-sends count again.",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sentinel_mesh_alertmanager_alerts_dropped_total",
			Help: "Alerts not sent, by reason (max_alerts, send_failed: no Alertmanager accepted a post).",
		}, []string{"reason"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sentinel_mesh_alertmanager_requests_total",
			Help: "Posts to Alertmanager, by HTTP status code (\"error\" for transport errors).",
		}, []string{"code"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sentinel_mesh_alertmanager_request_duration_seconds",
			Help:    "Duration of one post to Alertmanager.",
			Buckets: prometheus.ExponentialBuckets(0.005, 4, 8),
		}),
	}
	for _, r := range []string{"max_alerts", "send_failed"} {
		m.dropped.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.sent, m.dropped, m.requests, m.duration,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "sentinel_mesh_alertmanager_alerts",
				Help: "Alerts tracked for sending: open anomalies plus resolved ones not yet delivered.",
			}, func() float64 { return float64(a.numAlerts()) }))
	}
	return m
}

// Alertmanager posts open anomalies to Alertmanager's v2 API and resolves
// them when the anomalies close. It is a detector.EventSink; Run sends.
type Alertmanager struct {
	cfg       AlertmanagerConfig
	names     LabelNames
	enricher  LabelEnricher
	incidents IncidentAssigner
	client    *http.Client
	logger    *slog.Logger
	metrics   *alertmanagerMetrics
	now       func() time.Time

	mu     sync.Mutex
	alerts map[uint64]*amAlert // by anomaly ID
	notify chan struct{}
}

type amAlert struct {
	labels      map[string]string
	annotations map[string]string
	startsAt    time.Time
	endsAt      time.Time // set once resolved
	resolved    bool
}

// PostableAlert is one alert of Alertmanager's POST /api/v2/alerts body.
type PostableAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// NewAlertmanager returns the Alertmanager output. enricher and incidents
// may be nil.
func NewAlertmanager(cfg AlertmanagerConfig, names LabelNames, enricher LabelEnricher, incidents IncidentAssigner, logger *slog.Logger, reg prometheus.Registerer) (*Alertmanager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	client, err := config.NewClientFromConfig(cfg.HTTPClientConfig, "alertmanager", config.WithUserAgent(userAgent()))
	if err != nil {
		return nil, fmt.Errorf("cannot create Alertmanager HTTP client: %w", err)
	}
	client.Timeout = time.Duration(cfg.Timeout)
	a := &Alertmanager{
		cfg: cfg, names: names, enricher: enricher, incidents: incidents, client: client,
		logger: logger, now: time.Now, alerts: map[uint64]*amAlert{}, notify: make(chan struct{}, 1),
	}
	a.metrics = newAlertmanagerMetrics(reg, a)
	return a, nil
}

func (a *Alertmanager) numAlerts() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.alerts)
}

// HandleEvents records openings and closings and wakes Run; it never blocks.
func (a *Alertmanager) HandleEvents(evs []detector.Event) {
	var buf []detector.Label
	now := a.now()
	a.mu.Lock()
	for i := range evs {
		ev := &evs[i]
		al, ok := a.alerts[ev.ID]
		if !ok {
			if len(a.alerts) >= a.cfg.MaxAlerts {
				a.metrics.dropped.WithLabelValues("max_alerts").Inc()
				continue
			}
			al = &amAlert{startsAt: time.UnixMilli(ev.OpenedAtMs)}
			// Labels are fixed at the opening: they identify the alert in
			// Alertmanager, so the close must not change them even if the
			// pod or the model changed meanwhile.
			al.labels, buf = a.alertLabels(ev, buf)
			a.alerts[ev.ID] = al
		}
		al.annotations = a.annotations(ev)
		if ev.Kind == detector.EventClose {
			al.resolved = true
			// endsAt in the past or now resolves the alert; sample time may
			// run ahead of the wall clock, so never send a future endsAt.
			al.endsAt = time.UnixMilli(ev.ClosedAtMs)
			if al.endsAt.After(now) {
				al.endsAt = now
			}
			if al.endsAt.Before(al.startsAt) {
				al.endsAt = al.startsAt
			}
		}
	}
	a.mu.Unlock()
	select {
	case a.notify <- struct{}{}:
	default:
	}
}

func (a *Alertmanager) alertLabels(ev *detector.Event, buf []detector.Label) (map[string]string, []detector.Label) {
	buf = OutputLabels(buf[:0], a.names, ev.Tenant, ev.ModelVersion, ev.Labels, a.enricher)
	ls := make(map[string]string, len(buf)+3+len(a.cfg.ExternalLabels))
	for _, l := range buf {
		ls[strings.Clone(l.Name)] = strings.Clone(l.Value)
	}
	set := func(name, value string) {
		if old, ok := ls[name]; ok {
			ls["exported_"+name] = old
		}
		ls[name] = value
	}
	set("alertname", AlertName)
	set("severity", Severity(max(ev.Score, ev.PeakScore), a.cfg.CriticalScore))
	if a.incidents != nil {
		if id := a.incidents.Incident(ev); id != "" {
			set("incident", id)
		}
	}
	for k, v := range a.cfg.ExternalLabels {
		if _, ok := ls[k]; !ok {
			ls[k] = v
		}
	}
	return ls, buf
}

func (a *Alertmanager) annotations(ev *detector.Event) map[string]string {
	metric := ev.Labels.Get(detector.MetricNameLabel)
	var series detector.Labels
	for _, l := range ev.Labels {
		if l.Name != detector.MetricNameLabel {
			series = append(series, l)
		}
	}
	dev := ""
	if d, ok := deviationPct(ev.Value, ev.Expected); ok {
		dev = fmt.Sprintf(", %+.1f%%", d)
	}
	cause := ""
	if ev.Cause != detector.CauseUnknown {
		cause = ", cause " + ev.Cause.String()
	}
	ann := map[string]string{
		"summary": fmt.Sprintf("Anomaly on %s (score %.3f)", metric, max(ev.Score, ev.PeakScore)),
		"description": fmt.Sprintf("%s%s is %s, expected %s (normal range %s to %s%s); direction %s%s, model %s.",
			metric, series.String(), formatFloat(ev.Value), formatFloat(ev.Expected),
			formatFloat(ev.Lower), formatFloat(ev.Upper), dev, ev.Direction, cause, ev.ModelVersion),
		"observed":   formatFloat(ev.Value),
		"expected":   formatFloat(ev.Expected),
		"anomaly_id": strconv.FormatUint(ev.ID, 10),
	}
	if ev.Cause != detector.CauseUnknown {
		ann["cause"] = ev.Cause.String()
	}
	if a.cfg.RunbookURL != "" {
		ann["runbook_url"] = a.cfg.RunbookURL
	}
	return ann
}

// Run sends on every event batch and re-sends open alerts every
// resend_interval until ctx is done; then it sends pending resolutions once.
func (a *Alertmanager) Run(ctx context.Context) error {
	defer a.client.CloseIdleConnections()
	resend := time.Duration(a.cfg.ResendInterval)
	t := time.NewTicker(resend)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), time.Duration(a.cfg.Timeout))
			a.send(fctx, true)
			cancel()
			return nil
		case <-a.notify:
			a.send(ctx, false)
		case <-t.C:
			a.send(ctx, false)
		}
	}
}

// send posts every tracked alert to every Alertmanager. onlyResolved sends
// just the resolutions (used on shutdown).
func (a *Alertmanager) send(ctx context.Context, onlyResolved bool) {
	now := a.now()
	resend := time.Duration(a.cfg.ResendInterval)
	a.mu.Lock()
	payload := make([]PostableAlert, 0, len(a.alerts))
	var resolvedIDs []uint64
	for id, al := range a.alerts {
		if onlyResolved && !al.resolved {
			continue
		}
		ends := now.Add(3 * resend)
		if al.resolved {
			ends = al.endsAt
			resolvedIDs = append(resolvedIDs, id)
		}
		payload = append(payload, PostableAlert{
			Labels: al.labels, Annotations: al.annotations, StartsAt: al.startsAt, EndsAt: ends,
			GeneratorURL: a.cfg.GeneratorURL,
		})
	}
	a.mu.Unlock()
	if len(payload) == 0 {
		return
	}
	body, err := json.Marshal(payload)
	if err != nil {
		a.logger.Error("Cannot encode alerts", "err", err)
		return
	}
	ok := 0
	for _, u := range a.cfg.URLs {
		res := sendWithRetry(ctx, sendParams{
			client: a.client, url: strings.TrimRight(u, "/") + "/api/v2/alerts", body: body,
			minBackoff: time.Duration(a.cfg.MinBackoff), maxBackoff: time.Duration(a.cfg.MaxBackoff), maxRetries: a.cfg.MaxRetries,
			header: func(h http.Header) {
				h.Set("Content-Type", "application/json")
				h.Set("User-Agent", userAgent())
			},
			onResponse: func(code string, d time.Duration) {
				a.metrics.requests.WithLabelValues(code).Inc()
				a.metrics.duration.Observe(d.Seconds())
			},
		})
		if res.outcome == outcomeSent {
			ok++
			a.metrics.sent.Add(float64(len(payload)))
			continue
		}
		a.logger.Warn("Cannot send alerts to Alertmanager", "url", u, "alerts", len(payload), "attempts", res.attempts, "err", res.err)
	}
	if ok == 0 {
		a.metrics.dropped.WithLabelValues("send_failed").Add(float64(len(payload)))
	} else {
		a.logger.Debug("Sent alerts to Alertmanager", "alerts", len(payload), "resolved", len(resolvedIDs))
	}
	// Resolutions are forgotten once delivered, or once Alertmanager has
	// resolved the alert by itself (its last endsAt has passed).
	a.mu.Lock()
	for _, id := range resolvedIDs {
		if al, found := a.alerts[id]; found && al.resolved && (ok > 0 || now.Sub(al.endsAt) > 3*resend) {
			delete(a.alerts, id)
		}
	}
	a.mu.Unlock()
}
