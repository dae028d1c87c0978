package remotewrite

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
	"github.com/sentinel-mesh/sentinel-mesh/limits"
)

// Protocol header names and values (Remote-Write 1.0 and 2.0 specs).
const (
	HeaderVersion           = "X-Prometheus-Remote-Write-Version"
	HeaderSamplesWritten    = "X-Prometheus-Remote-Write-Samples-Written"
	HeaderHistogramsWritten = "X-Prometheus-Remote-Write-Histograms-Written"
	HeaderExemplarsWritten  = "X-Prometheus-Remote-Write-Exemplars-Written"

	ContentTypeProtobuf = "application/x-protobuf"
	ProtoV1             = "prometheus.WriteRequest"
	ProtoV2             = "io.prometheus.write.v2.Request"

	versionHeaderV1 = "0.1.0"
	versionHeaderV2 = "2.0.0"
)

// Version is a Remote-Write protocol version.
type Version uint8

const (
	VersionUnknown Version = iota
	V1
	V2
)

func (v Version) String() string {
	switch v {
	case V1:
		return "1"
	case V2:
		return "2"
	default:
		return "unknown"
	}
}

// Option configures a Handler beyond Config: things that are code, not YAML.
type Option func(*Handler)

// WithReady installs a readiness gate. While ready returns false the handler
// answers 503 (with Retry-After) before reading the body, so senders keep
// the data and retry, e.g. until the detector's model is loaded.
func WithReady(ready func() bool) Option {
	return func(h *Handler) { h.ready = ready }
}

// Handler is the remote-write HTTP endpoint. It is safe for concurrent use.
type Handler struct {
	cfg    Config
	lim    Limits
	app    detector.Appender
	logger *slog.Logger
	m      *metrics
	ready  func() bool

	// pool holds *requestBuffers so steady-state requests reuse the
	// compressed and decoded buffers and the decoded WriteRequest.
	pool sync.Pool
	// slots is a semaphore of cfg.MaxConcurrentRequests; nil if unbounded.
	slots chan struct{}
	// rate enforces limits.max_samples_per_second; nil without limits.
	rate *limits.RateLimiter
	now  func() time.Time
}

// requestBuffers is everything one request needs, pooled as a unit because
// wr's strings alias decoded: they must be reused (and dropped) together.
type requestBuffers struct {
	compressed []byte
	decoded    []byte
	wr         WriteRequest
}

// Buffers above these capacities are not returned to the pool: one rare huge
// request should not pin its memory for the life of the process.
const (
	maxPooledCompressed = 8 << 20
	maxPooledDecoded    = 32 << 20
)

// NewHandler validates cfg and returns a Handler that appends to app and
// registers its metrics on reg (reg may be nil).
func NewHandler(cfg Config, app detector.Appender, logger *slog.Logger, reg prometheus.Registerer, opts ...Option) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("cannot create remote-write handler: %w", err)
	}
	if app == nil {
		return nil, errors.New("cannot create remote-write handler: nil Appender")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	h := &Handler{
		cfg:    cfg,
		lim:    cfg.limits(),
		app:    app,
		logger: logger,
		m:      m,
		now:    time.Now,
	}
	if cfg.TenantLimits != nil && cfg.TenantLimits.Enabled() {
		h.rate = limits.NewRateLimiter(*cfg.TenantLimits)
	}
	h.pool.New = func() any { return new(requestBuffers) }
	if cfg.MaxConcurrentRequests > 0 {
		h.slots = make(chan struct{}, cfg.MaxConcurrentRequests)
	}
	for _, o := range opts {
		o(h)
	}
	return h, nil
}

