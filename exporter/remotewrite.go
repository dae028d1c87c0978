package exporter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
)

// Remote-write protobuf messages, named as in Prometheus' protobuf_message.
const (
	RemoteWriteV1Message = "prometheus.WriteRequest"
	RemoteWriteV2Message = "io.prometheus.write.v2.Request"
)

// RemoteWriteOutConfig is the `remote_write_out:` section. An empty URL
// disables the output.
type RemoteWriteOutConfig struct {
	// URL is the receiver's remote-write endpoint.
	URL string `yaml:"url"`
	// ProtobufMessage selects Remote-Write 1.0 (prometheus.WriteRequest,
	// the default) or 2.0 (io.prometheus.write.v2.Request).
	ProtobufMessage string `yaml:"protobuf_message"`
	// Interval is how often the detector's results are read; every result
	// scored since the previous read is sent with its sample's timestamp
	// (see ResultsSinceSource for which results a detector still holds).
	Interval model.Duration `yaml:"interval"`
	// Shards is the number of concurrent senders; a series always uses the
	// same shard, so its samples stay in order.
	Shards int `yaml:"shards"`
	// QueueCapacity is the number of series results (4 samples each) each
	// shard buffers; more are dropped and counted.
	QueueCapacity int `yaml:"queue_capacity"`
	// MaxSamplesPerSend bounds the samples of one request.
	MaxSamplesPerSend int `yaml:"max_samples_per_send"`
	// Timeout bounds one request; MinBackoff, MaxBackoff and MaxRetries
	// bound the retries of a request that got 429, 5xx or a transport error.
	Timeout    model.Duration `yaml:"timeout"`
	MinBackoff model.Duration `yaml:"min_backoff"`
	MaxBackoff model.Duration `yaml:"max_backoff"`
	MaxRetries int            `yaml:"max_retries"`
	// HTTPClientConfig holds basic_auth, authorization, tls_config,
	// http_headers (e.g. X-Scope-OrgID), ...
	HTTPClientConfig config.HTTPClientConfig `yaml:",inline"`
}

// DefaultRemoteWriteOutConfig returns the remote_write_out section used for
// omitted keys.
func DefaultRemoteWriteOutConfig() RemoteWriteOutConfig {
	return RemoteWriteOutConfig{
		ProtobufMessage:   RemoteWriteV1Message,
		Interval:          model.Duration(15 * time.Second),
		Shards:            4,
		QueueCapacity:     50_000,
		MaxSamplesPerSend: 2000,
		Timeout:           model.Duration(30 * time.Second),
		MinBackoff:        model.Duration(30 * time.Millisecond),
		MaxBackoff:        model.Duration(5 * time.Second),
		MaxRetries:        10,
		HTTPClientConfig:  config.DefaultHTTPClientConfig,
	}
}

// UnmarshalYAML starts from the defaults so omitted keys keep them.
func (c *RemoteWriteOutConfig) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultRemoteWriteOutConfig()
	type plain RemoteWriteOutConfig
	if err := unmarshal((*plain)(c)); err != nil {
		return fmt.Errorf("cannot parse remote_write_out: %w", err)
	}
	return nil
}

// Enabled reports whether the output is configured.
func (c *RemoteWriteOutConfig) Enabled() bool { return c.URL != "" }

// Validate reports every invalid field, naming its YAML key.
func (c *RemoteWriteOutConfig) Validate() error {
	if !c.Enabled() {
		return nil
	}
	var errs []error
	if err := validateURL(c.URL); err != nil {
		errs = append(errs, fmt.Errorf("remote_write_out.url: %w", err))
	}
	if c.ProtobufMessage != RemoteWriteV1Message && c.ProtobufMessage != RemoteWriteV2Message {
		errs = append(errs, fmt.Errorf("remote_write_out.protobuf_message: unknown message %q (want %s or %s)", c.ProtobufMessage, RemoteWriteV1Message, RemoteWriteV2Message))
	}
	if c.Interval <= 0 {
		errs = append(errs, errors.New("remote_write_out.interval must be > 0"))
	}
	if c.Shards <= 0 {
		errs = append(errs, errors.New("remote_write_out.shards must be > 0"))
	}
	if c.QueueCapacity <= 0 {
		errs = append(errs, errors.New("remote_write_out.queue_capacity must be > 0"))
	}
	if c.MaxSamplesPerSend < 4 {
		errs = append(errs, errors.New("remote_write_out.max_samples_per_send must be >= 4"))
	}
	errs = append(errs, validateSending("remote_write_out", c.Timeout, c.MinBackoff, c.MaxBackoff, c.MaxRetries)...)
	if err := c.HTTPClientConfig.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("remote_write_out: invalid HTTP client settings: %w", err))
	}
	return errors.Join(errs...)
}

