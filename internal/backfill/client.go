package backfill

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/common/config"
	"github.com/prometheus/common/version"
	"github.com/prometheus/prometheus/prompb"
	"golang.org/x/time/rate"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
)

// maxResponseBytes bounds a response body: history of
// max_series_per_request series, with room to spare.
const maxResponseBytes = 1 << 30

// client reads series and their samples from the store. Every request
// waits for the rate limiter and a concurrency slot, so the limits hold
// for startup and new-series reads together.
type client struct {
	cfg     *Config
	base    string
	http    *http.Client
	limiter *rate.Limiter
	slots   chan struct{}
	m       *metrics
}

func newClient(cfg *Config, m *metrics) (*client, error) {
	hc, err := config.NewClientFromConfig(cfg.HTTPClientConfig, "backfill", config.WithUserAgent("sentinel-mesh/"+version.Version))
	if err != nil {
		return nil, fmt.Errorf("cannot create backfill HTTP client: %w", err)
	}
	return &client{
		cfg:     cfg,
		base:    strings.TrimRight(cfg.URL, "/"),
		http:    hc,
		limiter: rate.NewLimiter(rate.Limit(cfg.RequestsPerSecond), 1),
		slots:   make(chan struct{}, cfg.Concurrency),
		m:       m,
	}, nil
}

// errStatus is a response other than 200; retryable for 429 and 5xx.
type errStatus struct {
	code int
	body string
}

func (e *errStatus) Error() string {
	return fmt.Sprintf("status %d: %s", e.code, e.body)
}

