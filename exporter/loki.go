package exporter

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang/snappy"
	"github.com/grafana/loki/pkg/push"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/prometheus/common/version"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
)

// IncidentAssigner groups anomalies into incidents (internal/k8s groups the
// anomalies of one workload that open close together). Incident returns ""
// when the event belongs to no incident. It must return the same ID for the
// open and the close of one anomaly, however many outputs ask.
type IncidentAssigner interface {
	Incident(ev *detector.Event) string
}

// LokiConfig is the `loki:` section. An empty URL disables the output.
type LokiConfig struct {
	// URL is the push endpoint, e.g. http://loki:3100/loki/api/v1/push.
	URL string `yaml:"url"`
	// Format is "protobuf" (snappy-compressed, the default) or "json".
	Format string `yaml:"format"`
	// TenantID is sent as X-Scope-OrgID. Empty sends each event under its
	// own tenant (no header for the empty tenant).
	TenantID string `yaml:"tenant_id"`
	// BatchSize is the most bytes of log lines and metadata per push.
	BatchSize int `yaml:"batch_size"`
	// BatchWait is the longest an entry waits for its batch to fill.
	BatchWait model.Duration `yaml:"batch_wait"`
	// QueueSize bounds the entries waiting to be pushed; more are dropped
	// and counted in sentinel_mesh_loki_entries_dropped_total{reason="queue_full"}.
	QueueSize int `yaml:"queue_size"`
	// Timeout bounds one push request.
	Timeout model.Duration `yaml:"timeout"`
	// MinBackoff and MaxBackoff bound the wait between retries of a batch
	// that got 429, 5xx or a network error; MaxRetries bounds their number.
	MinBackoff model.Duration `yaml:"min_backoff"`
	MaxBackoff model.Duration `yaml:"max_backoff"`
	MaxRetries int            `yaml:"max_retries"`
	// CriticalScore is the (peak) score from which severity is "critical"
	// rather than "warning".
	CriticalScore float64 `yaml:"critical_score"`
	// NamespaceLabel is the series label whose value becomes the stream's
	// namespace label.
	NamespaceLabel string `yaml:"namespace_label"`
	// HTTPClientConfig holds basic_auth, authorization (bearer), oauth2,
	// tls_config, proxy_url, ... as in Prometheus.
	HTTPClientConfig config.HTTPClientConfig `yaml:",inline"`
}

// DefaultLokiConfig returns the loki section used for omitted keys.
func DefaultLokiConfig() LokiConfig {
	return LokiConfig{
		Format:           "protobuf",
		BatchSize:        1 << 20,
		BatchWait:        model.Duration(time.Second),
		QueueSize:        10_000,
		Timeout:          model.Duration(10 * time.Second),
		MinBackoff:       model.Duration(500 * time.Millisecond),
		MaxBackoff:       model.Duration(30 * time.Second),
		MaxRetries:       10,
		CriticalScore:    0.99,
		NamespaceLabel:   "namespace",
		HTTPClientConfig: config.DefaultHTTPClientConfig,
	}
}

// UnmarshalYAML starts from the defaults so omitted keys keep them.
func (c *LokiConfig) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultLokiConfig()
	type plain LokiConfig
	if err := unmarshal((*plain)(c)); err != nil {
		return fmt.Errorf("cannot parse loki: %w", err)
	}
	return nil
}

// Enabled reports whether the output is configured.
func (c *LokiConfig) Enabled() bool { return c.URL != "" }