type remoteWriteOutMetrics struct {
	samples  *prometheus.CounterVec
	failures *prometheus.CounterVec
	requests *prometheus.CounterVec
	retries  prometheus.Counter
	duration prometheus.Histogram
	lastSent prometheus.Gauge
}

func newRemoteWriteOutMetrics(reg prometheus.Registerer, w *RemoteWriteOut) *remoteWriteOutMetrics {
	m := &remoteWriteOutMetrics{
		samples: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sentinel_mesh_remote_write_out_samples_total",
			Help: "Score samples written to remote_write_out.url, by outcome (sent; failed: rejected or retries exhausted; dropped: queue full).",
		}, []string{"outcome"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sentinel_mesh_remote_write_out_failures_total",
			Help: "Remote-write requests given up on, by reason (rejected: 4xx other than 429; retries_exhausted).",
		}, []string{"reason"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sentinel_mesh_remote_write_out_requests_total",
			Help: "Remote-write requests, by HTTP status code (\"error\" for transport errors).",
		}, []string{"code"}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sentinel_mesh_remote_write_out_retries_total",
			Help: "Remote-write requests retried after 429, 5xx or a transport error.",
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sentinel_mesh_remote_write_out_request_duration_seconds",
			Help:    "Duration of one remote-write request.",
			Buckets: prometheus.ExponentialBuckets(0.005, 4, 8),
		}),
		lastSent: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sentinel_mesh_remote_write_out_last_sent_timestamp_seconds",
			Help: "Newest sample timestamp the receiver accepted.",
		}),
	}
	for _, o := range []string{"sent", "failed", "dropped"} {
		m.samples.WithLabelValues(o)
	}
	for _, r := range []string{"rejected", "retries_exhausted"} {
		m.failures.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.samples, m.failures, m.requests, m.retries, m.duration, m.lastSent,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "sentinel_mesh_remote_write_out_queue_length",
				Help: "Score samples waiting to be sent, over all shards.",
			}, func() float64 { return float64(4 * w.queued()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "sentinel_mesh_remote_write_out_queue_capacity",
				Help: "Score samples the shards can buffer.",
			}, func() float64 { return float64(4 * w.cfg.QueueCapacity * w.cfg.Shards) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "sentinel_mesh_remote_write_out_shards",
				Help: "The configured remote_write_out.shards.",
			}, func() float64 { return float64(w.cfg.Shards) }),
		)
	}
	return m
}

// RemoteWriteOut writes anomaly_score, anomaly_expected, anomaly_lower and
// anomaly_upper of every newly scored result to a Prometheus-compatible
// receiver, with the timestamps of the scored samples, and anomaly_open: 1
// with every result while an anomaly is open, and a staleness marker with
// the first result after it closed, which ends the series in PromQL at once
// (as Prometheus does for a series that left a scrape).
type RemoteWriteOut struct {
	cfg      RemoteWriteOutConfig
	src      ResultSource
	names    LabelNames
	enricher LabelEnricher
	client   *http.Client
	logger   *slog.Logger
	metrics  *remoteWriteOutMetrics
	shards   []chan rwItem

	// last is the newest timestamp queued per series, owned by Run's
	// collecting goroutine; gen marks the series seen by the latest pass.
	last map[uint64]rwLast
	gen  uint32

	lastSentMu sync.Mutex
	lastSentMs int64 // newest timestamp accepted, over all shards
}

type rwLast struct {
	ts   int64
	gen  uint32
	open bool // the newest result queued had an open anomaly
}

// rwItem is one series' result: four samples sharing labels, and an
// anomaly_open sample while an anomaly is open or just closed.
type rwItem struct {
	labels []detector.Label // output labels without __name__, sorted
	ts     int64
	values [4]float64
	open   int8 // openNone, openSample or openStale
}

const (
	openNone   int8 = iota // no anomaly_open sample
	openSample             // anomaly_open 1: an anomaly is open
	openStale              // a staleness marker: the anomaly closed
)

// openState is the anomaly_open sample of result r of a series whose newest
// queued result is last.
func openState(r *detector.Result, last rwLast) int8 {
	switch {
	case r.Anomalous:
		return openSample
	case last.open:
		return openStale
	}
	return openNone
}

