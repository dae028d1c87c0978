package remotewrite

import (
	"bytes"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	ctV1 = "application/x-protobuf;proto=prometheus.WriteRequest"
	ctV2 = "application/x-protobuf;proto=io.prometheus.write.v2.Request"
)

var staleNaN = math.Float64frombits(0x7ff0000000000002)

// appendCall is one recorded Append, deep-copied: the handler's views die
// with the request.
type appendCall struct {
	Tenant  string
	Labels  detector.Labels
	Samples []detector.Sample
}

// recordingAppender is an in-process test double of the detector: it
// records calls and classifies samples like the detector does.
type recordingAppender struct {
	mu    sync.Mutex
	calls []appendCall
	// outOfOrder, when set, makes every sample with this timestamp count as
	// out of order.
	outOfOrder int64
}

func (a *recordingAppender) Append(tenant string, lbls detector.Labels, samples []detector.Sample) detector.AppendStats {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls = append(a.calls, appendCall{Tenant: tenant, Labels: lbls.Clone(), Samples: slices.Clone(samples)})
	var st detector.AppendStats
	for _, s := range samples {
		switch {
		case math.Float64bits(s.Value) == 0x7ff0000000000002:
			st.Stale++
		case a.outOfOrder != 0 && s.TimestampMs == a.outOfOrder:
			st.OutOfOrder++
		case math.IsNaN(s.Value):
			st.NaN++
		default:
			st.Accepted++
		}
	}
	return st
}

func (a *recordingAppender) Calls() []appendCall {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.calls)
}

func newTestHandler(t testing.TB, cfg Config, app detector.Appender, opts ...Option) (*Handler, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	h, err := NewHandler(cfg, app, slog.New(slog.DiscardHandler), reg, opts...)
	require.NoError(t, err)
	return h, reg
}

func lbls(kv ...string) []prompb.Label {
	out := make([]prompb.Label, 0, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		out = append(out, prompb.Label{Name: kv[i], Value: kv[i+1]})
	}
	return out
}

func v1Series(ls []prompb.Label, samples ...prompb.Sample) prompb.TimeSeries {
	return prompb.TimeSeries{Labels: ls, Samples: samples}
}

func marshalV1(t testing.TB, ts ...prompb.TimeSeries) []byte {
	t.Helper()
	b, err := (&prompb.WriteRequest{Timeseries: ts}).Marshal()
	require.NoError(t, err)
	return b
}

// v2Builder builds writev2 requests with the real symbol table.
type v2Builder struct {
	st  writev2.SymbolsTable
	req writev2.Request
}

func newV2Builder() *v2Builder { return &v2Builder{st: writev2.NewSymbolTable()} }

// add appends a series; kv is used in the given order (sorted or not).
func (b *v2Builder) add(kv []string, samples ...writev2.Sample) *writev2.TimeSeries {
	refs := make([]uint32, 0, len(kv))
	for _, s := range kv {
		refs = append(refs, b.st.Symbolize(s))
	}
	b.req.Timeseries = append(b.req.Timeseries, writev2.TimeSeries{LabelsRefs: refs, Samples: samples})
	return &b.req.Timeseries[len(b.req.Timeseries)-1]
}

// addRaw appends a series with literal refs (for bad-ref cases).
func (b *v2Builder) addRaw(refs []uint32, samples ...writev2.Sample) {
	b.req.Timeseries = append(b.req.Timeseries, writev2.TimeSeries{LabelsRefs: refs, Samples: samples})
}

func (b *v2Builder) marshal(t testing.TB) []byte {
	t.Helper()
	b.req.Symbols = b.st.Symbols()
	out, err := b.req.Marshal()
	require.NoError(t, err)
	return out
}

func (b *v2Builder) symbolizeLabels(ls labels.Labels) []uint32 {
	return b.st.SymbolizeLabels(ls, nil)
}

func post(t testing.TB, h http.Handler, contentType string, body []byte, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/api/v1/write", bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "2.0.0")
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func snap(b []byte) []byte { return snappy.Encode(nil, b) }

// dl builds detector labels from name/value pairs.
func dl(kv ...string) detector.Labels {
	out := make(detector.Labels, 0, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		out = append(out, detector.Label{Name: kv[i], Value: kv[i+1]})
	}
	return out
}

// ds builds detector samples from timestamp/value pairs.
func ds(tv ...float64) []detector.Sample {
	out := make([]detector.Sample, 0, len(tv)/2)
	for i := 0; i < len(tv); i += 2 {
		out = append(out, detector.Sample{TimestampMs: int64(tv[i]), Value: tv[i+1]})
	}
	return out
}
