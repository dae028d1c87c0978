package remotewrite

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	cgwritev2 "github.com/prometheus/client_golang/exp/api/remote/genproto/v2"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
)

// genSeries returns n realistic series: ~8 labels, 1 sample each.
func genSeries(n int, ts int64) []labels.Labels {
	out := make([]labels.Labels, n)
	for i := range out {
		out[i] = labels.FromStrings(
			"__name__", fmt.Sprintf("node_metric_%d_total", i%40),
			"cluster", "eu-west-1-prod",
			"container", "node-exporter",
			"env", "production",
			"instance", fmt.Sprintf("10.0.%d.%d:9100", (i/256)%256, i%256),
			"job", "node",
			"namespace", "monitoring",
			"pod", fmt.Sprintf("node-exporter-%05x", i*7919%0xfffff),
		)
	}
	return out
}

func genV1(n int, ts int64) *prompb.WriteRequest {
	req := &prompb.WriteRequest{}
	for i, ls := range genSeries(n, ts) {
		var pl []prompb.Label
		ls.Range(func(l labels.Label) { pl = append(pl, prompb.Label{Name: l.Name, Value: l.Value}) })
		req.Timeseries = append(req.Timeseries, prompb.TimeSeries{Labels: pl, Samples: []prompb.Sample{{Value: float64(i), Timestamp: ts}}})
	}
	return req
}

func genV2(n int, ts int64) *writev2.Request {
	st := writev2.NewSymbolTable()
	req := &writev2.Request{}
	for i, ls := range genSeries(n, ts) {
		req.Timeseries = append(req.Timeseries, writev2.TimeSeries{
			LabelsRefs: st.SymbolizeLabels(ls, nil),
			Samples:    []writev2.Sample{{Value: float64(i), Timestamp: ts}},
		})
	}
	req.Symbols = st.Symbols()
	return req
}

// expectedFromV1 is what a correct decoder must produce for valid input:
// the prompb labels minus empty values, and the samples bit-exact.
func expectedFromV1(req *prompb.WriteRequest) []appendCall {
	var out []appendCall
	for _, ts := range req.Timeseries {
		c := appendCall{}
		for _, l := range ts.Labels {
			if l.Value != "" {
				c.Labels = append(c.Labels, detector.Label{Name: l.Name, Value: l.Value})
			}
		}
		for _, s := range ts.Samples {
			c.Samples = append(c.Samples, detector.Sample{TimestampMs: s.Timestamp, Value: s.Value})
		}
		out = append(out, c)
	}
	return out
}

func expectedFromV2(req *writev2.Request) []appendCall {
	var out []appendCall
	for _, ts := range req.Timeseries {
		c := appendCall{}
		for i := 0; i+1 < len(ts.LabelsRefs); i += 2 {
			if v := req.Symbols[ts.LabelsRefs[i+1]]; v != "" {
				c.Labels = append(c.Labels, detector.Label{Name: req.Symbols[ts.LabelsRefs[i]], Value: v})
			}
		}
		for _, s := range ts.Samples {
			c.Samples = append(c.Samples, detector.Sample{TimestampMs: s.Timestamp, Value: s.Value})
		}
		out = append(out, c)
	}
	return out
}

func decodedCalls(wr *WriteRequest) []appendCall {
	var out []appendCall
	for _, s := range wr.Series {
		out = append(out, appendCall{Labels: s.Labels.Clone(), Samples: slices.Clone(s.Samples)})
	}
	return out
}

// floatBits compares floats by bit pattern so NaN and StaleNaN compare,
// and treats nil and empty slices alike.
var floatBits = cmp.Options{
	cmp.Comparer(func(a, b float64) bool { return math.Float64bits(a) == math.Float64bits(b) }),
	cmpopts.EquateEmpty(),
}