// samples is how many samples the item writes.
func (it *rwItem) samples() int {
	if it.open != openNone {
		return 5
	}
	return 4
}

// each calls fn with each sample of the item: i indexes rwMetricNames, and
// is len(rwMetricNames) for anomaly_open.
func (it *rwItem) each(fn func(i int, name string, v float64)) {
	for i, name := range rwMetricNames {
		fn(i, name, it.values[i])
	}
	switch it.open {
	case openSample:
		fn(len(rwMetricNames), OpenMetric, 1)
	case openStale:
		fn(len(rwMetricNames), OpenMetric, math.Float64frombits(value.StaleNaN))
	}
}

var rwMetricNames = [4]string{ScoreMetric, ExpectedMetric, LowerMetric, UpperMetric}

// NewRemoteWriteOut returns the remote-write output reading src. enricher
// may be nil.
func NewRemoteWriteOut(cfg RemoteWriteOutConfig, src ResultSource, names LabelNames, enricher LabelEnricher, logger *slog.Logger, reg prometheus.Registerer) (*RemoteWriteOut, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	client, err := config.NewClientFromConfig(cfg.HTTPClientConfig, "remote_write_out", config.WithUserAgent(userAgent()))
	if err != nil {
		return nil, fmt.Errorf("cannot create remote-write HTTP client: %w", err)
	}
	client.Timeout = time.Duration(cfg.Timeout)
	w := &RemoteWriteOut{
		cfg: cfg, src: src, names: names, enricher: enricher, client: client, logger: logger,
		shards: make([]chan rwItem, cfg.Shards), last: map[uint64]rwLast{},
	}
	for i := range w.shards {
		w.shards[i] = make(chan rwItem, cfg.QueueCapacity)
	}
	if l, ok := src.(interface{ EnableResultLog(capacity int) }); ok {
		// Every scored result, calm series included, waits in the detector
		// until the next Collect; as many as the send queues can hold.
		l.EnableResultLog(cfg.QueueCapacity * cfg.Shards)
	}
	w.metrics = newRemoteWriteOutMetrics(reg, w)
	return w, nil
}

func (w *RemoteWriteOut) queued() int {
	n := 0
	for _, ch := range w.shards {
		n += len(ch)
	}
	return n
}

// Run reads results every interval and sends them until ctx is done; the
// shards then make one last attempt to send what they hold.
func (w *RemoteWriteOut) Run(ctx context.Context) error {
	defer w.client.CloseIdleConnections()
	var wg sync.WaitGroup
	for i := range w.shards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.runShard(ctx, w.shards[i])
		}()
	}
	t := time.NewTicker(time.Duration(w.cfg.Interval))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return nil
		case <-t.C:
			w.Collect()
		}
	}
}

// ResultsSinceSource is a ResultSource that can also give every result
// newer than a per-series cursor; *detector.Detector implements it. With it
// the remote-write output sends every scored result the detector still
// holds rather than only the latest one per series and interval.
type ResultsSinceSource interface {
	ResultSource
	ResultsSince(cursor func(id uint64) int64, fn func(id uint64, r *detector.Result) bool)
}