// result is what one request produced, for the response, metrics and logs.
type result struct {
	version Version
	code    int
	tenant  string
	msg     string // response body for non-2xx

	series, invalidSeries  int
	samples, histograms    int // received
	written                int // float samples the Appender took
	histogramsWritten      int // accepted-and-ignored histograms
	exemplars              int
	invalidSamples         int // float + histogram samples of invalid series
	histogramsRejected     int
	outOfOrder, seriesCap  int
	tenantSeriesCap        int // samples of new series over the tenant's limits.max_series
	decodedBytes, bodySize int
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	bufs := h.pool.Get().(*requestBuffers)
	res := h.serve(w, r, bufs)
	h.release(bufs)

	if res.version != VersionUnknown {
		w.Header().Set(HeaderVersion, versionHeaderValue(res.version))
	}
	if res.version == V2 {
		// Required by the 2.0 spec on every response once the content type
		// was negotiated, errors included: they say what was actually kept.
		w.Header().Set(HeaderSamplesWritten, strconv.Itoa(res.written))
		w.Header().Set(HeaderHistogramsWritten, strconv.Itoa(res.histogramsWritten))
		w.Header().Set(HeaderExemplarsWritten, "0")
	}
	if res.code == http.StatusNoContent {
		w.WriteHeader(res.code)
	} else {
		http.Error(w, res.msg, res.code)
	}

	h.observe(r.Context(), &res, time.Since(start))
}

func versionHeaderValue(v Version) string {
	if v == V2 {
		return versionHeaderV2
	}
	return versionHeaderV1
}

func (h *Handler) release(bufs *requestBuffers) {
	bufs.wr.Reset()
	if cap(bufs.compressed) > maxPooledCompressed {
		bufs.compressed = nil
	}
	if cap(bufs.decoded) > maxPooledDecoded {
		bufs.decoded = nil
		bufs.wr = WriteRequest{}
	}
	h.pool.Put(bufs)
}

