package remotewrite

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	remoteapi "github.com/prometheus/client_golang/exp/api/remote"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
	"github.com/sentinel-mesh/sentinel-mesh/internal/metrictest"
)

func TestHandlerV1Valid(t *testing.T) {
	app := &recordingAppender{}
	h, reg := newTestHandler(t, DefaultConfig(), app)
	body := marshalV1(t,
		v1Series(lbls("__name__", "up", "instance", "a:9100", "job", "node"), prompb.Sample{Value: 1, Timestamp: 1000}, prompb.Sample{Value: 0, Timestamp: 2000}),
		v1Series(lbls("__name__", "temp", "empty", "", "zone", "eu"), prompb.Sample{Value: 21.5, Timestamp: 1000}),
	)
	rec := post(t, h, ctV1, snap(body), "X-Scope-OrgID", "team-a")
	require.Equal(t, http.StatusNoContent, rec.Code, rec.Body.String())
	require.Equal(t, "0.1.0", rec.Header().Get(HeaderVersion))
	// 1.0 responses carry no written headers (as client_golang's handler):
	// 1.0 senders do not read them.
	require.Empty(t, rec.Header().Get(HeaderSamplesWritten))

	want := []appendCall{
		{Tenant: "team-a", Labels: dl("__name__", "up", "instance", "a:9100", "job", "node"), Samples: ds(1000, 1, 2000, 0)},
		// The empty-valued label is dropped: empty means absent in Prometheus.
		{Tenant: "team-a", Labels: dl("__name__", "temp", "zone", "eu"), Samples: ds(1000, 21.5)},
	}
	require.Empty(t, cmp.Diff(want, app.Calls()))
	require.Equal(t, 3.0, metrictest.Value(t, reg, "sentinel_mesh_remote_write_samples_received_total", "version", "1"))
	require.Equal(t, 1.0, metrictest.Value(t, reg, "sentinel_mesh_remote_write_requests_total", "version", "1", "code", "204"))
}

func TestHandlerV2Valid(t *testing.T) {
	app := &recordingAppender{}
	h, reg := newTestHandler(t, DefaultConfig(), app)
	b := newV2Builder()
	b.add([]string{"__name__", "up", "job", "node"}, writev2.Sample{Value: 1, Timestamp: 1000})
	ts := b.add([]string{"__name__", "rps", "job", "api"}, writev2.Sample{Value: 7, Timestamp: 1000}, writev2.Sample{Value: 8, Timestamp: 2000})
	// Exemplars and metadata are tolerated; exemplars are reported as not
	// written because nothing stores them.
	ts.Exemplars = []writev2.Exemplar{{Value: 7, Timestamp: 1000}}
	ts.Metadata = writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_COUNTER, HelpRef: b.st.Symbolize("requests")}
	rec := post(t, h, ctV2, snap(b.marshal(t)))
	require.Equal(t, http.StatusNoContent, rec.Code, rec.Body.String())
	require.Equal(t, "2.0.0", rec.Header().Get(HeaderVersion))
	require.Equal(t, "3", rec.Header().Get(HeaderSamplesWritten))
	require.Equal(t, "0", rec.Header().Get(HeaderHistogramsWritten))
	require.Equal(t, "0", rec.Header().Get(HeaderExemplarsWritten))
	want := []appendCall{
		{Tenant: "default", Labels: dl("__name__", "up", "job", "node"), Samples: ds(1000, 1)},
		{Tenant: "default", Labels: dl("__name__", "rps", "job", "api"), Samples: ds(1000, 7, 2000, 8)},
	}
	require.Empty(t, cmp.Diff(want, app.Calls()))
	require.Equal(t, 1.0, metrictest.Value(t, reg, "sentinel_mesh_remote_write_exemplars_ignored_total"))
}