// Collect queues every result newer than the one last queued for its series.
// Run calls it every interval; it must not be called concurrently.
func (w *RemoteWriteOut) Collect() {
	version := ""
	if m := w.src.Model(); m != nil {
		version = m.Version()
	}
	w.gen++
	dropped, queued := 0, 0
	var (
		buf []detector.Label
		// The series whose labels buf holds, and whether one of its results
		// did not fit its shard's queue this pass.
		curID     uint64
		curOK     bool
		curTenant string
		curSrc    detector.Labels
		curLbls   []detector.Label
		blocked   bool
	)
	offer := func(h uint64, r *detector.Result) {
		last := w.last[h]
		if curOK && h == curID && r.Tenant == curTenant && slices.Equal(r.Labels, curSrc) {
			if blocked {
				// A previous result of this series was dropped: keep the
				// series' samples in order, the next pass offers it again.
				dropped += (&rwItem{open: openState(r, last)}).samples()
				return
			}
		} else {
			buf = OutputLabels(buf[:0], w.names, r.Tenant, version, r.Labels, w.enricher)
			curLbls = make([]detector.Label, len(buf))
			for i, l := range buf {
				curLbls[i] = detector.Label{Name: strings.Clone(l.Name), Value: strings.Clone(l.Value)}
			}
			// r.Labels is the source's buffer, reused for the next result:
			// keep a copy of the slice (its strings are immutable).
			curID, curOK, curTenant, curSrc, blocked = h, true, r.Tenant, append(curSrc[:0], r.Labels...), false
		}
		// Results of one series share the (immutable) label slice.
		it := rwItem{labels: curLbls, ts: r.TimestampMs, values: [4]float64{r.Score, r.Expected, r.Lower, r.Upper}, open: openState(r, last)}
		select {
		case w.shards[h%uint64(len(w.shards))] <- it:
			w.last[h] = rwLast{ts: r.TimestampMs, gen: w.gen, open: r.Anomalous}
			queued += it.samples()
		default:
			// Not recorded as sent: the next pass offers the series again.
			w.last[h] = rwLast{ts: last.ts, gen: w.gen, open: last.open}
			blocked = true
			dropped += it.samples()
		}
	}
	if src, ok := w.src.(ResultsSinceSource); ok {
		src.ResultsSince(func(h uint64) int64 {
			last, ok := w.last[h]
			if !ok {
				return 0
			}
			w.last[h] = rwLast{ts: last.ts, gen: w.gen, open: last.open}
			return last.ts
		}, func(h uint64, r *detector.Result) bool {
			offer(h, r)
			return true
		})
	} else {
		w.src.Results(func(r *detector.Result) bool {
			h := seriesHash(r.Tenant, r.Labels)
			last, ok := w.last[h]
			if ok && r.TimestampMs <= last.ts {
				w.last[h] = rwLast{ts: last.ts, gen: w.gen, open: last.open}
				return true
			}
			offer(h, r)
			return true
		})
	}
	for h, l := range w.last {
		if l.gen != w.gen {
			delete(w.last, h) // series expired in the detector
		}
	}
	if dropped > 0 {
		w.metrics.samples.WithLabelValues("dropped").Add(float64(dropped))
		w.logger.Warn("Remote-write queue full; dropped score samples", "samples", dropped, "queued", queued)
	}
}

func seriesHash(tenant string, lbls detector.Labels) uint64 {
	d := xxhash.New()
	_, _ = d.WriteString(tenant)
	sep := []byte{0xff}
	for _, l := range lbls {
		_, _ = d.Write(sep)
		_, _ = d.WriteString(l.Name)
		_, _ = d.Write(sep)
		_, _ = d.WriteString(l.Value)
	}
	return d.Sum64()
}

func (w *RemoteWriteOut) runShard(ctx context.Context, ch chan rwItem) {
	// An item writes 4 or 5 samples: a batch stops before it would pass
	// max_samples_per_send.
	maxSamples := w.cfg.MaxSamplesPerSend
	batch := make([]rwItem, 0, maxSamples/4)
	// fill appends queued items to batch up to maxSamples, starting from
	// the items already in it.
	fill := func(batch []rwItem) []rwItem {
		n := 0
		for i := range batch {
			n += batch[i].samples()
		}
		for n+5 <= maxSamples {
			select {
			case it := <-ch:
				batch = append(batch, it)
				n += it.samples()
				continue
			default:
			}
			break
		}
		return batch
	}
	for {
		select {
		case <-ctx.Done():
			// One last attempt for what is queued, without long retries.
			fctx, cancel := context.WithTimeout(context.Background(), time.Duration(w.cfg.Timeout))
			defer cancel()
			for {
				batch = fill(batch[:0])
				if len(batch) == 0 || fctx.Err() != nil {
					return
				}
				w.send(fctx, batch)
			}
		case it := <-ch:
			batch = fill(append(batch[:0], it))
			w.send(ctx, batch)
			clear(batch)
		}
	}
}