// Validate reports every invalid field, naming its YAML key.
func (c *LokiConfig) Validate() error {
	if !c.Enabled() {
		return nil
	}
	var errs []error
	if err := validateURL(c.URL); err != nil {
		errs = append(errs, fmt.Errorf("loki.url: %w", err))
	}
	if c.Format != "protobuf" && c.Format != "json" {
		errs = append(errs, fmt.Errorf("loki.format: unknown format %q (want protobuf or json)", c.Format))
	}
	if c.BatchSize <= 0 {
		errs = append(errs, errors.New("loki.batch_size must be > 0"))
	}
	if c.BatchWait <= 0 {
		errs = append(errs, errors.New("loki.batch_wait must be > 0"))
	}
	if c.QueueSize <= 0 {
		errs = append(errs, errors.New("loki.queue_size must be > 0"))
	}
	errs = append(errs, validateSending("loki", c.Timeout, c.MinBackoff, c.MaxBackoff, c.MaxRetries)...)
	if !(c.CriticalScore > 0 && c.CriticalScore <= 1) {
		errs = append(errs, errors.New("loki.critical_score must be in (0,1]"))
	}
	if c.NamespaceLabel == "" {
		errs = append(errs, errors.New("loki.namespace_label must not be empty"))
	}
	if err := c.HTTPClientConfig.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("loki: invalid HTTP client settings: %w", err))
	}
	return errors.Join(errs...)
}

func validateURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("cannot parse URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("URL %q must be http or https", s)
	}
	if u.Host == "" {
		return fmt.Errorf("URL %q has no host", s)
	}
	return nil
}

func validateSending(section string, timeout, minB, maxB model.Duration, retries int) []error {
	var errs []error
	if timeout <= 0 {
		errs = append(errs, fmt.Errorf("%s.timeout must be > 0", section))
	}
	if minB <= 0 {
		errs = append(errs, fmt.Errorf("%s.min_backoff must be > 0", section))
	}
	if maxB < minB {
		errs = append(errs, fmt.Errorf("%s.max_backoff must be >= %s.min_backoff", section, section))
	}
	if retries < 0 {
		errs = append(errs, fmt.Errorf("%s.max_retries must be >= 0", section))
	}
	return errs
}

// Severity is "critical" from critical on, else "warning".
func Severity(score, critical float64) string {
	if score >= critical {
		return "critical"
	}
	return "warning"
}

// ServiceName is the service_name stream label of sentinel-mesh's log lines.
const ServiceName = "sentinel-mesh"

type lokiMetrics struct {
	sent       prometheus.Counter
	dropped    *prometheus.CounterVec
	requests   *prometheus.CounterVec
	retries    prometheus.Counter
	failures   prometheus.Counter
	duration   prometheus.Histogram
	batchBytes prometheus.Histogram
}

func newLokiMetrics(reg prometheus.Registerer, l *Loki) *lokiMetrics {
	m := &lokiMetrics{
		sent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sentinel_mesh_loki_entries_sent_total",
			Help: "Anomaly log entries Loki accepted.",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sentinel_mesh_loki_entries_dropped_total",
			Help: "Anomaly log entries not delivered, by reason (queue_full, rejected: 4xx other than 429, retries_exhausted, open_lost: a close whose open was not delivered).",
		}, []string{"reason"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sentinel_mesh_loki_requests_total",
			Help: "Push requests to Loki, by HTTP status code (\"error\" for transport errors).",
		}, []string{"code"}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sentinel_mesh_loki_push_failures_total",
			Help: "Push requests with entries not delivered (wholly or partly rejected, or out of retries); the mixin alerts on it.",
		}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sentinel_mesh_loki_retries_total",
			Help: "Push requests retried after 429, 5xx or a transport error.",
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sentinel_mesh_loki_request_duration_seconds",
			Help:    "Duration of one push request to Loki.",
			Buckets: prometheus.ExponentialBuckets(0.005, 4, 8),
		}),
		batchBytes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sentinel_mesh_loki_batch_bytes",
			Help:    "Uncompressed size of the log lines and metadata of one push.",
			Buckets: prometheus.ExponentialBuckets(256, 4, 8),
		}),
	}
	for _, r := range []string{"queue_full", "rejected", "retries_exhausted", "open_lost"} {
		m.dropped.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.sent, m.dropped, m.requests, m.retries, m.failures, m.duration, m.batchBytes,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "sentinel_mesh_loki_queue_length",
				Help: "Entries waiting to be pushed to Loki.",
			}, func() float64 { return float64(len(l.queue)) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "sentinel_mesh_loki_queue_capacity",
				Help: "The configured loki.queue_size.",
			}, func() float64 { return float64(cap(l.queue)) }),
		)
	}
	return m
}