func fail(res result, code int, format string, args ...any) result {
	res.code = code
	res.msg = fmt.Sprintf(format, args...)
	return res
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, bufs *requestBuffers) result {
	var res result
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return fail(res, http.StatusMethodNotAllowed, "method %s not allowed: remote write requires POST", r.Method)
	}
	v, err := ParseContentType(r.Header.Get("Content-Type"))
	if err != nil {
		return fail(res, http.StatusUnsupportedMediaType, "%v", err)
	}
	res.version = v
	if enc := strings.TrimSpace(r.Header.Get("Content-Encoding")); !strings.EqualFold(enc, "snappy") {
		return fail(res, http.StatusUnsupportedMediaType, "unsupported Content-Encoding %q: remote write requires snappy", enc)
	}
	if h.ready != nil && !h.ready() {
		w.Header().Set("Retry-After", "5")
		return fail(res, http.StatusServiceUnavailable, "not ready: the detector is still starting; retry later")
	}
	res.tenant = h.cfg.DefaultTenant
	if t := r.Header.Get(h.cfg.TenantHeader); t != "" {
		if err := validateTenant(t); err != nil {
			return fail(res, http.StatusBadRequest, "invalid %s header: %v", h.cfg.TenantHeader, err)
		}
		res.tenant = t
	}

	if h.slots != nil {
		select {
		case h.slots <- struct{}{}:
			defer func() { <-h.slots }()
		case <-r.Context().Done():
			// The sender gave up (or disconnected) while queued; it will
			// retry a 5xx, and most likely never reads this one.
			return fail(res, http.StatusServiceUnavailable, "too many concurrent requests (remote_write.max_concurrent_requests = %d); retry later", h.cfg.MaxConcurrentRequests)
		}
	}

	// Body: refuse early on a declared length over the limit, and enforce the
	// limit while reading for chunked or lying clients.
	if r.ContentLength > h.cfg.MaxBodyBytes {
		return fail(res, http.StatusRequestEntityTooLarge, "request body of %d bytes exceeds remote_write.max_body_bytes (%d)", r.ContentLength, h.cfg.MaxBodyBytes)
	}
	body := http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes)
	bufs.compressed, err = readAll(body, bufs.compressed[:0], r.ContentLength)
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return fail(res, http.StatusRequestEntityTooLarge, "request body exceeds remote_write.max_body_bytes (%d)", h.cfg.MaxBodyBytes)
		}
		return fail(res, http.StatusBadRequest, "cannot read request body: %v", err)
	}
	res.bodySize = len(bufs.compressed)

	// Decompression-bomb guard: the snappy block header announces the
	// decoded length; check it before allocating or decoding anything.
	n, err := snappy.DecodedLen(bufs.compressed)
	if err != nil {
		return fail(res, http.StatusBadRequest, "cannot decode snappy body: %v", err)
	}
	if int64(n) > h.cfg.MaxDecodedBytes {
		return fail(res, http.StatusRequestEntityTooLarge, "decoded body of %d bytes exceeds remote_write.max_decoded_bytes (%d)", n, h.cfg.MaxDecodedBytes)
	}
	if cap(bufs.decoded) < n {
		bufs.decoded = make([]byte, n)
	}
	decoded, err := snappy.Decode(bufs.decoded[:cap(bufs.decoded)], bufs.compressed)
	if err != nil {
		return fail(res, http.StatusBadRequest, "cannot decode snappy body: %v", err)
	}
	res.decodedBytes = len(decoded)

	wr := &bufs.wr
	if v == V2 {
		err = wr.DecodeV2(decoded, h.lim)
	} else {
		err = wr.DecodeV1(decoded, h.lim)
	}
	if err != nil {
		if errors.Is(err, ErrTooManySamples) {
			// Decoding stopped at the limit, so this is a lower bound.
			res.samples, res.histograms = wr.Samples, wr.Histograms
			h.m.dropped[idxTooManySamples].Add(float64(wr.Samples + wr.Histograms))
			return fail(res, http.StatusRequestEntityTooLarge, "%v", err)
		}
		return fail(res, http.StatusBadRequest, "cannot decode %s: %v", protoName(v), err)
	}
	res.samples, res.histograms = wr.Samples, wr.Histograms
	if h.rate != nil {
		// Checked before anything is appended, so a retry of this request
		// writes it whole (the 2.0 spec's idempotency for retried writes).
		n := res.samples + res.histograms
		if d := h.rate.Allow(res.tenant, n, h.now()); !d.OK {
			h.m.rateLimited.WithLabelValues(res.tenant).Add(float64(n))
			w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(d.RetryAfter.Seconds())))))
			return fail(res, http.StatusTooManyRequests,
				"tenant %q exceeds its ingestion rate limit of %g samples/s with a burst of %d (limits.max_samples_per_second, limits.burst_samples): none of the %d samples of this request written; retry later",
				res.tenant, d.Rate, d.Burst, n)
		}
	}
	return h.appendRequest(r.Context(), res, wr)
}

// appendSeries hands series to app: all at once to a ManyAppender, else one
// by one, with their types where app takes them.
func appendSeries(app detector.Appender, tenant string, series []detector.SeriesSamples) (st detector.AppendStats) {
	if len(series) == 0 {
		return st
	}
	if many, ok := app.(detector.ManyAppender); ok {
		return many.AppendMany(tenant, series)
	}
	typed, _ := app.(detector.TypedAppender)
	for _, s := range series {
		if typed != nil {
			st.Add(typed.AppendTyped(tenant, s.Labels, s.Samples, s.Type))
		} else {
			st.Add(app.Append(tenant, s.Labels, s.Samples))
		}
	}
	return st
}