// TestHandlerRequestErrors covers whole-request failures: each gets a clear
// 4xx (or 503) with a message, nothing is appended and the request counter
// records the code.
func TestHandlerRequestErrors(t *testing.T) {
	validV1 := snap(marshalV1(t, v1Series(lbls("__name__", "up"), prompb.Sample{Value: 1, Timestamp: 1})))
	manySamples := make([]prompb.Sample, 11)
	for i := range manySamples {
		manySamples[i] = prompb.Sample{Value: 1, Timestamp: int64(i)}
	}
	bomb := snap(make([]byte, 2<<20)) // 2 MiB of zeros: ~100 KiB compressed
	fakeBomb := append(binary.AppendUvarint(nil, 1<<31), 0, 0, 0, 0)

	for _, tc := range []struct {
		name     string
		method   string
		ct       string
		body     []byte
		hdr      []string
		chunked  bool
		cfg      func(*Config)
		ready    func() bool
		wantCode int
		wantMsg  string
		wantVer  string // requests_total version label
	}{
		{name: "GET", method: http.MethodGet, ct: ctV1, body: validV1, wantCode: 405, wantMsg: "requires POST", wantVer: "unknown"},
		{name: "content type text/plain", ct: "text/plain", body: validV1, wantCode: 415, wantMsg: "unsupported Content-Type", wantVer: "unknown"},
		{name: "content type json", ct: "application/json", body: validV1, wantCode: 415, wantMsg: "unsupported Content-Type", wantVer: "unknown"},
		{name: "unknown proto", ct: "application/x-protobuf;proto=io.prometheus.write.v3.Request", body: validV1, wantCode: 415, wantMsg: `unknown proto "io.prometheus.write.v3.Request"`, wantVer: "unknown"},
		{name: "malformed parameter", ct: "application/x-protobuf;proto", body: validV1, wantCode: 415, wantMsg: "malformed parameter", wantVer: "unknown"},
		{name: "gzip encoding", ct: ctV1, body: validV1, hdr: []string{"Content-Encoding", "gzip"}, wantCode: 415, wantMsg: `unsupported Content-Encoding "gzip"`, wantVer: "1"},
		{name: "no encoding", ct: ctV2, body: validV1, hdr: []string{"Content-Encoding", ""}, wantCode: 415, wantMsg: "requires snappy", wantVer: "2"},
		{name: "malformed snappy", ct: ctV1, body: []byte("definitely not snappy"), wantCode: 400, wantMsg: "cannot decode snappy body", wantVer: "1"},
		{name: "truncated snappy", ct: ctV1, body: validV1[:len(validV1)-3], wantCode: 400, wantMsg: "cannot decode snappy body", wantVer: "1"},
		{name: "empty body", ct: ctV1, body: nil, wantCode: 400, wantMsg: "cannot decode snappy body", wantVer: "1"},
		{name: "malformed protobuf v1", ct: ctV1, body: snap([]byte{0x0a, 0x10, 0x01}), wantCode: 400, wantMsg: "cannot decode prometheus.WriteRequest", wantVer: "1"},
		{name: "malformed protobuf v2", ct: ctV2, body: snap([]byte{0x22, 0xff}), wantCode: 400, wantMsg: "cannot decode io.prometheus.write.v2.Request", wantVer: "2"},
		{name: "wrong wire type", ct: ctV1, body: snap([]byte{0x08, 0x01}), wantCode: 400, wantMsg: "wrong wire type", wantVer: "1"},
		{name: "v1 body sent as v2", ct: ctV2, body: snap([]byte{0x2a, 0x02, 0x10, 0x01}), wantCode: 400, wantMsg: "wrong wire type", wantVer: "2"},
		{name: "body over limit with length", ct: ctV1, body: bytes.Repeat([]byte{1}, 4096), cfg: func(c *Config) { c.MaxBodyBytes = 1024 }, wantCode: 413, wantMsg: "max_body_bytes", wantVer: "1"},
		{name: "body over limit chunked", ct: ctV1, body: bytes.Repeat([]byte{1}, 4096), chunked: true, cfg: func(c *Config) { c.MaxBodyBytes = 1024 }, wantCode: 413, wantMsg: "max_body_bytes", wantVer: "1"},
		{name: "decompression bomb", ct: ctV1, body: bomb, cfg: func(c *Config) { c.MaxDecodedBytes = 1 << 20; c.MaxBodyBytes = 1 << 20 }, wantCode: 413, wantMsg: "max_decoded_bytes", wantVer: "1"},
		{name: "snappy header claims 2GiB", ct: ctV2, body: fakeBomb, wantCode: 413, wantMsg: "decoded body of 2147483648 bytes exceeds remote_write.max_decoded_bytes", wantVer: "2"},
		{name: "too many samples", ct: ctV1, body: snap(marshalV1(t, v1Series(lbls("__name__", "x"), manySamples...))), cfg: func(c *Config) { c.MaxSamplesPerRequest = 10 }, wantCode: 413, wantMsg: "max_samples_per_request", wantVer: "1"},
		{name: "invalid tenant", ct: ctV1, body: validV1, hdr: []string{"X-Scope-OrgID", "a/b"}, wantCode: 400, wantMsg: "invalid X-Scope-OrgID header", wantVer: "1"},
		{name: "tenant too long", ct: ctV1, body: validV1, hdr: []string{"X-Scope-OrgID", strings.Repeat("a", 151)}, wantCode: 400, wantMsg: "151 bytes long", wantVer: "1"},
		{name: "not ready", ct: ctV1, body: validV1, ready: func() bool { return false }, wantCode: 503, wantMsg: "not ready", wantVer: "1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			app := &recordingAppender{}
			var opts []Option
			if tc.ready != nil {
				opts = append(opts, WithReady(tc.ready))
			}
			h, reg := newTestHandler(t, cfg, app, opts...)
			method := tc.method
			if method == "" {
				method = http.MethodPost
			}
			req := httptest.NewRequest(method, "/api/v1/write", bytes.NewReader(tc.body))
			req.Header.Set("Content-Type", tc.ct)
			req.Header.Set("Content-Encoding", "snappy")
			for i := 0; i+1 < len(tc.hdr); i += 2 {
				if tc.hdr[i+1] == "" {
					req.Header.Del(tc.hdr[i])
				} else {
					req.Header.Set(tc.hdr[i], tc.hdr[i+1])
				}
			}
			if tc.chunked {
				req.ContentLength = -1
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			require.Equal(t, tc.wantCode, rec.Code, rec.Body.String())
			require.Contains(t, rec.Body.String(), tc.wantMsg)
			require.Empty(t, app.Calls())
			require.Equal(t, 1.0, metrictest.Value(t, reg, "sentinel_mesh_remote_write_requests_total", "version", tc.wantVer, "code", strconv.Itoa(tc.wantCode)))
			if tc.wantVer == "2" {
				require.Equal(t, "0", rec.Header().Get(HeaderSamplesWritten))
			}
			if tc.wantCode == 503 {
				require.NotEmpty(t, rec.Header().Get("Retry-After"))
			}
		})
	}
}