// Loki pushes a log line per anomaly opening and closing to Loki. It is a
// detector.EventSink; Run does the pushing.
type Loki struct {
	cfg       LokiConfig
	names     LabelNames
	enricher  LabelEnricher
	incidents IncidentAssigner
	client    *http.Client
	logger    *slog.Logger
	metrics   *lokiMetrics
	queue     chan lokiEntry
	now       func() time.Time

	// mu makes stamping and queueing one step, so queue order is stamp order.
	mu        sync.Mutex
	lastStamp time.Time
	// lostOpens holds the anomalies whose open was not delivered and whose
	// close has not come yet: that close is dropped too, so Loki never holds
	// a close without its open. At most queue_size IDs are kept.
	lostOpens map[uint64]struct{}
}

type lokiEntry struct {
	orgID  string
	stream []push.LabelAdapter // sorted
	key    string              // orgID and stream: entries with one key share a request
	entry  push.Entry
	size   int
	kind   detector.EventKind
	id     uint64
}

// NewLoki returns the Loki output. enricher and incidents may be nil.
func NewLoki(cfg LokiConfig, names LabelNames, enricher LabelEnricher, incidents IncidentAssigner, logger *slog.Logger, reg prometheus.Registerer) (*Loki, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	client, err := config.NewClientFromConfig(cfg.HTTPClientConfig, "loki", config.WithUserAgent(userAgent()))
	if err != nil {
		return nil, fmt.Errorf("cannot create Loki HTTP client: %w", err)
	}
	client.Timeout = time.Duration(cfg.Timeout)
	l := &Loki{
		cfg: cfg, names: names, enricher: enricher, incidents: incidents,
		client: client, logger: logger, queue: make(chan lokiEntry, cfg.QueueSize),
		now: time.Now, lostOpens: map[uint64]struct{}{},
	}
	l.metrics = newLokiMetrics(reg, l)
	return l, nil
}

func userAgent() string { return "sentinel-mesh/" + version.Version }

// HandleEvents formats and queues one entry per event; it never blocks.
//
// Entries are stamped with the time they are queued, not the sample's time
// (which is in the line as sample_time): all series share a few streams, and
// Loki rejects an entry more than max_chunk_age/2 (1h by default) behind the
// newest entry of its stream, so a series lagging an hour behind another
// would lose its events. Stamps strictly increase, so each stream's entries
// reach Loki in order and none is taken for a duplicate.
func (l *Loki) HandleEvents(evs []detector.Event) {
	if len(evs) == 0 {
		return
	}
	var buf []detector.Label
	entries := make([]lokiEntry, len(evs))
	for i := range evs {
		entries[i] = l.entry(&evs[i], &buf)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range entries {
		ts := l.now().UTC()
		if !ts.After(l.lastStamp) {
			ts = l.lastStamp.Add(time.Nanosecond)
		}
		l.lastStamp, e.entry.Timestamp = ts, ts
		select {
		case l.queue <- e:
		default:
			l.dropLocked([]lokiEntry{e}, "queue_full")
		}
	}
}

// drop counts entries as not delivered and remembers the anomalies whose
// open they held.
func (l *Loki) drop(entries []lokiEntry, reason string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.dropLocked(entries, reason)
}

func (l *Loki) dropLocked(entries []lokiEntry, reason string) {
	l.metrics.dropped.WithLabelValues(reason).Add(float64(len(entries)))
	l.loseLocked(entries)
}

// loseLocked records the opens among entries as lost, and forgets the lost
// opens whose close is among them.
func (l *Loki) loseLocked(entries []lokiEntry) {
	for _, e := range entries {
		if e.kind != detector.EventOpen {
			delete(l.lostOpens, e.id)
			continue
		}
		if len(l.lostOpens) >= l.cfg.QueueSize {
			for id := range l.lostOpens { // bound: forget any one
				delete(l.lostOpens, id)
				break
			}
		}
		l.lostOpens[e.id] = struct{}{}
	}
}

// withoutLostOpens drops and counts the closes whose open was lost.
func (l *Loki) withoutLostOpens(entries []lokiEntry) []lokiEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	kept := entries[:0:0]
	for _, e := range entries {
		if _, lost := l.lostOpens[e.id]; lost && e.kind == detector.EventClose {
			delete(l.lostOpens, e.id)
			l.metrics.dropped.WithLabelValues("open_lost").Inc()
			continue
		}
		kept = append(kept, e)
	}
	return kept
}