// appendAll hands every valid series to the Appender and builds the
// response: 204 when everything was written, otherwise 400 with a summary
// (the valid series are kept: a partial write per the 2.0 spec, which
// senders must not retry).
func (h *Handler) appendAll(app detector.Appender, res result, wr *WriteRequest) result {
	var (
		problems [numProblems]int
		first    []int // indexes of the first invalid series, for the body
		derived  int   // series derived from native histograms
	)
	res.exemplars = wr.Exemplars
	for i := range wr.Series {
		s := &wr.Series[i]
		if s.FromHistogram {
			derived++
		}
		if s.Problem != ProblemNone {
			res.invalidSeries++
			res.invalidSamples += len(s.Samples) + s.Histograms
			problems[s.Problem]++
			if len(first) < h.cfg.MaxErrorsInResponse {
				first = append(first, i)
			}
			continue
		}
		switch {
		case len(s.Samples) == 0:
		case s.FromHistogram:
			// After the float series, and not in the written count: the
			// histograms are reported as histograms.
			wr.derived = append(wr.derived, detector.SeriesSamples{Labels: s.Labels, Samples: s.Samples, Type: s.Type})
		default:
			wr.many = append(wr.many, detector.SeriesSamples{Labels: s.Labels, Samples: s.Samples, Type: s.Type})
		}
		if s.Histograms > 0 {
			if h.cfg.AcceptNativeHistograms {
				res.histogramsWritten += s.Histograms
			} else {
				res.histogramsRejected += s.Histograms
			}
		}
	}
	st := appendSeries(app, res.tenant, wr.many)
	// What the detector refuses of the derived series it counts itself.
	appendSeries(app, res.tenant, wr.derived)
	res.series = len(wr.Series) - derived
	// NaN, stale markers and unselected series were consumed as the detector
	// defines them, so the sender must not count them as failed.
	res.written = st.Accepted + st.NaN + st.Stale + st.Unselected
	res.outOfOrder, res.seriesCap, res.tenantSeriesCap = st.OutOfOrder, st.SeriesCap, st.TenantSeriesCap

	for p := Problem(1); p < numProblems; p++ {
		if problems[p] > 0 {
			h.m.invalid[p].Add(float64(problems[p]))
		}
	}
	if res.invalidSamples > 0 {
		h.m.dropped[idxInvalidSeries].Add(float64(res.invalidSamples))
	}
	if res.histogramsRejected > 0 {
		h.m.dropped[idxHistogram].Add(float64(res.histogramsRejected))
	}
	if res.exemplars > 0 {
		h.m.exemplars.Add(float64(res.exemplars))
	}

	// Out-of-order samples and samples of series over the cap are dropped
	// and counted by the detector; they are not the sender's error and a 400
	// would only make it log failures for data it cannot fix. The 2.0
	// written headers still leave them out. A tenant over its own series
	// limit is the sender's doing: 400 tells it (as Mimir's
	// err-mimir-max-series-per-user does), and not 429, whose retries could
	// only succeed once series expire and would hold up the tenant's
	// other series meanwhile.
	if res.invalidSeries == 0 && res.histogramsRejected == 0 && res.tenantSeriesCap == 0 {
		res.code = http.StatusNoContent
		return res
	}
	res.code = http.StatusBadRequest
	res.msg = h.problemMessage(&res, wr, problems[:], first)
	return res
}

// problemMessage renders the 400 body: counts of everything that was not
// written, then the first few invalid series.
func (h *Handler) problemMessage(res *result, wr *WriteRequest, problems []int, first []int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "partial write: %d of %d samples and %d of %d histograms written",
		res.written, res.samples, res.histogramsWritten, res.histograms)
	if res.invalidSeries > 0 {
		fmt.Fprintf(&b, "; %d of %d series invalid (", res.invalidSeries, res.series)
		sep := ""
		for p, n := range problems {
			if n > 0 {
				fmt.Fprintf(&b, "%s%s: %d", sep, Problem(p), n)
				sep = ", "
			}
		}
		b.WriteString(")")
	}
	if res.histogramsRejected > 0 {
		fmt.Fprintf(&b, "; %d native histogram samples rejected (remote_write.accept_native_histograms is false)", res.histogramsRejected)
	}
	if res.outOfOrder > 0 {
		fmt.Fprintf(&b, "; %d samples out of order or duplicate", res.outOfOrder)
	}
	if res.seriesCap > 0 {
		fmt.Fprintf(&b, "; %d samples of new series over detector.max_series", res.seriesCap)
	}
	if res.tenantSeriesCap > 0 {
		limit := 0
		if h.cfg.TenantLimits != nil {
			limit = h.cfg.TenantLimits.SeriesLimit(res.tenant)
		}
		fmt.Fprintf(&b, "; %d samples of new series refused: tenant %q holds its limit of %d series (limits.max_series)", res.tenantSeriesCap, res.tenant, limit)
	}
	for _, i := range first {
		b.WriteString("\n")
		b.WriteString(describeProblem(&wr.Series[i], h.lim))
	}
	return b.String()
}