func TestDecodeMatchesPrompb(t *testing.T) {
	lim := DefaultConfig().limits()
	v1 := genV1(300, 1700000000000)
	v1.Timeseries[3].Samples = append(v1.Timeseries[3].Samples, prompb.Sample{Value: staleNaN, Timestamp: -5}, prompb.Sample{Value: math.Inf(-1)})
	v1.Metadata = []prompb.MetricMetadata{{MetricFamilyName: "x", Help: "h"}}
	b1, err := v1.Marshal()
	require.NoError(t, err)
	var wr WriteRequest
	require.NoError(t, wr.DecodeV1(b1, lim))
	require.Empty(t, cmp.Diff(expectedFromV1(v1), decodedCalls(&wr), floatBits))
	require.Equal(t, 1, wr.Metadata)
	for _, s := range wr.Series {
		require.Equal(t, ProblemNone, s.Problem)
	}

	v2 := genV2(300, 1700000000000)
	v2.Timeseries[7].Samples = append(v2.Timeseries[7].Samples, writev2.Sample{Value: math.NaN(), Timestamp: math.MaxInt64})
	b2, err := v2.Marshal()
	require.NoError(t, err)
	// The same WriteRequest is reused: Reset must leave nothing behind.
	require.NoError(t, wr.DecodeV2(b2, lim))
	require.Empty(t, cmp.Diff(expectedFromV2(v2), decodedCalls(&wr), floatBits))
	require.Equal(t, v2.Symbols, wr.Symbols)
}

func TestDecodeV2SymbolsAfterTimeseries(t *testing.T) {
	// Field order is free in protobuf: timeseries (5) before symbols (4).
	ts, err := (&writev2.Request{Timeseries: []writev2.TimeSeries{{LabelsRefs: []uint32{1, 2}, Samples: []writev2.Sample{{Value: 1, Timestamp: 2}}}}}).Marshal()
	require.NoError(t, err)
	sy, err := (&writev2.Request{Symbols: []string{"", "__name__", "up"}}).Marshal()
	require.NoError(t, err)
	var wr WriteRequest
	require.NoError(t, wr.DecodeV2(append(ts, sy...), DefaultConfig().limits()))
	require.Len(t, wr.Series, 1)
	require.Equal(t, ProblemNone, wr.Series[0].Problem)
	require.Equal(t, "up", wr.Series[0].Labels.Get("__name__"))
}

// The metadata type reaches the detector for counters and gauges; a
// classic histogram's or summary's series are left to their names.
func TestDecodeV2MetadataType(t *testing.T) {
	for _, tc := range []struct {
		typ  writev2.Metadata_MetricType
		want detector.MetricType
	}{
		{writev2.Metadata_METRIC_TYPE_UNSPECIFIED, detector.MetricTypeUnknown},
		{writev2.Metadata_METRIC_TYPE_COUNTER, detector.MetricTypeCounter},
		{writev2.Metadata_METRIC_TYPE_GAUGE, detector.MetricTypeGauge},
		{writev2.Metadata_METRIC_TYPE_HISTOGRAM, detector.MetricTypeUnknown},
		{writev2.Metadata_METRIC_TYPE_SUMMARY, detector.MetricTypeUnknown},
		{writev2.Metadata_METRIC_TYPE_GAUGEHISTOGRAM, detector.MetricTypeGauge},
		{writev2.Metadata_METRIC_TYPE_INFO, detector.MetricTypeGauge},
		{writev2.Metadata_METRIC_TYPE_STATESET, detector.MetricTypeGauge},
	} {
		t.Run(tc.typ.String(), func(t *testing.T) {
			b, err := (&writev2.Request{
				Symbols: []string{"", "__name__", "jobs_count", "help"},
				Timeseries: []writev2.TimeSeries{{
					LabelsRefs: []uint32{1, 2},
					Samples:    []writev2.Sample{{Value: 1, Timestamp: 2}},
					Metadata:   writev2.Metadata{Type: tc.typ, HelpRef: 3},
				}},
			}).Marshal()
			require.NoError(t, err)
			var wr WriteRequest
			require.NoError(t, wr.DecodeV2(b, DefaultConfig().limits()))
			require.Len(t, wr.Series, 1)
			require.Equal(t, ProblemNone, wr.Series[0].Problem)
			require.Equal(t, tc.want, wr.Series[0].Type)
		})
	}
	var wr WriteRequest
	// Metadata whose type is not a varint is malformed.
	bad := []byte{0x22, 0, 0x2a, 4, 0x2a, 2, 0x0a, 0}
	require.Error(t, wr.DecodeV2(bad, DefaultConfig().limits()))
}