// do sends one request built by newReq (called again for each retry) and
// returns the body of a 200 response.
func (c *client) do(ctx context.Context, endpoint, tenant string, newReq func() (*http.Request, error)) ([]byte, error) {
	backoff := time.Second
	for attempt := 0; ; attempt++ {
		body, err := c.once(ctx, endpoint, tenant, newReq)
		if err == nil {
			return body, nil
		}
		var st *errStatus
		retryable := !errors.As(err, &st) || st.code == http.StatusTooManyRequests || st.code >= 500
		if !retryable || attempt >= c.cfg.MaxRetries || ctx.Err() != nil {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

func (c *client) once(ctx context.Context, endpoint, tenant string, newReq func() (*http.Request, error)) ([]byte, error) {
	if err := c.limiter.Wait(ctx); err != nil {
		return nil, err
	}
	select {
	case c.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-c.slots }()
	ctx, cancel := context.WithTimeout(ctx, time.Duration(c.cfg.Timeout))
	defer cancel()
	req, err := newReq()
	if err != nil {
		return nil, err
	}
	req = req.WithContext(ctx)
	if c.cfg.TenantHeader != "" && tenant != "" {
		req.Header.Set(c.cfg.TenantHeader, tenant)
	}
	start := time.Now()
	resp, err := c.http.Do(req)
	code := "error"
	defer func() {
		c.m.requests.WithLabelValues(endpoint, code).Inc()
		c.m.duration.WithLabelValues(endpoint).Observe(time.Since(start).Seconds())
	}()
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	code = strconv.Itoa(resp.StatusCode)
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read response: %w", err)
	}
	if len(body) > maxResponseBytes {
		return nil, fmt.Errorf("response larger than %d bytes", maxResponseBytes)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &errStatus{code: resp.StatusCode, body: truncate(string(body), 256)}
	}
	return body, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return strings.TrimSpace(s)
}

func formPost(u string, form url.Values) func() (*http.Request, error) {
	return func() (*http.Request, error) {
		req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return req, nil
	}
}

func promTime(ms int64) string {
	return strconv.FormatFloat(float64(ms)/1000, 'f', 3, 64)
}

// apiResponse is the envelope of the Prometheus HTTP API.
type apiResponse struct {
	Status    string          `json:"status"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Data      json.RawMessage `json:"data"`
}

func decodeAPI(body []byte, data any) error {
	var r apiResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return fmt.Errorf("cannot decode API response: %w", err)
	}
	if r.Status != "success" {
		return fmt.Errorf("API error %s: %s", r.ErrorType, r.Error)
	}
	if err := json.Unmarshal(r.Data, data); err != nil {
		return fmt.Errorf("cannot decode API data: %w", err)
	}
	return nil
}

// series lists the series of a selector with samples in [startMs, endMs]
// (/api/v1/series).
func (c *client) series(ctx context.Context, tenant, selector string, startMs, endMs int64) ([]detector.Labels, error) {
	form := url.Values{"match[]": {selector}, "start": {promTime(startMs)}, "end": {promTime(endMs)}}
	body, err := c.do(ctx, "series", tenant, formPost(c.base+"/api/v1/series", form))
	if err != nil {
		return nil, fmt.Errorf("cannot list series of %s: %w", selector, err)
	}
	out, err := decodeSeries(body)
	if err != nil {
		return nil, fmt.Errorf("cannot list series of %s: %w", selector, err)
	}
	return out, nil
}

// decodeSeries decodes a /api/v1/series response body.
func decodeSeries(body []byte) ([]detector.Labels, error) {
	var data []map[string]string
	if err := decodeAPI(body, &data); err != nil {
		return nil, err
	}
	out := make([]detector.Labels, 0, len(data))
	for _, m := range data {
		out = append(out, fromMap(m))
	}
	return out, nil
}

func fromMap(m map[string]string) detector.Labels {
	ls := make(detector.Labels, 0, len(m))
	for k, v := range m {
		ls = append(ls, detector.Label{Name: k, Value: v})
	}
	sort.Slice(ls, func(i, j int) bool { return ls[i].Name < ls[j].Name })
	return ls
}

// read returns the samples of each series in [startMs, endMs], in the
// order of series; a series the store does not hold gets none. Only a
// series with exactly these labels counts: an equality matcher per label
// also matches series with more labels.
func (c *client) read(ctx context.Context, tenant string, series []detector.Labels, startMs, endMs int64) ([][]detector.Sample, error) {
	if c.cfg.Protocol == ProtocolRemoteRead {
		return c.remoteRead(ctx, tenant, series, startMs, endMs)
	}
	out := make([][]detector.Sample, len(series))
	for i, ls := range series {
		smps, err := c.query(ctx, tenant, ls, startMs, endMs)
		if err != nil {
			return nil, err
		}
		out[i] = smps
	}
	return out, nil
}

// remoteRead reads with one remote-read request of one query per series.
func (c *client) remoteRead(ctx context.Context, tenant string, series []detector.Labels, startMs, endMs int64) ([][]detector.Sample, error) {
	rr := &prompb.ReadRequest{AcceptedResponseTypes: []prompb.ReadRequest_ResponseType{prompb.ReadRequest_SAMPLES}}
	for _, ls := range series {
		q := &prompb.Query{StartTimestampMs: startMs, EndTimestampMs: endMs}
		for _, l := range ls {
			q.Matchers = append(q.Matchers, &prompb.LabelMatcher{Type: prompb.LabelMatcher_EQ, Name: l.Name, Value: l.Value})
		}
		rr.Queries = append(rr.Queries, q)
	}
	raw, err := rr.Marshal()
	if err != nil {
		return nil, fmt.Errorf("cannot encode remote-read request: %w", err)
	}
	compressed := snappy.Encode(nil, raw)
	body, err := c.do(ctx, "read", tenant, func() (*http.Request, error) {
		req, err := http.NewRequest(http.MethodPost, c.base+"/api/v1/read", bytes.NewReader(compressed))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/x-protobuf")
		req.Header.Set("Content-Encoding", "snappy")
		req.Header.Set("X-Prometheus-Remote-Read-Version", "0.1.0")
		return req, nil
	})
	if err != nil {
		return nil, fmt.Errorf("cannot remote-read %d series: %w", len(series), err)
	}
	out, err := decodeReadResponse(body, series)
	if err != nil {
		return nil, fmt.Errorf("cannot remote-read %d series: %w", len(series), err)
	}
	return out, nil
}

// decodeReadResponse decodes a snappy-compressed remote-read response to
// one query per series: the samples of the series with exactly its labels.
func decodeReadResponse(body []byte, series []detector.Labels) ([][]detector.Sample, error) {
	if n, err := snappy.DecodedLen(body); err != nil || n > maxResponseBytes {
		return nil, fmt.Errorf("bad snappy body (decoded length %d): %v", n, err)
	}
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		return nil, fmt.Errorf("cannot decompress response: %w", err)
	}
	var resp prompb.ReadResponse
	if err := resp.Unmarshal(raw); err != nil {
		return nil, fmt.Errorf("cannot decode response: %w", err)
	}
	if len(resp.Results) != len(series) {
		return nil, fmt.Errorf("%d results for %d queries", len(resp.Results), len(series))
	}
	out := make([][]detector.Sample, len(series))
	for i, res := range resp.Results {
		for _, ts := range res.Timeseries {
			if !equalLabels(series[i], ts.Labels) {
				continue
			}
			smps := make([]detector.Sample, len(ts.Samples))
			for j, s := range ts.Samples {
				smps[j] = detector.Sample{TimestampMs: s.Timestamp, Value: s.Value}
			}
			out[i] = smps
		}
	}
	return out, nil
}

func equalLabels(a detector.Labels, b []prompb.Label) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || a[i].Value != b[i].Value {
			return false
		}
	}
	return true
}

// query reads one series' raw samples with an instant query of a range
// selector at endMs (a range query would resample them at its step).
func (c *client) query(ctx context.Context, tenant string, ls detector.Labels, startMs, endMs int64) ([]detector.Sample, error) {
	q := selector(ls) + "[" + strconv.FormatInt(max(endMs-startMs, 1), 10) + "ms]"
	form := url.Values{"query": {q}, "time": {promTime(endMs)}}
	body, err := c.do(ctx, "query", tenant, formPost(c.base+"/api/v1/query", form))
	if err != nil {
		return nil, fmt.Errorf("cannot query %s: %w", q, err)
	}
	out, err := decodeQuery(body, ls)
	if err != nil {
		return nil, fmt.Errorf("cannot query %s: %w", q, err)
	}
	return out, nil
}

// decodeQuery decodes the matrix response of an instant query of a range
// selector: the raw samples of the series with exactly the labels ls, none
// if the store does not hold it.
func decodeQuery(body []byte, ls detector.Labels) ([]detector.Sample, error) {
	var data struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Values [][2]any          `json:"values"`
		} `json:"result"`
	}
	if err := decodeAPI(body, &data); err != nil {
		return nil, err
	}
	if data.ResultType != "matrix" {
		return nil, fmt.Errorf("result type %q, want matrix", data.ResultType)
	}
	for _, r := range data.Result {
		if !labelsEqual(ls, fromMap(r.Metric)) {
			continue
		}
		out := make([]detector.Sample, 0, len(r.Values))
		for _, v := range r.Values {
			smp, err := parsePoint(v)
			if err != nil {
				return nil, err
			}
			out = append(out, smp)
		}
		return out, nil
	}
	return nil, nil
}

func parsePoint(v [2]any) (detector.Sample, error) {
	ts, ok := v[0].(float64)
	if !ok {
		return detector.Sample{}, fmt.Errorf("bad timestamp %v", v[0])
	}
	s, ok := v[1].(string)
	if !ok {
		return detector.Sample{}, fmt.Errorf("bad value %v", v[1])
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return detector.Sample{}, fmt.Errorf("bad value %q: %w", s, err)
	}
	return detector.Sample{TimestampMs: int64(math.Round(ts * 1000)), Value: f}, nil
}

func labelsEqual(a, b detector.Labels) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// selector renders a label set as a PromQL selector of equality
// matchers. Only names outside the legacy character set are quoted
// (Prometheus 3 syntax), so stores without UTF-8 names parse the rest.
func selector(ls detector.Labels) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, l := range ls {
		if i > 0 {
			b.WriteByte(',')
		}
		if legacyName(l.Name) {
			b.WriteString(l.Name)
		} else {
			b.WriteString(strconv.Quote(l.Name))
		}
		b.WriteByte('=')
		b.WriteString(strconv.Quote(l.Value))
	}
	b.WriteByte('}')
	return b.String()
}

// legacyName reports whether a label name needs no quoting in PromQL.
func legacyName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}
