package exporter

import (
	"log/slog"
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