func TestDecodeV2UnpackedRefs(t *testing.T) {
	// labels_refs as individual varint fields (non-packed): legal proto3.
	var b []byte
	b = append(b, 0x22, 0) // symbol ""
	b = append(b, 0x22, 8)
	b = append(b, "__name__"...)
	b = append(b, 0x22, 2, 'u', 'p')
	series := []byte{0x08, 1, 0x08, 2, 0x12, 0x09, 0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f} // refs 1,2; sample value 1.0
	b = append(b, 0x2a, byte(len(series)))
	b = append(b, series...)
	var wr WriteRequest
	require.NoError(t, wr.DecodeV2(b, DefaultConfig().limits()))
	require.Len(t, wr.Series, 1)
	require.Equal(t, ProblemNone, wr.Series[0].Problem)
	require.Equal(t, dl("__name__", "up"), wr.Series[0].Labels)
	require.Equal(t, ds(0, 1), wr.Series[0].Samples)
}

func TestDecodeReuseDoesNotAlias(t *testing.T) {
	// Appending to a decoded series' slices must not clobber its neighbour.
	b, err := genV1(2, 1).Marshal()
	require.NoError(t, err)
	var wr WriteRequest
	require.NoError(t, wr.DecodeV1(b, DefaultConfig().limits()))
	before := wr.Series[1].Labels.Clone()
	_ = append(wr.Series[0].Labels, detector.Label{Name: "zzz", Value: "x"})
	_ = append(wr.Series[0].Samples, detector.Sample{})
	require.Equal(t, before, wr.Series[1].Labels)
}

// checkAccepted is an independent statement of what "valid" means, used by
// the fuzz targets: every series the decoder reports as valid must pass it.
func checkAccepted(t *testing.T, s *Series, lim Limits) {
	t.Helper()
	require.NotEmpty(t, s.Labels)
	require.LessOrEqual(t, len(s.Labels), lim.MaxLabelsPerSeries)
	require.True(t, len(s.Samples) > 0 || s.Histograms > 0 || s.Exemplars > 0)
	hasName := false
	for i, l := range s.Labels {
		require.NotEmpty(t, l.Name)
		require.NotEmpty(t, l.Value, "empty values are dropped")
		require.True(t, utf8.ValidString(l.Name) && utf8.ValidString(l.Value))
		require.LessOrEqual(t, len(l.Name), lim.MaxLabelNameLength)
		require.LessOrEqual(t, len(l.Value), lim.MaxLabelValueLength)
		if i > 0 {
			require.Negative(t, strings.Compare(s.Labels[i-1].Name, l.Name), "sorted and unique")
		}
		hasName = hasName || l.Name == "__name__"
	}
	require.True(t, hasName)
}

func TestDecodeRandomValid(t *testing.T) {
	// Random but valid requests round-trip through prompb and our decoder.
	r := rand.New(rand.NewPCG(1, 2))
	lim := DefaultConfig().limits()
	var wr WriteRequest
	for range 200 {
		n := r.IntN(20)
		v1 := genV1(n, r.Int64())
		for i := range v1.Timeseries {
			for range r.IntN(3) {
				v1.Timeseries[i].Samples = append(v1.Timeseries[i].Samples, prompb.Sample{Value: r.NormFloat64(), Timestamp: r.Int64() - r.Int64()})
			}
		}
		b, err := v1.Marshal()
		require.NoError(t, err)
		require.NoError(t, wr.DecodeV1(b, lim))
		require.Empty(t, cmp.Diff(expectedFromV1(v1), decodedCalls(&wr), floatBits))
		for i := range wr.Series {
			checkAccepted(t, &wr.Series[i], lim)
		}
	}
}

// TestDecodeV2ClientGolangTypes checks the decoder against client_golang's
// exp remote-write types (google.golang.org/protobuf + vtprotobuf), a second
// independent encoder besides Prometheus' gogo types.
func TestDecodeV2ClientGolangTypes(t *testing.T) {
	st := cgwritev2.NewSymbolTable()
	req := &cgwritev2.Request{}
	want := []appendCall{}
	for i := range 50 {
		kv := []string{"__name__", "rpc_total", "method", "Get" + strconv.Itoa(i%7), "zone", "eu-" + strconv.Itoa(i)}
		req.Timeseries = append(req.Timeseries, &cgwritev2.TimeSeries{
			LabelsRefs: st.SymbolizeLabels(kv, nil),
			Samples:    []*cgwritev2.Sample{{Value: float64(i), Timestamp: int64(1000 + i)}},
			Metadata:   &cgwritev2.Metadata{Type: cgwritev2.Metadata_METRIC_TYPE_COUNTER},
		})
		want = append(want, appendCall{Labels: dl(kv...), Samples: ds(float64(1000+i), float64(i))})
	}
	req.Symbols = st.Symbols()
	for name, marshal := range map[string]func() ([]byte, error){
		"protobuf": func() ([]byte, error) { return proto.Marshal(req) },
		"vtproto":  req.MarshalVT,
	} {
		t.Run(name, func(t *testing.T) {
			b, err := marshal()
			require.NoError(t, err)
			var wr WriteRequest
			require.NoError(t, wr.DecodeV2(b, DefaultConfig().limits()))
			require.Empty(t, cmp.Diff(want, decodedCalls(&wr), floatBits))
			for i := range wr.Series {
				require.Equal(t, ProblemNone, wr.Series[i].Problem)
			}
		})
	}
}