// TestHandlerInvalidSeries: per-series problems in v1 and v2. In every case
// the request also carries a valid series, which must still be appended,
// and the response is 400 naming the problem, with the reason counted.
func TestHandlerInvalidSeries(t *testing.T) {
	tenK := []string{"__name__", "wide"}
	for i := range 10_000 {
		tenK = append(tenK, "l"+strconv.Itoa(100000 + i)[1:], "v")
	}
	for _, tc := range []struct {
		name    string
		kv      []string // label pairs in wire order
		rawRefs []uint32 // v2 only: literal refs instead of kv
		only    string   // "v1" or "v2" if the case applies to one version
		reason  Problem
		wantMsg string
	}{
		{name: "duplicate label", kv: []string{"__name__", "x", "a", "1", "a", "2"}, reason: ProblemDuplicateLabelName, wantMsg: `duplicate label name "a"`},
		{name: "unsorted labels", kv: []string{"__name__", "x", "b", "1", "a", "2"}, reason: ProblemUnsortedLabels, wantMsg: `labels not sorted by name at "a"`},
		{name: "invalid UTF-8 value", kv: []string{"__name__", "x", "a", "\xff\xfe"}, reason: ProblemInvalidUTF8LabelValue, wantMsg: `label value "\xff\xfe" is not valid UTF-8`},
		{name: "invalid UTF-8 name", kv: []string{"__name__", "x", "\xc3\x28", "v"}, reason: ProblemInvalidUTF8LabelName, wantMsg: "is not valid UTF-8"},
		{name: "empty label name", kv: []string{"", "v", "__name__", "x"}, reason: ProblemEmptyLabelName, wantMsg: "empty label name"},
		{name: "missing __name__", kv: []string{"job", "x"}, reason: ProblemMissingMetricName, wantMsg: "no __name__ label"},
		{name: "10k labels", kv: tenK, reason: ProblemTooManyLabels, wantMsg: "10001 labels exceed remote_write.max_labels_per_series (100)"},
		{name: "long name", kv: []string{"__name__", "x", strings.Repeat("n", 1025), "v"}, reason: ProblemLabelNameTooLong, wantMsg: "max_label_name_length (1024)"},
		{name: "long value", kv: []string{"__name__", "x", "a", strings.Repeat("v", 4097)}, reason: ProblemLabelValueTooLong, wantMsg: "max_label_value_length (4096)"},
		{name: "UTF-8 names are valid", kv: []string{"__name__", "http.requests", "zöne", "ü"}, reason: ProblemNone},
		{name: "bad symbol ref", rawRefs: []uint32{1, 2, 3, 999}, only: "v2", reason: ProblemInvalidSymbolRef, wantMsg: "labels_refs entry 999 is out of range"},
		{name: "odd labels_refs", rawRefs: []uint32{1, 2, 3}, only: "v2", reason: ProblemOddLabelsRefs, wantMsg: "labels_refs has odd length 3"},
	} {
		for _, ver := range []string{"v1", "v2"} {
			if tc.only != "" && tc.only != ver {
				continue
			}
			t.Run(ver+"/"+tc.name, func(t *testing.T) {
				app := &recordingAppender{}
				h, reg := newTestHandler(t, DefaultConfig(), app)
				var rec *httptest.ResponseRecorder
				if ver == "v1" {
					body := marshalV1(t,
						v1Series(lbls("__name__", "ok", "job", "a"), prompb.Sample{Value: 1, Timestamp: 10}),
						v1Series(lbls(tc.kv...), prompb.Sample{Value: 2, Timestamp: 10}),
					)
					rec = post(t, h, ctV1, snap(body))
				} else {
					b := newV2Builder()
					b.add([]string{"__name__", "ok", "job", "a"}, writev2.Sample{Value: 1, Timestamp: 10})
					if tc.rawRefs != nil {
						b.addRaw(tc.rawRefs, writev2.Sample{Value: 2, Timestamp: 10})
					} else {
						b.add(tc.kv, writev2.Sample{Value: 2, Timestamp: 10})
					}
					rec = post(t, h, ctV2, snap(b.marshal(t)))
				}
				calls := app.Calls()
				if tc.reason == ProblemNone {
					require.Equal(t, http.StatusNoContent, rec.Code, rec.Body.String())
					require.Len(t, calls, 2)
					return
				}
				require.Equal(t, http.StatusBadRequest, rec.Code)
				body := rec.Body.String()
				require.Contains(t, body, "partial write: 1 of 2 samples")
				require.Contains(t, body, "1 of 2 series invalid ("+tc.reason.String()+": 1)")
				require.Contains(t, body, tc.wantMsg)
				require.Less(t, len(body), 4096, "the body must stay readable even for huge series")
				// The valid series of the same request was appended.
				require.Len(t, calls, 1)
				require.Equal(t, "ok", calls[0].Labels.Get("__name__"))
				if ver == "v2" {
					require.Equal(t, "1", rec.Header().Get(HeaderSamplesWritten))
				}
				require.Equal(t, 1.0, metrictest.Value(t, reg, "sentinel_mesh_remote_write_series_invalid_total", "reason", tc.reason.String()))
				require.Equal(t, 1.0, metrictest.Value(t, reg, "sentinel_mesh_remote_write_samples_dropped_total", "reason", "invalid_series"))
				require.Equal(t, 1.0, metrictest.Value(t, reg, "sentinel_mesh_remote_write_requests_total", "code", "400"))
			})
		}
	}
}

