package backfill

import (
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
)

var fuzzSeries = detector.Labels{{Name: "__name__", Value: "up"}, {Name: "job", Value: "a"}}

// The bodies of a Prometheus-compatible store are untrusted input: whatever
// they hold, the decoders return samples of the asked-for series or an
// error, never a panic.
func FuzzDecodeQuery(f *testing.F) {
	f.Add([]byte(`{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"up","job":"a"},"values":[[1700000000.5,"1"],[1700000015,"NaN"]]}]}}`))
	f.Add([]byte(`{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"up","job":"a"},"values":[["x",1]]}]}}`))
	f.Add([]byte(`{"status":"success","data":{"resultType":"vector","result":[]}}`))
	f.Add([]byte(`{"status":"error","errorType":"bad_data","error":"parse error"}`))
	f.Add([]byte(`{"status":"success","data":null}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, body []byte) {
		smps, err := decodeQuery(body, fuzzSeries)
		if err != nil {
			require.Nil(t, smps)
			return
		}
		require.LessOrEqual(t, len(smps), len(body), "more samples than bytes")
	})
}

func FuzzDecodeSeries(f *testing.F) {
	f.Add([]byte(`{"status":"success","data":[{"__name__":"up","job":"a"},{}]}`))
	f.Add([]byte(`{"status":"success","data":[1]}`))
	f.Add([]byte(`{"status":"error","error":"x"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		series, err := decodeSeries(body)
		if err != nil {
			return
		}
		for _, ls := range series {
			for i := 1; i < len(ls); i++ {
				require.Less(t, ls[i-1].Name, ls[i].Name, "labels sorted and unique")
			}
		}
	})
}

func FuzzDecodeReadResponse(f *testing.F) {
	add := func(resp *prompb.ReadResponse) {
		b, err := resp.Marshal()
		require.NoError(f, err)
		f.Add(snappy.Encode(nil, b))
	}
	add(&prompb.ReadResponse{Results: []*prompb.QueryResult{{Timeseries: []*prompb.TimeSeries{{
		Labels:  []prompb.Label{{Name: "__name__", Value: "up"}, {Name: "job", Value: "a"}},
		Samples: []prompb.Sample{{Timestamp: 1, Value: 1}, {Timestamp: 2, Value: 2}},
	}}}}})
	add(&prompb.ReadResponse{})
	add(&prompb.ReadResponse{Results: []*prompb.QueryResult{{}, {}}})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, body []byte) {
		out, err := decodeReadResponse(body, []detector.Labels{fuzzSeries})
		if err != nil {
			require.Nil(t, out)
			return
		}
		require.Len(t, out, 1, "one result per asked-for series")
	})
}