// A v1 request's metadata gives the detector its metric families' types;
// entries without a valid name are left out, and metadata counts against
// max_samples_per_request like series do.
func TestDecodeV1Metadata(t *testing.T) {
	lim := DefaultConfig().limits()
	req := &prompb.WriteRequest{Metadata: []prompb.MetricMetadata{
		{MetricFamilyName: "http_requests_total", Type: prompb.MetricMetadata_COUNTER, Help: "h", Unit: "requests"},
		{MetricFamilyName: "pg_stat_activity_count", Type: prompb.MetricMetadata_GAUGE},
		{MetricFamilyName: "rpc_seconds", Type: prompb.MetricMetadata_HISTOGRAM},
		{MetricFamilyName: "queue_seconds", Type: prompb.MetricMetadata_GAUGEHISTOGRAM},
		{MetricFamilyName: "latency_seconds", Type: prompb.MetricMetadata_SUMMARY},
		{MetricFamilyName: "build_info", Type: prompb.MetricMetadata_INFO},
		{MetricFamilyName: "feature_state", Type: prompb.MetricMetadata_STATESET},
		{MetricFamilyName: "untyped", Type: prompb.MetricMetadata_UNKNOWN},
		{MetricFamilyName: "", Type: prompb.MetricMetadata_COUNTER},
		{MetricFamilyName: "bad\xff", Type: prompb.MetricMetadata_COUNTER},
		{MetricFamilyName: "future", Type: 42},
	}}
	b, err := req.Marshal()
	require.NoError(t, err)
	var wr WriteRequest
	require.NoError(t, wr.DecodeV1(b, lim))
	require.Equal(t, 11, wr.Metadata)
	require.Equal(t, []detector.MetricFamily{
		{Name: "http_requests_total", Type: detector.FamilyTypeCounter},
		{Name: "pg_stat_activity_count", Type: detector.FamilyTypeGauge},
		{Name: "rpc_seconds", Type: detector.FamilyTypeHistogram},
		{Name: "queue_seconds", Type: detector.FamilyTypeGaugeHistogram},
		{Name: "latency_seconds", Type: detector.FamilyTypeSummary},
		{Name: "build_info", Type: detector.FamilyTypeInfo},
		{Name: "feature_state", Type: detector.FamilyTypeStateSet},
		{Name: "untyped", Type: detector.FamilyTypeUnknown},
		{Name: "future", Type: detector.FamilyTypeUnknown},
	}, wr.Families)
	wr.Reset()
	require.Empty(t, wr.Families)

	lim.MaxSamplesPerRequest = 10
	require.ErrorIs(t, wr.DecodeV1(b, lim), ErrTooManySamples)

	// A type that is not a varint is malformed.
	bad := []byte{0x1a, 0x02, 0x0a, 0x00} // metadata { type: (bytes) "" }
	require.ErrorContains(t, wr.DecodeV1(bad, DefaultConfig().limits()), "MetricMetadata")
}