// Names that structured metadata must not take: the stream labels (a
// metadata field named like one shows up as <name>_extracted), the line's
// logfmt keys (| logfmt renames a clashing key <name>_extracted) and the
// metadata sentinel-mesh adds. A series label with one of these names goes
// into metadata as exported_<name>.
var lokiReservedNames = map[string]bool{
	"service_name": true, "severity": true, "tenant": true, "namespace": true,
	"event": true, "score": true, "observed": true, "expected": true, "lower": true, "upper": true,
	"deviation_pct": true, "direction": true, "duration": true, "peak_score": true, "sample_time": true,
	"anomaly_id": true, "incident_id": true,
}

func (l *Loki) entry(ev *detector.Event, buf *[]detector.Label) lokiEntry {
	incident := ""
	if l.incidents != nil {
		incident = l.incidents.Incident(ev)
	}
	sev := Severity(max(ev.Score, ev.PeakScore), l.cfg.CriticalScore)
	stream := make([]push.LabelAdapter, 0, 4)
	if ns := ev.Labels.Get(l.cfg.NamespaceLabel); ns != "" {
		stream = append(stream, push.LabelAdapter{Name: "namespace", Value: ns})
	}
	stream = append(stream, push.LabelAdapter{Name: "service_name", Value: ServiceName},
		push.LabelAdapter{Name: "severity", Value: sev})
	if ev.Tenant != "" {
		stream = append(stream, push.LabelAdapter{Name: "tenant", Value: ev.Tenant})
	}

	*buf = OutputLabels((*buf)[:0], l.names, ev.Tenant, ev.ModelVersion, ev.Labels, l.enricher)
	meta := make(push.LabelsAdapter, 0, len(*buf)+2)
	size := 0
	for _, lb := range *buf {
		name := lb.Name
		if lokiReservedNames[name] {
			if lokiHasLabel(stream, name, lb.Value) {
				continue // the stream label already says it
			}
			for name = "exported_" + name; lokiReservedNames[name] || detector.Labels(*buf).Get(name) != ""; {
				name = "exported_" + name
			}
		}
		meta = append(meta, push.LabelAdapter{Name: strings.Clone(name), Value: strings.Clone(lb.Value)})
		size += len(name) + len(lb.Value)
	}
	meta = append(meta, push.LabelAdapter{Name: "anomaly_id", Value: strconv.FormatUint(ev.ID, 10)})
	if incident != "" {
		meta = append(meta, push.LabelAdapter{Name: "incident_id", Value: incident})
	}
	line := FormatEventLine(ev)
	size += len(line)
	orgID := l.cfg.TenantID
	if orgID == "" {
		orgID = ev.Tenant
	}
	return lokiEntry{
		orgID:  orgID,
		stream: stream,
		key:    orgID + "\x00" + lokiLabelsString(stream),
		entry:  push.Entry{Line: line, StructuredMetadata: meta}, // stamped when queued
		size:   size,
		kind:   ev.Kind,
		id:     ev.ID,
	}
}

func lokiHasLabel(ls []push.LabelAdapter, name, value string) bool {
	for _, l := range ls {
		if l.Name == name {
			return l.Value == value
		}
	}
	return false
}