func TestHandlerManyProblemsListsFirstFew(t *testing.T) {
	app := &recordingAppender{}
	h, reg := newTestHandler(t, DefaultConfig(), app)
	var ts []prompb.TimeSeries
	for i := range 50 {
		ts = append(ts, v1Series(lbls("__name__", "x", "b", "1", "a", strconv.Itoa(i)), prompb.Sample{Value: 1, Timestamp: 1}))
	}
	ts = append(ts, v1Series(lbls("job", "nameless"), prompb.Sample{Value: 1, Timestamp: 1}))
	rec := post(t, h, ctV1, snap(marshalV1(t, ts...)))
	require.Equal(t, http.StatusBadRequest, rec.Code)
	body := rec.Body.String()
	require.Contains(t, body, "51 of 51 series invalid (missing_metric_name: 1, unsorted_labels: 50)")
	require.Equal(t, DefaultMaxErrorsInResponse, strings.Count(body, "\ninvalid series "))
	require.Equal(t, 50.0, metrictest.Value(t, reg, "sentinel_mesh_remote_write_series_invalid_total", "reason", "unsorted_labels"))
}

func TestHandlerHistograms(t *testing.T) {
	build := func(t *testing.T) []byte {
		b := newV2Builder()
		b.add([]string{"__name__", "up"}, writev2.Sample{Value: 1, Timestamp: 10})
		ts := b.add([]string{"__name__", "latency"})
		ts.Histograms = []writev2.Histogram{
			{Count: &writev2.Histogram_CountInt{CountInt: 3}, Sum: 1.5, Timestamp: 10},
			{Count: &writev2.Histogram_CountInt{CountInt: 4}, Sum: 2, Timestamp: 20},
		}
		return snap(b.marshal(t))
	}
	reject := DefaultConfig()
	reject.AcceptNativeHistograms = false
	t.Run("rejected", func(t *testing.T) {
		app := &recordingAppender{}
		h, reg := newTestHandler(t, reject, app)
		rec := post(t, h, ctV2, build(t))
		require.Equal(t, http.StatusBadRequest, rec.Code)
		require.Contains(t, rec.Body.String(), "2 native histogram samples rejected (remote_write.accept_native_histograms is false)")
		require.Equal(t, "1", rec.Header().Get(HeaderSamplesWritten))
		require.Equal(t, "0", rec.Header().Get(HeaderHistogramsWritten))
		require.Len(t, app.Calls(), 1, "the float series is still appended")
		require.Equal(t, 2.0, metrictest.Value(t, reg, "sentinel_mesh_remote_write_samples_dropped_total", "reason", "histogram"))
		require.Equal(t, 3.0, metrictest.Value(t, reg, "sentinel_mesh_remote_write_samples_received_total", "version", "2"))
	})
	t.Run("scored by default as their count and sum", func(t *testing.T) {
		app := &recordingAppender{}
		h, reg := newTestHandler(t, DefaultConfig(), app)
		rec := post(t, h, ctV2, build(t))
		require.Equal(t, http.StatusNoContent, rec.Code, rec.Body.String())
		require.Equal(t, "1", rec.Header().Get(HeaderSamplesWritten), "the histograms are not float samples")
		require.Equal(t, "2", rec.Header().Get(HeaderHistogramsWritten))
		require.Zero(t, metrictest.Value(t, reg, "sentinel_mesh_remote_write_samples_dropped_total"))
		require.Equal(t, []appendCall{
			{Tenant: "default", Labels: detector.FromStrings("__name__", "up"), Samples: []detector.Sample{{TimestampMs: 10, Value: 1}}},
			{Tenant: "default", Labels: detector.FromStrings("__name__", "latency_count"), Samples: []detector.Sample{{TimestampMs: 10, Value: 3}, {TimestampMs: 20, Value: 4}}},
			{Tenant: "default", Labels: detector.FromStrings("__name__", "latency_sum"), Samples: []detector.Sample{{TimestampMs: 10, Value: 1.5}, {TimestampMs: 20, Value: 2}}},
		}, app.Calls())
	})
	t.Run("v1 histograms rejected", func(t *testing.T) {
		app := &recordingAppender{}
		h, _ := newTestHandler(t, reject, app)
		body := marshalV1(t, prompb.TimeSeries{Labels: lbls("__name__", "h"), Histograms: []prompb.Histogram{{Count: &prompb.Histogram_CountInt{CountInt: 1}, Timestamp: 5}}})
		rec := post(t, h, ctV1, snap(body))
		require.Equal(t, http.StatusBadRequest, rec.Code)
		require.Contains(t, rec.Body.String(), "1 native histogram samples rejected")
	})
}