func (w *RemoteWriteOut) send(ctx context.Context, batch []rwItem) {
	body, ctype, version, err := w.encode(batch)
	var n float64
	for i := range batch {
		n += float64(batch[i].samples())
	}
	if err != nil {
		w.metrics.samples.WithLabelValues("failed").Add(n)
		w.logger.Error("Cannot encode remote-write request", "err", err)
		return
	}
	res := sendWithRetry(ctx, sendParams{
		client: w.client, url: w.cfg.URL, body: body,
		minBackoff: time.Duration(w.cfg.MinBackoff), maxBackoff: time.Duration(w.cfg.MaxBackoff), maxRetries: w.cfg.MaxRetries,
		header: func(h http.Header) {
			h.Set("Content-Encoding", "snappy")
			h.Set("Content-Type", ctype)
			h.Set("User-Agent", userAgent())
			h.Set("X-Prometheus-Remote-Write-Version", version)
		},
		onResponse: func(code string, d time.Duration) {
			w.metrics.requests.WithLabelValues(code).Inc()
			w.metrics.duration.Observe(d.Seconds())
		},
		onRetry: w.metrics.retries.Inc,
	})
	switch res.outcome {
	case outcomeSent:
		w.metrics.samples.WithLabelValues("sent").Add(n)
		newest := int64(0)
		for _, it := range batch {
			newest = max(newest, it.ts)
		}
		w.lastSentMu.Lock()
		if newest > w.lastSentMs {
			w.lastSentMs = newest
			w.metrics.lastSent.Set(float64(newest) / 1000)
		}
		w.lastSentMu.Unlock()
	case outcomeRejected:
		w.metrics.samples.WithLabelValues("failed").Add(n)
		w.metrics.failures.WithLabelValues("rejected").Inc()
		w.logger.Warn("Remote-write receiver rejected score samples; dropping them", "samples", int(n), "status", res.status, "body", res.body)
	default:
		w.metrics.samples.WithLabelValues("failed").Add(n)
		w.metrics.failures.WithLabelValues("retries_exhausted").Inc()
		w.logger.Warn("Cannot write score samples; dropping them", "samples", int(n), "attempts", res.attempts, "err", res.err)
	}
}

// withName returns lbls with __name__=name inserted in sorted position.
func withName(lbls []detector.Label, name string, dst []detector.Label) []detector.Label {
	dst = append(dst[:0], lbls...)
	dst = append(dst, detector.Label{Name: detector.MetricNameLabel, Value: name})
	sort.Slice(dst, func(i, j int) bool { return dst[i].Name < dst[j].Name })
	return dst
}

func (w *RemoteWriteOut) encode(batch []rwItem) (body []byte, contentType, version string, err error) {
	var buf []detector.Label
	var raw []byte
	if w.cfg.ProtobufMessage == RemoteWriteV2Message {
		st := writev2.NewSymbolTable()
		req := writev2.Request{Timeseries: make([]writev2.TimeSeries, 0, 4*len(batch))}
		var helpRefs [len(rwMetricNames) + 1]uint32
		for i, name := range rwMetricNames {
			helpRefs[i] = st.Symbolize(rwHelp[name])
		}
		helpRefs[len(rwMetricNames)] = st.Symbolize(openHelp)
		for _, it := range batch {
			it.each(func(i int, name string, v float64) {
				buf = withName(it.labels, name, buf)
				refs := make([]uint32, 0, 2*len(buf))
				for _, l := range buf {
					refs = append(refs, st.Symbolize(l.Name), st.Symbolize(l.Value))
				}
				req.Timeseries = append(req.Timeseries, writev2.TimeSeries{
					LabelsRefs: refs,
					Samples:    []writev2.Sample{{Value: v, Timestamp: it.ts}},
					Metadata:   writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_GAUGE, HelpRef: helpRefs[i]},
				})
			})
		}
		req.Symbols = st.Symbols()
		raw, err = req.Marshal()
		if err != nil {
			return nil, "", "", fmt.Errorf("cannot marshal remote-write 2.0 request: %w", err)
		}
		return snappy.Encode(nil, raw), "application/x-protobuf;proto=" + RemoteWriteV2Message, "2.0.0", nil
	}
	req := prompb.WriteRequest{Timeseries: make([]prompb.TimeSeries, 0, 4*len(batch))}
	for _, it := range batch {
		it.each(func(_ int, name string, v float64) {
			buf = withName(it.labels, name, buf)
			ls := make([]prompb.Label, len(buf))
			for j, l := range buf {
				ls[j] = prompb.Label{Name: l.Name, Value: l.Value}
			}
			req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
				Labels:  ls,
				Samples: []prompb.Sample{{Value: v, Timestamp: it.ts}},
			})
		})
	}
	raw, err = req.Marshal()
	if err != nil {
		return nil, "", "", fmt.Errorf("cannot marshal remote-write 1.0 request: %w", err)
	}
	return snappy.Encode(nil, raw), "application/x-protobuf", "0.1.0", nil
}

var rwHelp = map[string]string{
	ScoreMetric:    "Anomaly score of the input series' sample, 0 (normal) to 1 (anomalous).",
	ExpectedMetric: "Value the model expected for the input series' sample.",
	LowerMetric:    "Lower bound of the normal range for the sample.",
	UpperMetric:    "Upper bound of the normal range for the sample.",
}