// FormatEventLine renders an event as one logfmt line: event, score,
// observed, expected, lower, upper, deviation_pct, direction, cause (when
// known: the scoring term that opened the anomaly), corroborated
// (only on an open that corroboration lifted), duration and peak_score (on
// close), and sample_time, the time of the sample that opened
// or closed the anomaly (the entry's own timestamp is when it was sent). What
// identifies the series and the anomaly is in structured metadata, not here,
// so that | logfmt extracts no key that metadata already has.
func FormatEventLine(ev *detector.Event) string {
	var b strings.Builder
	kv := func(k, v string) {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(k)
		b.WriteByte('=')
		if v == "" || strings.ContainsAny(v, " =\"\\\t\n") {
			v = strconv.Quote(v)
		}
		b.WriteString(v)
	}
	kv("event", ev.Kind.String())
	kv("score", strconv.FormatFloat(ev.Score, 'f', 4, 64))
	kv("observed", formatFloat(ev.Value))
	kv("expected", formatFloat(ev.Expected))
	kv("lower", formatFloat(ev.Lower))
	kv("upper", formatFloat(ev.Upper))
	if dev, ok := deviationPct(ev.Value, ev.Expected); ok {
		kv("deviation_pct", strconv.FormatFloat(dev, 'f', 1, 64))
	}
	kv("direction", ev.Direction.String())
	if ev.Cause != detector.CauseUnknown {
		kv("cause", ev.Cause.String())
	}
	if ev.Corroborated {
		kv("corroborated", "true")
	}
	if ev.Kind == detector.EventClose {
		kv("duration", (time.Duration(ev.ClosedAtMs-ev.OpenedAtMs) * time.Millisecond).String())
		kv("peak_score", strconv.FormatFloat(ev.PeakScore, 'f', 4, 64))
	}
	kv("sample_time", time.UnixMilli(ev.TimestampMs).UTC().Format(lokiSampleTimeLayout))
	return b.String()
}

// lokiSampleTimeLayout is RFC 3339 in UTC with milliseconds, the precision
// of Prometheus sample timestamps.
const lokiSampleTimeLayout = "2006-01-02T15:04:05.000Z07:00"

func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }

// deviationPct is how far observed is from expected, in percent of expected.
func deviationPct(observed, expected float64) (float64, bool) {
	if expected == 0 || math.IsNaN(expected) || math.IsInf(expected, 0) {
		return 0, false
	}
	return (observed - expected) / math.Abs(expected) * 100, true
}

// Run pushes batches until ctx is done, then makes one last attempt to push
// what is queued.
func (l *Loki) Run(ctx context.Context) error {
	defer l.client.CloseIdleConnections()
	var (
		batch []lokiEntry
		size  int
	)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	flush := func(ctx context.Context) {
		if len(batch) > 0 {
			l.flush(ctx, batch, size)
		}
		clear(batch)
		batch, size = batch[:0], 0
	}
	for {
		select {
		case <-ctx.Done():
			for drained := false; !drained; {
				select {
				case e := <-l.queue:
					batch = append(batch, e)
					size += e.size
				default:
					drained = true
				}
			}
			// A final push that does not retry for long.
			fctx, cancel := context.WithTimeout(context.Background(), time.Duration(l.cfg.Timeout))
			flush(fctx)
			cancel()
			return nil
		case e := <-l.queue:
			if len(batch) == 0 {
				timer.Reset(time.Duration(l.cfg.BatchWait))
			}
			batch = append(batch, e)
			size += e.size
			if size >= l.cfg.BatchSize {
				timer.Stop()
				flush(ctx)
			}
		case <-timer.C:
			flush(ctx)
		}
	}
}