// describeProblem explains one invalid series. Every label text is quoted:
// it may be invalid UTF-8 or contain newlines.
func describeProblem(s *Series, lim Limits) string {
	var what string
	switch s.Problem {
	case ProblemMissingMetricName:
		what = "no __name__ label"
	case ProblemEmptyLabelName:
		what = "empty label name"
	case ProblemInvalidUTF8LabelName:
		what = fmt.Sprintf("label name %q is not valid UTF-8", s.Detail)
	case ProblemInvalidUTF8LabelValue:
		what = fmt.Sprintf("label value %q is not valid UTF-8", truncate(s.Detail, 64))
	case ProblemDuplicateLabelName:
		what = fmt.Sprintf("duplicate label name %q", s.Detail)
	case ProblemUnsortedLabels:
		what = fmt.Sprintf("labels not sorted by name at %q", s.Detail)
	case ProblemTooManyLabels:
		what = fmt.Sprintf("%d labels exceed remote_write.max_labels_per_series (%d)", s.DetailNum, lim.MaxLabelsPerSeries)
	case ProblemLabelNameTooLong:
		what = fmt.Sprintf("label name %q exceeds remote_write.max_label_name_length (%d)", truncate(s.Detail, 64), lim.MaxLabelNameLength)
	case ProblemLabelValueTooLong:
		what = fmt.Sprintf("value of label %q exceeds remote_write.max_label_value_length (%d)", truncate(s.Detail, 64), lim.MaxLabelValueLength)
	case ProblemInvalidSymbolRef:
		what = fmt.Sprintf("labels_refs entry %d is out of range of the symbols table", s.DetailNum)
	case ProblemOddLabelsRefs:
		what = fmt.Sprintf("labels_refs has odd length %d", s.DetailNum)
	case ProblemEmptySeries:
		what = "no samples, histograms or exemplars"
	default:
		what = s.Problem.String()
	}
	return fmt.Sprintf("invalid series %s: %s (%s)", formatLabels(s.Labels, 256), what, s.Problem)
}

// formatLabels renders a label set for error messages, quoting names and
// values and truncating after about max bytes.
func formatLabels(ls detector.Labels, max int) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, l := range ls {
		if b.Len() > max {
			b.WriteString(", …")
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Quote(truncate(l.Name, 64)))
		b.WriteByte('=')
		b.WriteString(strconv.Quote(truncate(l.Value, 128)))
	}
	b.WriteByte('}')
	return b.String()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func protoName(v Version) string {
	if v == V2 {
		return ProtoV2
	}
	return ProtoV1
}

