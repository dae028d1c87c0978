package exporter

import (
	"log/slog"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
)

func TestOutputLabels(t *testing.T) {
	tests := []struct {
		name   string
		tenant string
		in     detector.Labels
		want   []detector.Label
	}{
		{
			name:   "name moves to metric, tenant and model added",
			tenant: "team-a",
			in:     detector.FromStrings("__name__", "up", "job", "api"),
			want:   []detector.Label(detector.FromStrings("job", "api", "metric", "up", "model", "m1", "tenant", "team-a")),
		},
		{
			name: "empty tenant is omitted",
			in:   detector.FromStrings("__name__", "up"),
			want: []detector.Label(detector.FromStrings("metric", "up", "model", "m1")),
		},
		{
			name:   "clashing input labels are kept as exported_",
			tenant: "t",
			in:     detector.FromStrings("__name__", "up", "metric", "x", "model", "y", "tenant", "z"),
			want:   []detector.Label(detector.FromStrings("exported_metric", "x", "exported_model", "y", "exported_tenant", "z", "metric", "up", "model", "m1", "tenant", "t")),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := OutputLabels(nil, DefaultLabelNames, tc.tenant, "m1", tc.in, nil)
			require.Empty(t, cmp.Diff(tc.want, got))
		})
	}
}

func TestCollectorExposesScoredSeries(t *testing.T) {
	d, err := detector.New(detector.DefaultConfig, slog.New(slog.DiscardHandler), nil)
	require.NoError(t, err)
	d.SetModel(detector.WindowMeanModel{W: 4})
	ls := detector.FromStrings("__name__", "http_requests_total", "job", "api")
	for i := range 10 {
		d.Append("acme", ls, []detector.Sample{{TimestampMs: int64(i + 1), Value: float64(i % 2)}})
		require.NoError(t, d.Flush())
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(d, DefaultLabelNames, nil))
	n, err := testutil.GatherAndCount(reg)
	require.NoError(t, err)
	require.Equal(t, 4, n)

	var r detector.Result
	d.Results(func(x *detector.Result) bool { r = *x; return false })
	expected := `# HELP anomaly_expected Value the model expected for the input series' latest sample.
# TYPE anomaly_expected gauge
anomaly_expected{job="api",metric="http_requests_total",model="window-mean-w4",tenant="acme"} ` + fmtFloat(r.Expected) + `
`
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(expected), "anomaly_expected"))
}

func fmtFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// anomaly_open is there exactly while the detector holds an anomaly open on
// the series: absent while calm, 1 from the opening sample on, absent again
// once the anomaly has closed.
func TestCollectorExposesOpenAnomalies(t *testing.T) {
	cfg := detector.DefaultConfig
	cfg.Scoring.LearningPeriod = 0 // a minutes-long series, scored after warm-up
	cfg.AnomalyCloseAfter = 0
	d, err := detector.New(cfg, slog.New(slog.DiscardHandler), nil)
	require.NoError(t, err)
	d.SetModel(detector.WindowMeanModel{W: 16})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(d, DefaultLabelNames, nil))
	ls := detector.FromStrings("__name__", "http_requests", "job", "api")
	rng := rand.New(rand.NewPCG(1, 2))
	ts := int64(1000)
	feed := func(v float64) detector.Result {
		t.Helper()
		d.Append("", ls, []detector.Sample{{TimestampMs: ts, Value: v}})
		require.NoError(t, d.Flush())
		ts += 1000
		var r detector.Result
		d.Results(func(x *detector.Result) bool { r = *x; return false })
		return r
	}
	openSeries := func() int {
		t.Helper()
		n, err := testutil.GatherAndCount(reg, OpenMetric)
		require.NoError(t, err)
		return n
	}
	for i := range 300 {
		feed(100 + 10*math.Sin(float64(i)/5) + rng.NormFloat64())
	}
	require.Zero(t, openSeries(), "calm: no anomaly_open series")

	r := feed(400)
	require.True(t, r.Anomalous)
	want := `# HELP anomaly_open ` + openHelp + `
# TYPE anomaly_open gauge
anomaly_open{job="api",metric="http_requests",model="window-mean-w16"} 1
`
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(want), OpenMetric))

	for i := 0; r.Anomalous; i++ {
		require.Less(t, i, 200, "the anomaly never closed")
		r = feed(100 + 10*math.Sin(float64(i)/5) + rng.NormFloat64())
	}
	require.Zero(t, openSeries(), "closed: anomaly_open gone")
}