// flush pushes batch, one request per tenant and stream: Loki's 400 names
// the rejected count of one stream only (the last one that failed), so a
// request with one stream is what lets a partial rejection be counted
// exactly. A close waits for the outcome of its open when both are in the
// batch (they can be in different streams: the severity follows the peak),
// and is dropped with it if the open is lost.
func (l *Loki) flush(ctx context.Context, batch []lokiEntry, size int) {
	l.metrics.batchBytes.Observe(float64(size))
	pending := map[uint64]bool{}
	for _, e := range batch {
		if e.kind == detector.EventOpen {
			pending[e.id] = true
		}
	}
	var deferred []lokiEntry
	send := func(entries []lokiEntry) {
		for _, group := range lokiGroups(entries) {
			ready := group[:0:0]
			for _, e := range group {
				if e.kind == detector.EventClose && pending[e.id] {
					deferred = append(deferred, e)
				} else {
					ready = append(ready, e)
				}
			}
			if ready = l.withoutLostOpens(ready); len(ready) > 0 {
				l.push(ctx, ready)
			}
			for _, e := range ready {
				if e.kind == detector.EventOpen {
					delete(pending, e.id)
				}
			}
		}
	}
	send(batch)
	// Every open of the batch has been pushed or lost by now.
	rest := deferred
	deferred = nil
	send(rest)
}

// lokiGroups splits entries by key, in order of first appearance, keeping
// the order within each group.
func lokiGroups(entries []lokiEntry) [][]lokiEntry {
	var groups [][]lokiEntry
	index := map[string]int{}
	for _, e := range entries {
		i, ok := index[e.key]
		if !ok {
			i = len(groups)
			index[e.key] = i
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], e)
	}
	return groups
}

// push sends the entries of one tenant and stream and counts the outcome.
func (l *Loki) push(ctx context.Context, entries []lokiEntry) {
	org := entries[0].orgID
	body, ctype, err := l.encode(entries)
	if err != nil {
		l.metrics.failures.Inc()
		l.drop(entries, "rejected")
		l.logger.Error("Cannot encode Loki push request", "entries", len(entries), "err", err)
		return
	}
	res := sendWithRetry(ctx, sendParams{
		client: l.client, url: l.cfg.URL, body: body, minBackoff: time.Duration(l.cfg.MinBackoff),
		maxBackoff: time.Duration(l.cfg.MaxBackoff), maxRetries: l.cfg.MaxRetries,
		header: func(h http.Header) {
			h.Set("Content-Type", ctype)
			h.Set("User-Agent", userAgent())
			if org != "" {
				h.Set("X-Scope-OrgID", org)
			}
		},
		onResponse: func(code string, d time.Duration) {
			l.metrics.requests.WithLabelValues(code).Inc()
			l.metrics.duration.Observe(d.Seconds())
		},
		onRetry: l.metrics.retries.Inc,
	})
	switch res.outcome {
	case outcomeSent:
		l.metrics.sent.Add(float64(len(entries)))
		l.logger.Debug("Pushed anomaly events to Loki", "entries", len(entries), "tenant", org)
	case outcomeRejected:
		rejected, lost := lokiRejected(entries, res.raw)
		l.metrics.sent.Add(float64(len(entries) - rejected))
		l.metrics.dropped.WithLabelValues("rejected").Add(float64(rejected))
		l.mu.Lock()
		l.loseLocked(lost)
		l.mu.Unlock()
		// Last, so whoever sees the failure also sees what it sent and dropped.
		l.metrics.failures.Inc()
		l.logger.Warn("Loki rejected anomaly events; dropping them", "entries", len(entries), "rejected", rejected,
			"tenant", org, "status", res.status, "body", res.body)
	default:
		l.metrics.failures.Inc()
		l.drop(entries, "retries_exhausted")
		l.logger.Warn("Cannot push anomaly events to Loki; dropping them", "entries", len(entries), "tenant", org, "attempts", res.attempts, "err", res.err)
	}
}

// Loki's ingester answers a push with rejected entries with a 400 (or a 429
// for a stream rate limit) whose body is, for the last stream with rejected
// entries, up to max_returned_stream_errors (10) lines
//
//	entry with timestamp 2026-10-07 01:35:32.405 +0000 UTC ignored, reason: 'entry too far behind, ...',
//
// and a summary
//
//	user 'acme', total ignored: 1 out of 3 for stream: {service_name="sentinel-mesh", ...}
//
// (Loki 2.x: "total ignored: 1 out of 3"). The other entries were stored.
// The distributor's own validation errors (invalid labels, too old, line
// too long) have no summary.
var (
	lokiIgnoredTotalRE = regexp.MustCompile(`total ignored: (\d+) out of (\d+)`)
	lokiIgnoredEntryRE = regexp.MustCompile(`(?m)^entry with timestamp (.+?) ignored, reason: `)
)