// observe records metrics and logs for one request: debug per request, warn
// per request with problems, never per sample.
func (h *Handler) observe(ctx context.Context, res *result, took time.Duration) {
	ver := res.version.String()
	h.m.requests.WithLabelValues(ver, strconv.Itoa(res.code)).Inc()
	if res.version != VersionUnknown {
		h.m.duration.WithLabelValues(ver).Observe(took.Seconds())
		if res.samples+res.histograms > 0 {
			h.m.samplesReceived.WithLabelValues(ver).Add(float64(res.samples + res.histograms))
		}
	}
	if res.bodySize > 0 {
		h.m.size.WithLabelValues("compressed").Observe(float64(res.bodySize))
	}
	if res.decodedBytes > 0 {
		h.m.size.WithLabelValues("decoded").Observe(float64(res.decodedBytes))
	}
	switch {
	case res.code >= 500:
		if h.logger.Enabled(ctx, slog.LevelWarn) {
			h.logger.Warn("remote write request not accepted", "version", ver, "code", res.code, "err", res.msg)
		}
	case res.code == http.StatusTooManyRequests:
		// Expected while a tenant is over its rate and its sender retries:
		// counted per tenant, so not a warning per request.
		if h.logger.Enabled(ctx, slog.LevelDebug) {
			h.logger.Debug("remote write request rate limited", "version", ver, "tenant", res.tenant, "samples", res.samples+res.histograms)
		}
	case res.code >= 400:
		if h.logger.Enabled(ctx, slog.LevelWarn) {
			msg := res.msg
			if i := strings.IndexByte(msg, '\n'); i >= 0 {
				// The per-series lines stay in the response body; the log
				// line keeps the summary and the first series.
				if j := strings.IndexByte(msg[i+1:], '\n'); j >= 0 {
					msg = msg[:i+1+j]
				}
			}
			h.logger.Warn("remote write request rejected", "version", ver, "code", res.code, "tenant", res.tenant,
				"series", res.series, "invalid_series", res.invalidSeries, "samples", res.samples, "written", res.written, "err", msg)
		}
	default:
		if h.logger.Enabled(ctx, slog.LevelDebug) {
			h.logger.Debug("remote write request", "version", ver, "tenant", res.tenant, "series", res.series,
				"samples", res.samples, "written", res.written, "histograms", res.histograms,
				"body_bytes", res.bodySize, "decoded_bytes", res.decodedBytes, "duration", took)
		}
	}
}

// maxPrealloc caps how much a declared Content-Length may pre-allocate: a
// client announcing 32 MiB and sending nothing must not cost 32 MiB.
const maxPrealloc = 4 << 20

// readAll reads r into buf[:0], pre-growing to the declared length (up to
// maxPrealloc) so a well-behaved client costs one read loop.
func readAll(r io.Reader, buf []byte, declared int64) ([]byte, error) {
	if declared = min(declared, maxPrealloc); declared > 0 && int64(cap(buf)) < declared {
		buf = make([]byte, 0, declared)
	}
	if cap(buf) == 0 {
		buf = make([]byte, 0, 64<<10)
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)] // let append pick the growth
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// ParseContentType maps a Content-Type header to a protocol version:
// "application/x-protobuf" without a proto parameter or with
// proto=prometheus.WriteRequest is 1.0, proto=io.prometheus.write.v2.Request
// is 2.0. An absent header is treated as 1.0, as Prometheus' own receiver
// does, for pre-spec senders. Anything else is an error (415).
func ParseContentType(ct string) (Version, error) {
	if strings.TrimSpace(ct) == "" {
		return V1, nil
	}
	media, params, _ := strings.Cut(ct, ";")
	if !strings.EqualFold(strings.TrimSpace(media), ContentTypeProtobuf) {
		return VersionUnknown, fmt.Errorf("unsupported Content-Type %q: expected %s;proto=%s or %s;proto=%s",
			ct, ContentTypeProtobuf, ProtoV1, ContentTypeProtobuf, ProtoV2)
	}
	v := V1
	for params != "" {
		var p string
		p, params, _ = strings.Cut(params, ";")
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		key, val, ok := strings.Cut(p, "=")
		if !ok {
			return VersionUnknown, fmt.Errorf("unsupported Content-Type %q: malformed parameter %q", ct, p)
		}
		if !strings.EqualFold(strings.TrimSpace(key), "proto") {
			continue // e.g. charset: irrelevant for protobuf
		}
		val = strings.Trim(strings.TrimSpace(val), `"`)
		switch val {
		case ProtoV1:
			v = V1
		case ProtoV2:
			v = V2
		default:
			return VersionUnknown, fmt.Errorf("unsupported Content-Type %q: unknown proto %q, supported: %s, %s", ct, val, ProtoV1, ProtoV2)
		}
	}
	return v, nil
}