// Native histograms become the two float series PromQL's histogram_count()
// and histogram_sum() give, with the histograms' timestamps: counters, or
// gauges for a gauge histogram; a stale histogram makes both stale.
func TestDecodeDerivesHistogramSeries(t *testing.T) {
	lim := DefaultConfig().limits()
	require.True(t, lim.NativeHistograms, "scored by default")
	staleSum := staleNaN
	v1 := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		{Labels: []prompb.Label{{Name: "__name__", Value: "rpc_seconds"}, {Name: "job", Value: "api"}}, Histograms: []prompb.Histogram{
			{Count: &prompb.Histogram_CountInt{CountInt: 10}, Sum: 2.5, Timestamp: 1000, Schema: 3, PositiveSpans: []prompb.BucketSpan{{Offset: 0, Length: 1}}, PositiveDeltas: []int64{10}},
			{Count: &prompb.Histogram_CountFloat{CountFloat: 12.5}, Sum: 3, Timestamp: 2000},
			{Count: &prompb.Histogram_CountFloat{}, Sum: staleSum, Timestamp: 3000},
		}},
		{Labels: []prompb.Label{{Name: "__name__", Value: "queue_size"}}, Histograms: []prompb.Histogram{
			{Count: &prompb.Histogram_CountInt{CountInt: 4}, Sum: 40, Timestamp: 1000, ResetHint: prompb.Histogram_GAUGE},
		}},
		{Labels: []prompb.Label{{Name: "__name__", Value: "up"}}, Samples: []prompb.Sample{{Value: 1, Timestamp: 1000}}},
	}}
	b, err := v1.Marshal()
	require.NoError(t, err)
	var wr WriteRequest
	require.NoError(t, wr.DecodeV1(b, lim))
	type derived struct {
		Labels  detector.Labels
		Samples []detector.Sample
		Type    detector.MetricType
	}
	var got []derived
	for _, s := range wr.Series {
		require.Equal(t, ProblemNone, s.Problem)
		if s.FromHistogram {
			got = append(got, derived{s.Labels, s.Samples, s.Type})
		}
	}
	want := []derived{
		{detector.FromStrings("__name__", "rpc_seconds_count", "job", "api"), []detector.Sample{{TimestampMs: 1000, Value: 10}, {TimestampMs: 2000, Value: 12.5}, {TimestampMs: 3000, Value: staleSum}}, detector.MetricTypeCounter},
		{detector.FromStrings("__name__", "rpc_seconds_sum", "job", "api"), []detector.Sample{{TimestampMs: 1000, Value: 2.5}, {TimestampMs: 2000, Value: 3}, {TimestampMs: 3000, Value: staleSum}}, detector.MetricTypeCounter},
		{detector.FromStrings("__name__", "queue_size_count"), []detector.Sample{{TimestampMs: 1000, Value: 4}}, detector.MetricTypeGauge},
		{detector.FromStrings("__name__", "queue_size_sum"), []detector.Sample{{TimestampMs: 1000, Value: 40}}, detector.MetricTypeGauge},
	}
	require.Empty(t, cmp.Diff(want, got, floatBits))
	require.Equal(t, 4, wr.Histograms)
	require.Equal(t, 1, wr.Samples)

	// Remote-Write 2.0 carries the same fields.
	b2 := newV2Builder()
	ts := b2.add([]string{"__name__", "rpc_seconds"})
	ts.Histograms = []writev2.Histogram{{Count: &writev2.Histogram_CountInt{CountInt: 7}, Sum: 1.25, Timestamp: 5000}}
	require.NoError(t, wr.DecodeV2(b2.marshal(t), lim))
	require.Len(t, wr.Series, 3)
	require.Equal(t, detector.FromStrings("__name__", "rpc_seconds_count"), wr.Series[1].Labels)
	require.Equal(t, []detector.Sample{{TimestampMs: 5000, Value: 7}}, wr.Series[1].Samples)
	require.Equal(t, []detector.Sample{{TimestampMs: 5000, Value: 1.25}}, wr.Series[2].Samples)

	// Without accept_native_histograms nothing is derived.
	lim.NativeHistograms = false
	require.NoError(t, wr.DecodeV1(b, lim))
	require.Len(t, wr.Series, 3)
	require.Equal(t, 4, wr.Histograms)

	// A name the suffix takes past max_label_value_length makes the
	// derived series invalid, and says so.
	lim = DefaultConfig().limits()
	lim.MaxLabelValueLength = len("rpc_seconds") + 4
	require.NoError(t, wr.DecodeV1(b, lim))
	require.Equal(t, ProblemLabelValueTooLong, wr.Series[3].Problem)
	require.True(t, wr.Series[3].FromHistogram)

	// Histograms count against max_samples_per_request as they are read.
	lim = DefaultConfig().limits()
	lim.MaxSamplesPerRequest = 3
	require.ErrorIs(t, wr.DecodeV1(b, lim), ErrTooManySamples)
}