// lokiTimeLayout is how Loki prints an ignored entry's timestamp
// (time.Time.String without a monotonic reading).
const lokiTimeLayout = "2006-01-02 15:04:05.999999999 -0700 MST"

// lokiRejected reads a rejection's body: how many of entries (one stream)
// Loki did not store, and the entries whose loss matters for pairing. Without
// a summary every entry counts as rejected. Entries beyond the listed ones
// cannot be told apart, so then every open of the request counts as lost:
// a close may be dropped whose open arrived, never the reverse.
func lokiRejected(entries []lokiEntry, body []byte) (rejected int, lost []lokiEntry) {
	m := lokiIgnoredTotalRE.FindSubmatch(body)
	if m == nil {
		return len(entries), entries
	}
	ignored, err1 := strconv.Atoi(string(m[1]))
	total, err2 := strconv.Atoi(string(m[2]))
	if err1 != nil || err2 != nil {
		return len(entries), entries
	}
	// Entries the distributor dropped before the ingester are not in total.
	rejected = min(len(entries), ignored+max(0, len(entries)-total))
	listed := map[int64]bool{}
	for _, sm := range lokiIgnoredEntryRE.FindAllSubmatch(body, -1) {
		if ts, err := time.Parse(lokiTimeLayout, string(sm[1])); err == nil {
			listed[ts.UnixNano()] = true
		}
	}
	for _, e := range entries {
		if listed[e.entry.Timestamp.UnixNano()] {
			lost = append(lost, e)
		}
	}
	if len(lost) != rejected {
		lost = lost[:0]
		for _, e := range entries {
			if e.kind == detector.EventOpen || listed[e.entry.Timestamp.UnixNano()] {
				lost = append(lost, e)
			}
		}
	}
	return rejected, lost
}

func (l *Loki) encode(entries []lokiEntry) ([]byte, string, error) {
	type group struct {
		labels  []push.LabelAdapter
		entries []push.Entry
	}
	var order []string
	groups := map[string]*group{}
	for _, e := range entries {
		key := lokiLabelsString(e.stream)
		g, ok := groups[key]
		if !ok {
			g = &group{labels: e.stream}
			groups[key] = g
			order = append(order, key)
		}
		g.entries = append(g.entries, e.entry)
	}
	if l.cfg.Format == "json" {
		type jsonStream struct {
			Stream map[string]string `json:"stream"`
			Values [][]any           `json:"values"`
		}
		req := struct {
			Streams []jsonStream `json:"streams"`
		}{}
		for _, key := range order {
			g := groups[key]
			s := jsonStream{Stream: map[string]string{}}
			for _, lb := range g.labels {
				s.Stream[lb.Name] = lb.Value
			}
			for _, e := range g.entries {
				meta := make(map[string]string, len(e.StructuredMetadata))
				for _, m := range e.StructuredMetadata {
					meta[m.Name] = m.Value
				}
				s.Values = append(s.Values, []any{strconv.FormatInt(e.Timestamp.UnixNano(), 10), e.Line, meta})
			}
			req.Streams = append(req.Streams, s)
		}
		b, err := json.Marshal(req)
		return b, "application/json", err
	}
	req := push.PushRequest{Streams: make([]push.Stream, 0, len(order))}
	for _, key := range order {
		req.Streams = append(req.Streams, push.Stream{Labels: key, Entries: groups[key].entries})
	}
	b, err := req.Marshal()
	if err != nil {
		return nil, "", fmt.Errorf("cannot marshal push request: %w", err)
	}
	return snappy.Encode(nil, b), "application/x-protobuf", nil
}

