package kafka

import (
	"fmt"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
	"github.com/sentinel-mesh/sentinel-mesh/remotewrite"
)

// A record's value and headers come from whoever produces to the topic:
// whatever they hold, Decode hands on only valid series with samples, or
// returns a *badRecord, never a panic. kind picks the format and the
// headers: auto-detection with a content type, or a fixed format.
func FuzzDecode(f *testing.F) {
	ls := detector.FromStrings("__name__", "up", "job", "node", "instance", "a:9100")
	rw, _ := EncodeSeriesV1(ls, []detector.Sample{{TimestampMs: 1700000000000, Value: 1}}, nil)
	js := []byte(`{"timestamp":"2026-12-01T00:00:00Z","value":"1","name":"up","labels":{"__name__":"up","job":"node"}}`)
	for kind := range byte(4) {
		f.Add(kind, rw)
		f.Add(kind, js)
		f.Add(kind, []byte(`{"timestamp":"x","value":"NaN","labels":{"":"\xff"}}`))
		f.Add(kind, []byte{0xff, 0x00, 0x01})
	}
	lim := remotewrite.Limits{MaxLabelsPerSeries: 8, MaxLabelNameLength: 16, MaxLabelValueLength: 32, MaxSamplesPerRequest: 100}
	f.Fuzz(func(t *testing.T, kind byte, value []byte) {
		cfg := DefaultConfig()
		rec := &kgo.Record{Topic: "t", Value: value}
		switch kind % 4 {
		case 0:
			rec.Headers = []kgo.RecordHeader{{Key: HeaderContentType, Value: []byte("application/x-protobuf")}}
		case 1:
			cfg.Consumer.Format = FormatRemoteWriteV2
		case 2:
			cfg.Consumer.Format = FormatJSON
			rec.Headers = []kgo.RecordHeader{{Key: cfg.TenantHeader, Value: []byte("team-a")}}
		}
		d := NewDecoder(&cfg, lim, 1<<16)
		var samples int
		invalid, err := d.Decode(rec, func(tenant string, ls detector.Labels, s []detector.Sample, _ detector.MetricType) {
			require.NotEmpty(t, tenant)
			require.NotEmpty(t, s, "a series without samples")
			require.LessOrEqual(t, len(ls), lim.MaxLabelsPerSeries, "a series over the label limit")
			samples += len(s)
		})
		if err != nil {
			var br *badRecord
			require.ErrorAs(t, err, &br, fmt.Sprintf("%v", err))
			require.Zero(t, samples+invalid, "a bad record handed on samples")
			return
		}
		require.LessOrEqual(t, samples+invalid, lim.MaxSamplesPerRequest+1)
	})
}

// A Remote-Write 2.0 payload's metadata type reaches the target, so a
// counter named without _total is scored on its rate (detector.counter_rate).
func TestDecodeV2PassesTheMetadataType(t *testing.T) {
	b, err := (&writev2.Request{
		Symbols: []string{"", "__name__", "served"},
		Timeseries: []writev2.TimeSeries{{
			LabelsRefs: []uint32{1, 2},
			Samples:    []writev2.Sample{{Value: 1, Timestamp: 2}},
			Metadata:   writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_COUNTER},
		}},
	}).Marshal()
	require.NoError(t, err)
	cfg := DefaultConfig()
	cfg.Consumer.Format = FormatRemoteWriteV2
	d := NewDecoder(&cfg, remotewrite.DefaultConfig().DecodeLimits(), 1<<16)
	var got []detector.MetricType
	_, err = d.Decode(&kgo.Record{Topic: "t", Value: snappy.Encode(nil, b)}, func(_ string, _ detector.Labels, _ []detector.Sample, typ detector.MetricType) {
		got = append(got, typ)
	})
	require.NoError(t, err)
	require.Equal(t, []detector.MetricType{detector.MetricTypeCounter}, got)
}

// A Remote-Write 1.0 payload's metadata reaches the target with the
// record's tenant, before the payload's series.
func TestDecodeV1PassesTheMetadata(t *testing.T) {
	b, err := (&prompb.WriteRequest{
		Metadata:   []prompb.MetricMetadata{{MetricFamilyName: "served", Type: prompb.MetricMetadata_COUNTER}},
		Timeseries: []prompb.TimeSeries{{Labels: []prompb.Label{{Name: "__name__", Value: "served"}}, Samples: []prompb.Sample{{Value: 1, Timestamp: 2}}}},
	}).Marshal()
	require.NoError(t, err)
	cfg := DefaultConfig()
	d := NewDecoder(&cfg, remotewrite.DefaultConfig().DecodeLimits(), 1<<16)
	var calls []string
	d.Metadata = func(tenant string, fams []detector.MetricFamily) {
		require.Equal(t, []detector.MetricFamily{{Name: "served", Type: detector.FamilyTypeCounter}}, fams)
		calls = append(calls, "metadata "+tenant)
	}
	rec := &kgo.Record{Topic: "t", Value: snappy.Encode(nil, b), Headers: []kgo.RecordHeader{{Key: cfg.TenantHeader, Value: []byte("team-a")}}}
	_, err = d.Decode(rec, func(tenant string, _ detector.Labels, _ []detector.Sample, _ detector.MetricType) {
		calls = append(calls, "series "+tenant)
	})
	require.NoError(t, err)
	require.Equal(t, []string{"metadata team-a", "series team-a"}, calls)
}
