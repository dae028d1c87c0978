package remotewrite

import (
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"
)

// Small limits so the fuzzer reaches every limit branch.
var fuzzLimits = Limits{MaxLabelsPerSeries: 8, MaxLabelNameLength: 16, MaxLabelValueLength: 32, MaxSamplesPerRequest: 1000, NativeHistograms: true}

func fuzzSeedsV1(f *testing.F) {
	add := func(req *prompb.WriteRequest) {
		b, err := req.Marshal()
		require.NoError(f, err)
		f.Add(b)
	}
	add(genV1(3, 1700000000000))
	add(&prompb.WriteRequest{})
	add(&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		{Labels: lbls("__name__", "x", "a", "1", "a", "2"), Samples: []prompb.Sample{{Value: math.NaN(), Timestamp: 1}}},
		{Labels: lbls("__name__", "x", "b", "1", "a", "\xff"), Samples: []prompb.Sample{{Value: staleNaN, Timestamp: 1}}},
		{Labels: lbls("job", "x"), Histograms: []prompb.Histogram{{Count: &prompb.Histogram_CountInt{CountInt: 1}}}, Exemplars: []prompb.Exemplar{{Value: 1}}},
	}, Metadata: []prompb.MetricMetadata{{MetricFamilyName: "x"}}})
	f.Add([]byte{0x0a, 0x10, 0x01})
}

func fuzzSeedsV2(f *testing.F) {
	add := func(req *writev2.Request) {
		b, err := req.Marshal()
		require.NoError(f, err)
		f.Add(b)
	}
	add(genV2(3, 1700000000000))
	add(&writev2.Request{})
	add(&writev2.Request{Symbols: []string{"", "__name__", "x", "a", "\xff"}, Timeseries: []writev2.TimeSeries{
		{LabelsRefs: []uint32{1, 2, 3, 4}, Samples: []writev2.Sample{{Value: staleNaN, Timestamp: 1}}},
		{LabelsRefs: []uint32{1, 2, 3}, Samples: []writev2.Sample{{Value: 1}}},
		{LabelsRefs: []uint32{1, 99}, Samples: []writev2.Sample{{Value: 1}}},
		{LabelsRefs: []uint32{1, 2}, Histograms: []writev2.Histogram{{Count: &writev2.Histogram_CountFloat{CountFloat: 1}}}, Exemplars: []writev2.Exemplar{{LabelsRefs: []uint32{3, 2}}}},
	}})
	f.Add([]byte{0x22, 0xff})
}

// FuzzDecodeV1 asserts that decoding never panics, that every series
// reported valid satisfies checkAccepted, and that when the generated gogo
// decoder also accepts the input, valid series decode identically.
func FuzzDecodeV1(f *testing.F) {
	fuzzSeedsV1(f)
	var wr WriteRequest
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := wr.DecodeV1(b, fuzzLimits); err != nil {
			return
		}
		var ref prompb.WriteRequest
		refErr := ref.Unmarshal(b)
		want := expectedFromV1(&ref)
		for i := range wr.Series {
			s := &wr.Series[i]
			if s.Problem != ProblemNone {
				continue
			}
			checkAccepted(t, s, fuzzLimits)
			if refErr == nil && !s.FromHistogram {
				require.Empty(t, cmp.Diff(want[i], decodedCalls(&WriteRequest{Series: []Series{*s}})[0], floatBits))
			}
		}
	})
}

// FuzzDecodeV2 is FuzzDecodeV1 for io.prometheus.write.v2.Request; refs of
// valid series must also have been in range.
func FuzzDecodeV2(f *testing.F) {
	fuzzSeedsV2(f)
	var wr WriteRequest
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := wr.DecodeV2(b, fuzzLimits); err != nil {
			return
		}
		var ref writev2.Request
		refErr := ref.Unmarshal(b)
		for i := range wr.Series {
			s := &wr.Series[i]
			if s.Problem != ProblemNone {
				continue
			}
			checkAccepted(t, s, fuzzLimits)
			if refErr == nil && !s.FromHistogram {
				ts := ref.Timeseries[i]
				for _, r := range ts.LabelsRefs {
					require.Less(t, int(r), len(ref.Symbols))
				}
				want := expectedFromV2(&writev2.Request{Symbols: ref.Symbols, Timeseries: []writev2.TimeSeries{ts}})[0]
				require.Empty(t, cmp.Diff(want, decodedCalls(&WriteRequest{Series: []Series{*s}})[0], floatBits))
			}
		}
	})
}
