package kafka

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
	"github.com/sentinel-mesh/sentinel-mesh/internal/metrictest"
	"github.com/sentinel-mesh/sentinel-mesh/remotewrite"
)

// Split deployments (--target=receiver in front, detectors consuming the
// topic) score counters on their rates and gauges as sent just as a single
// server does: the receiver keeps the families' types from Remote-Write 1.0
// metadata requests and each series' record carries its type. Real handler,
// producer and consumer, Kafka protocol through kfake.
func TestReceiverForwardsWhatASeriesIs(t *testing.T) {
	cl := newCluster(t, 2, "samples")
	cfg := testConfig(cl, "samples")
	cfg.State.Topic = ""
	cfg.Producer.Topic = "samples"
	p, err := NewProducer(cfg, ProducerOptions{})
	require.NoError(t, err)
	defer p.Close()
	h, err := remotewrite.NewHandler(remotewrite.DefaultConfig(), p, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	require.NoError(t, err)
	post := func(req *prompb.WriteRequest) {
		t.Helper()
		raw, err := req.Marshal()
		require.NoError(t, err)
		r := httptest.NewRequest(http.MethodPost, "/api/v1/write", bytes.NewReader(snappy.Encode(nil, raw)))
		r.Header.Set("Content-Type", "application/x-protobuf")
		r.Header.Set("Content-Encoding", "snappy")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())
	}
	post(&prompb.WriteRequest{Metadata: []prompb.MetricMetadata{
		{MetricFamilyName: "pg_stat_activity_count", Type: prompb.MetricMetadata_GAUGE},
		{MetricFamilyName: "db_queries", Type: prompb.MetricMetadata_COUNTER},
	}})
	const steps = 60
	t0 := time.Now().Add(-time.Hour).UnixMilli()
	for i := range steps {
		ts := t0 + int64(i)*15_000
		post(&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
			{Labels: []prompb.Label{{Name: "__name__", Value: "pg_stat_activity_count"}}, Samples: []prompb.Sample{{Value: float64(50 + i%5), Timestamp: ts}}},
			{Labels: []prompb.Label{{Name: "__name__", Value: "db_queries"}}, Samples: []prompb.Sample{{Value: float64(1500 * i), Timestamp: ts}}},
		}})
	}

	reg := prometheus.NewRegistry()
	d := newTestDetector(t, reg)
	m := NewMetrics(nil)
	_, stop := startConsumer(t, cfg, d, m)
	defer stop()
	waitFor(t, 10*time.Second, "all samples", func() bool {
		return counterValue(m.samples.WithLabelValues("accepted")) == 2*steps
	})
	require.NoError(t, d.Flush())
	got := map[string]detector.Result{}
	d.Results(func(r *detector.Result) bool {
		got[r.Labels.Get("__name__")] = *r
		return true
	})
	require.InDelta(t, 52, got["pg_stat_activity_count"].Value, 2, "the gauge named like a counter arrives as sent")
	require.InDelta(t, 52, got["pg_stat_activity_count"].Expected, 5)
	require.InDelta(t, 100, got["db_queries"].Value, 1e-9, "the counter without _total is scored on its rate")
	require.Equal(t, 2.0, metrictest.Value(t, reg, "sentinel_mesh_metric_families"), "one family per series name, from the records")
}

// A record says what its series is when the type is known, and nothing when
// it is not (the consuming detector goes by the name then).
func TestEncodeTypedSeriesV1(t *testing.T) {
	ls := detector.FromStrings("__name__", "served", "job", "api")
	smp := []detector.Sample{{TimestampMs: 1700000000000, Value: 3}}
	cfg := DefaultConfig()
	d := NewDecoder(&cfg, remotewrite.DefaultConfig().DecodeLimits(), 1<<16)
	for _, tc := range []struct {
		typ  detector.MetricType
		want []detector.MetricFamily
	}{
		{detector.MetricTypeCounter, []detector.MetricFamily{{Name: "served", Type: detector.FamilyTypeCounter}}},
		{detector.MetricTypeGauge, []detector.MetricFamily{{Name: "served", Type: detector.FamilyTypeGauge}}},
		{detector.MetricTypeUnknown, nil},
	} {
		payload, _ := EncodeTypedSeriesV1(ls, smp, tc.typ, nil)
		var fams []detector.MetricFamily
		d.Metadata = func(_ string, f []detector.MetricFamily) { fams = append(fams, f...) }
		n := 0
		_, err := d.Decode(&kgo.Record{Topic: "t", Value: payload}, func(_ string, got detector.Labels, s []detector.Sample, _ detector.MetricType) {
			require.Equal(t, ls, got)
			require.Equal(t, smp, s)
			n++
		})
		require.NoError(t, err)
		require.Equal(t, 1, n)
		require.Equal(t, tc.want, fams, "type %d", tc.typ)
	}
}