func TestHandlerNaNAndStale(t *testing.T) {
	app := &recordingAppender{}
	h, _ := newTestHandler(t, DefaultConfig(), app)
	b := newV2Builder()
	b.add([]string{"__name__", "x"},
		writev2.Sample{Value: 1, Timestamp: 1},
		writev2.Sample{Value: math.NaN(), Timestamp: 2},
		writev2.Sample{Value: staleNaN, Timestamp: 3},
		writev2.Sample{Value: math.Inf(1), Timestamp: 4},
	)
	rec := post(t, h, ctV2, snap(b.marshal(t)))
	require.Equal(t, http.StatusNoContent, rec.Code, rec.Body.String())
	// NaN and stale markers are consumed by the detector, so written.
	require.Equal(t, "4", rec.Header().Get(HeaderSamplesWritten))
	calls := app.Calls()
	require.Len(t, calls, 1)
	got := calls[0].Samples
	require.True(t, math.IsNaN(got[1].Value))
	require.Equal(t, uint64(0x7ff0000000000002), math.Float64bits(got[2].Value), "stale marker bits must survive decoding")
	require.True(t, math.IsInf(got[3].Value, 1))
}

func TestHandlerEmptyRequests(t *testing.T) {
	for _, tc := range []struct {
		name, ct string
		body     []byte
	}{
		{"v1 empty message", ctV1, nil},
		{"v2 empty message", ctV2, nil},
		{"v2 symbols only", ctV2, func() []byte { b, _ := (&writev2.Request{Symbols: []string{"", "a"}}).Marshal(); return b }()},
		{"v1 metadata only", ctV1, func() []byte {
			b, _ := (&prompb.WriteRequest{Metadata: []prompb.MetricMetadata{{MetricFamilyName: "x", Type: prompb.MetricMetadata_GAUGE}}}).Marshal()
			return b
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app := &recordingAppender{}
			h, _ := newTestHandler(t, DefaultConfig(), app)
			rec := post(t, h, tc.ct, snap(tc.body))
			require.Equal(t, http.StatusNoContent, rec.Code, rec.Body.String())
			if tc.ct == ctV2 {
				require.Equal(t, "0", rec.Header().Get(HeaderSamplesWritten))
			}
			require.Empty(t, app.Calls())
		})
	}
}