// lokiLabelsString renders sorted labels as Loki's stream selector syntax.
func lokiLabelsString(ls []push.LabelAdapter) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, l := range ls {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(l.Name)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(l.Value))
	}
	b.WriteByte('}')
	return b.String()
}

// Sending with retries, shared by the Loki, remote-write and Alertmanager
// outputs.

type outcome int

const (
	outcomeSent outcome = iota
	outcomeRejected
	outcomeFailed
)

type sendParams struct {
	client                 *http.Client
	url                    string
	method                 string // POST unless set
	body                   []byte
	header                 func(http.Header)
	minBackoff, maxBackoff time.Duration
	maxRetries             int
	onResponse             func(code string, d time.Duration)
	onRetry                func()
}

type sendResult struct {
	outcome  outcome
	status   int
	body     string // first bytes of a rejection's body, for logs
	raw      []byte // the body, up to maxResponseBody
	attempts int
	err      error
}

// sendWithRetry posts p.body. 2xx is success; 429, 5xx and transport
// errors are retried with exponential backoff from minBackoff to maxBackoff
// (a Retry-After header replaces the backoff, capped at maxRetryAfter); any
// other status is a rejection that must not be retried.
func sendWithRetry(ctx context.Context, p sendParams) sendResult {
	backoff := p.minBackoff
	method := p.method
	if method == "" {
		method = http.MethodPost
	}
	var res sendResult
	for {
		res.attempts++
		wait, retry := time.Duration(0), false
		req, err := http.NewRequestWithContext(ctx, method, p.url, bytes.NewReader(p.body))
		if err != nil {
			return sendResult{outcome: outcomeRejected, err: fmt.Errorf("cannot create request: %w", err), attempts: res.attempts}
		}
		if p.header != nil {
			p.header(req.Header)
		}
		start := time.Now()
		resp, err := p.client.Do(req)
		if err != nil {
			if p.onResponse != nil {
				p.onResponse("error", time.Since(start))
			}
			res.err, res.status, retry = err, 0, true
		} else {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			if p.onResponse != nil {
				p.onResponse(strconv.Itoa(resp.StatusCode), time.Since(start))
			}
			res.status, res.raw = resp.StatusCode, body
			res.body = strings.TrimSpace(string(body[:min(len(body), 1024)]))
			switch {
			case resp.StatusCode/100 == 2:
				res.outcome, res.err = outcomeSent, nil
				return res
			case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode/100 == 5:
				res.err = fmt.Errorf("server returned HTTP status %s: %s", resp.Status, res.body)
				retry = true
				wait = retryAfter(resp.Header.Get("Retry-After"), maxRetryAfter)
			default:
				res.outcome, res.err = outcomeRejected, fmt.Errorf("server returned HTTP status %s: %s", resp.Status, res.body)
				return res
			}
		}
		if !retry || res.attempts > p.maxRetries || ctx.Err() != nil {
			res.outcome = outcomeFailed
			return res
		}
		if wait == 0 {
			wait = backoff
			backoff = min(2*backoff, p.maxBackoff)
		}
		if p.onRetry != nil {
			p.onRetry()
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			res.outcome = outcomeFailed
			return res
		case <-t.C:
		}
	}
}

// maxResponseBody bounds the response body kept: Loki's list of up to ten
// ignored entries and its summary fit.
const maxResponseBody = 64 << 10

// maxRetryAfter caps the wait a Retry-After header may ask for.
const maxRetryAfter = 5 * time.Minute

// retryAfter parses a Retry-After header (seconds or an HTTP date); 0 when
// absent or invalid. Waits are capped at limit.
func retryAfter(h string, limit time.Duration) time.Duration {
	if h == "" {
		return 0
	}
	var d time.Duration
	if s, err := strconv.Atoi(h); err == nil {
		d = time.Duration(s) * time.Second
	} else if t, err := http.ParseTime(h); err == nil {
		d = time.Until(t)
	}
	if d <= 0 {
		return 0
	}
	return min(d, limit)
}