func TestHandlerAppenderRejections(t *testing.T) {
	app := &recordingAppender{outOfOrder: 5}
	h, _ := newTestHandler(t, DefaultConfig(), app)
	b := newV2Builder()
	b.add([]string{"__name__", "x"}, writev2.Sample{Value: 1, Timestamp: 5}, writev2.Sample{Value: 1, Timestamp: 6})
	rec := post(t, h, ctV2, snap(b.marshal(t)))
	// Dropped and counted by the detector, not an error for the sender; the
	// written header tells the truth.
	require.Equal(t, http.StatusNoContent, rec.Code, rec.Body.String())
	require.Equal(t, "1", rec.Header().Get(HeaderSamplesWritten))
}

func TestHandlerMissingContentTypeIsV1(t *testing.T) {
	app := &recordingAppender{}
	h, _ := newTestHandler(t, DefaultConfig(), app)
	rec := post(t, h, "", snap(marshalV1(t, v1Series(lbls("__name__", "up"), prompb.Sample{Value: 1, Timestamp: 1}))))
	require.Equal(t, http.StatusNoContent, rec.Code, rec.Body.String())
	require.Len(t, app.Calls(), 1)
}

// TestClientGolangRemoteAPI sends through client_golang's exp remote-write
// client, which checks the 2.0 written headers itself.
func TestClientGolangRemoteAPI(t *testing.T) {
	app := &recordingAppender{}
	h, _ := newTestHandler(t, DefaultConfig(), app)
	srv := httptest.NewServer(h)
	defer srv.Close()
	client, err := remoteapi.NewAPI(srv.URL, remoteapi.WithAPIPath("/api/v1/write"), remoteapi.WithAPIHTTPClient(srv.Client()),
		remoteapi.WithAPIBackoff(remoteapi.BackoffConfig{Min: time.Millisecond, Max: time.Millisecond, MaxRetries: 1}))
	require.NoError(t, err)
	ctx := context.Background()

	b := newV2Builder()
	b.req.Timeseries = append(b.req.Timeseries, writev2.TimeSeries{
		LabelsRefs: b.symbolizeLabels(labels.FromStrings("__name__", "up", "job", "a")),
		Samples:    []writev2.Sample{{Value: 1, Timestamp: 100}, {Value: 1, Timestamp: 200}},
	})
	b.req.Symbols = b.st.Symbols()
	stats, err := client.Write(ctx, remoteapi.WriteV2MessageType, &b.req)
	require.NoError(t, err)
	require.Equal(t, 2, stats.Samples)

	stats, err = client.Write(ctx, remoteapi.WriteV1MessageType, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		v1Series(lbls("__name__", "up", "job", "b"), prompb.Sample{Value: 1, Timestamp: 100}),
	}})
	require.NoError(t, err)
	require.Len(t, app.Calls(), 2)

	// A partial write surfaces as a non-retried error with our message.
	bad := newV2Builder()
	bad.add([]string{"__name__", "x", "a", "1", "a", "2"}, writev2.Sample{Value: 1, Timestamp: 1})
	bad.req.Symbols = bad.st.Symbols()
	_, err = client.Write(ctx, remoteapi.WriteV2MessageType, &bad.req)
	require.ErrorContains(t, err, "duplicate_label_name")
	srv.Client().CloseIdleConnections()
}

func TestParseContentType(t *testing.T) {
	for ct, want := range map[string]Version{
		"":                       V1,
		"application/x-protobuf": V1,
		"Application/X-Protobuf": V1,
		"application/x-protobuf; proto=prometheus.WriteRequest":                         V1,
		"application/x-protobuf;proto=io.prometheus.write.v2.Request":                   V2,
		`application/x-protobuf; charset=utf-8; proto="io.prometheus.write.v2.Request"`: V2,
		"application/x-protobuf;proto=foo":                                              VersionUnknown,
		"application/x-protobuf;proto":                                                  VersionUnknown,
		"application/json":                                                              VersionUnknown,
		"application/x-protobufx":                                                       VersionUnknown,
	} {
		got, err := ParseContentType(ct)
		require.Equal(t, want, got, ct)
		require.Equal(t, want == VersionUnknown, err != nil, ct)
	}
}

func TestConfig(t *testing.T) {
	require.NoError(t, DefaultConfig().Validate())

	var cfg Config
	require.NoError(t, yaml.Unmarshal([]byte("max_body_bytes: 1048576\naccept_native_histograms: true\n"), &cfg))
	want := DefaultConfig()
	want.MaxBodyBytes = 1 << 20
	want.AcceptNativeHistograms = true
	require.Equal(t, want, cfg)

	bad := Config{MaxDecodedBytes: 1, MaxBodyBytes: 2, DefaultTenant: "a b", MaxErrorsInResponse: -1}
	err := bad.Validate()
	require.Error(t, err)
	for _, key := range []string{
		"remote_write.max_decoded_bytes must be >= remote_write.max_body_bytes",
		"remote_write.max_labels_per_series must be > 0",
		"remote_write.max_label_name_length must be > 0",
		"remote_write.max_label_value_length must be > 0",
		"remote_write.max_samples_per_request must be > 0",
		"remote_write.tenant_header must not be empty",
		"remote_write.default_tenant is invalid",
		"remote_write.max_errors_in_response must be >= 0",
	} {
		require.ErrorContains(t, err, key)
	}
	require.ErrorContains(t, Config{}.Validate(), "remote_write.max_body_bytes must be > 0")

	_, err = NewHandler(Config{}, &recordingAppender{}, nil, nil)
	require.ErrorContains(t, err, "cannot create remote-write handler")
}

// blockingAppender blocks every Append until release is closed.
type blockingAppender struct {
	entered chan struct{}
	release chan struct{}
}

func (a *blockingAppender) Append(_ string, _ detector.Labels, s []detector.Sample) detector.AppendStats {
	a.entered <- struct{}{}
	<-a.release
	return detector.AppendStats{Accepted: len(s)}
}

func TestHandlerMaxConcurrentRequests(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxConcurrentRequests = 1
	app := &blockingAppender{entered: make(chan struct{}, 1), release: make(chan struct{})}
	h, reg := newTestHandler(t, cfg, app)
	body := snap(marshalV1(t, v1Series(lbls("__name__", "up"), prompb.Sample{Value: 1, Timestamp: 1})))

	first := make(chan int)
	go func() { first <- post(t, h, ctV1, body).Code }()
	<-app.entered // the first request holds the only slot

	// A queued request whose sender gives up gets 503 and never reads the body.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req := httptest.NewRequest(http.MethodPost, "/api/v1/write", bytes.NewReader(body)).WithContext(ctx)
	req.Header.Set("Content-Type", ctV1)
	req.Header.Set("Content-Encoding", "snappy")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	require.Contains(t, rec.Body.String(), "remote_write.max_concurrent_requests = 1")

	close(app.release)
	require.Equal(t, http.StatusNoContent, <-first)
	require.Equal(t, 1.0, metrictest.Value(t, reg, "sentinel_mesh_remote_write_requests_total", "code", "503"))
}
