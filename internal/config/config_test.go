package config

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		wantErr string
		check   func(t *testing.T, c *Config)
	}{
		{name: "empty file keeps defaults", yaml: "", check: func(t *testing.T, c *Config) {
			require.Equal(t, detector.DefaultConfig.MaxSeries, c.Detector.MaxSeries)
			require.Equal(t, "metric", c.Exporter.LabelNames.Metric)
		}},
		{name: "partial section keeps other defaults", yaml: "detector:\n  max_series: 10\n", check: func(t *testing.T, c *Config) {
			require.Equal(t, 10, c.Detector.MaxSeries)
			require.Equal(t, detector.DefaultConfig.BatchSize, c.Detector.BatchSize)
			require.Equal(t, "X-Scope-OrgID", c.RemoteWrite.TenantHeader)
		}},
		{name: "selectors parse", yaml: "detector:\n  selectors: ['{job=\"api\"}', 'up']\n", check: func(t *testing.T, c *Config) {
			require.Len(t, c.Detector.Selection, 2)
			require.True(t, c.Detector.Selection.Matches(detector.FromStrings("__name__", "x", "job", "api")))
			require.True(t, c.Detector.Selection.Matches(detector.FromStrings("__name__", "up")))
			require.False(t, c.Detector.Selection.Matches(detector.FromStrings("__name__", "x")))
		}},
		{name: "corroboration by job and instance by default", yaml: "", check: func(t *testing.T, c *Config) {
			require.Equal(t, []string{"job", "instance"}, c.Detector.EntityLabels)
			require.Equal(t, 0.1, c.Detector.Scoring.CorroborationLift)
		}},
		{name: "entity labels replaced, or emptied to turn corroboration off", yaml: "detector:\n  entity_labels: []\n", check: func(t *testing.T, c *Config) {
			require.Empty(t, c.Detector.EntityLabels)
		}},
		{name: "bad entity label names the key", yaml: "detector:\n  entity_labels: [pod, 'a-b']\n", wantErr: "detector.entity_labels[1]"},
		{name: "corroboration lift must stay under the threshold", yaml: "detector:\n  scoring:\n    threshold: 0.5\n    corroboration_lift: 0.5\n", wantErr: "detector.scoring.corroboration_lift"},
		{name: "direction", yaml: "detector:\n  scoring:\n    direction: up\n", check: func(t *testing.T, c *Config) {
			require.Equal(t, detector.DirectionUp, c.Detector.Scoring.Direction)
		}},
		{name: "deviation overrides parse", yaml: `
detector:
  scoring:
    min_abs_deviation: 2
  deviation_overrides:
    - selector: '{__name__=~".+_latency_seconds"}'
      direction: up
      min_rel_deviation: 0.05
    - selector: 'disk_free_bytes'
      direction: down
`, check: func(t *testing.T, c *Config) {
			ov := c.Detector.DeviationOverrides
			require.Len(t, ov, 2)
			require.True(t, ov[0].Match.Matches(detector.FromStrings("__name__", "http_latency_seconds")))
			require.False(t, ov[0].Match.Matches(detector.FromStrings("__name__", "disk_free_bytes")))
			require.Equal(t, detector.DirectionUp, *ov[0].Direction)
			require.Equal(t, 0.05, *ov[0].MinRelDeviation)
			require.Nil(t, ov[0].MinAbsDeviation, "left out: detector.scoring's value applies")
			require.True(t, ov[1].Match.Matches(detector.FromStrings("__name__", "disk_free_bytes")))
			require.Equal(t, detector.DirectionDown, *ov[1].Direction)
		}},
		{name: "bad override selector names the key", yaml: "detector:\n  deviation_overrides:\n    - {selector: '{job='}\n", wantErr: "detector.deviation_overrides[0].selector"},
		{name: "empty override selector names the key", yaml: "detector:\n  deviation_overrides:\n    - {direction: up}\n", wantErr: "detector.deviation_overrides[0].selector must not be empty"},
		{name: "bad override value names the key", yaml: "detector:\n  deviation_overrides:\n    - {selector: up}\n    - {selector: up, min_abs_deviation: -1}\n", wantErr: "detector.deviation_overrides[1].min_abs_deviation"},
		{name: "override metric types", yaml: "detector:\n  deviation_overrides:\n    - {selector: queue_count, metric_type: gauge}\n    - {selector: served, metric_type: counter}\n    - {selector: up}\n", check: func(t *testing.T, c *Config) {
			ov := c.Detector.DeviationOverrides
			require.Equal(t, detector.MetricTypeGauge, *ov[0].MetricType)
			require.Equal(t, detector.MetricTypeCounter, *ov[1].MetricType)
			require.Nil(t, ov[2].MetricType, "left out: metadata and names decide")
		}},
		{name: "bad override metric type names the key", yaml: "detector:\n  deviation_overrides:\n    - {selector: up, metric_type: histogram}\n", wantErr: "metric_type"},
		{name: "backfill off by default", yaml: "", check: func(t *testing.T, c *Config) {
			require.False(t, c.Backfill.Enabled())
		}},
		{name: "backfill startup tenant defaults to remote_write.default_tenant", yaml: "remote_write: {default_tenant: t0}\nbackfill:\n  url: http://prometheus:9090\n  startup: [{selectors: ['{job=\"api\"}']}, {tenant: t1, selectors: [up]}]\n", check: func(t *testing.T, c *Config) {
			require.True(t, c.Backfill.Enabled())
			require.Equal(t, "t0", c.Backfill.Startup[0].Tenant)
			require.Equal(t, "t1", c.Backfill.Startup[1].Tenant)
		}},
		{name: "bad backfill selector names the key", yaml: "backfill:\n  url: http://prometheus:9090\n  startup: [{selectors: ['{job=']}]\n", wantErr: "backfill.startup[0].selectors[0]"},
		{name: "limits off by default", yaml: "", check: func(t *testing.T, c *Config) {
			require.Nil(t, c.Detector.TenantLimits)
			require.Nil(t, c.RemoteWrite.TenantLimits)
			require.Equal(t, detector.DefaultCatchUpConfig, c.Detector.CatchUp)
		}},
		{name: "limits with overrides reach the detector and the handler", yaml: `
limits:
  max_series: 1000
  max_samples_per_second: 5000
  overrides:
    team-a: {max_series: 20000}
    batch-jobs: {max_samples_per_second: 0}
`, check: func(t *testing.T, c *Config) {
			require.Equal(t, 20000, c.Detector.TenantLimits.SeriesLimit("team-a"))
			require.Equal(t, 1000, c.Detector.TenantLimits.SeriesLimit("other"))
			require.Equal(t, 5000.0, c.RemoteWrite.TenantLimits.For("team-a").MaxSamplesPerSecond)
			require.Zero(t, c.RemoteWrite.TenantLimits.For("batch-jobs").MaxSamplesPerSecond)
		}},
		{name: "catch-up keys", yaml: "detector:\n  catch_up: {max_samples_per_series: 100}\n", check: func(t *testing.T, c *Config) {
			require.Equal(t, 100, c.Detector.CatchUp.MaxSamplesPerSeries)
			require.Equal(t, detector.DefaultCatchUpConfig.MaxSamples, c.Detector.CatchUp.MaxSamples)
		}},
		{name: "bad catch-up value names the key", yaml: "detector:\n  catch_up: {max_samples: -1}\n", wantErr: "detector.catch_up.max_samples must be >= 0"},
		{name: "bad limit names the key", yaml: "limits:\n  overrides:\n    team-a: {max_series: -1}\n", wantErr: `limits.overrides["team-a"].max_series must be >= 0`},
		{name: "bad override tenant", yaml: "limits:\n  overrides:\n    'a/b': {max_series: 1}\n", wantErr: `limits.overrides["a/b"]: tenant ID contains unsupported character`},
		{name: "unknown limits key", yaml: "limits:\n  max_seris: 1\n", wantErr: "max_seris"},
		{name: "unknown key", yaml: "detectr: {}\n", wantErr: "detectr"},
		{name: "bad selector names the key", yaml: "detector:\n  selectors: ['{job=']\n", wantErr: "detector.selectors"},
		{name: "bad value names the key", yaml: "detector:\n  batch_size: 0\n", wantErr: "detector.batch_size"},
		{name: "bad direction", yaml: "detector:\n  scoring:\n    direction: sideways\n", wantErr: "sideways"},
		{name: "bad label name", yaml: "exporter:\n  label_names:\n    metric: 'a-b'\n", wantErr: "exporter.label_names.metric"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.yaml))
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			tc.check(t, c)
		})
	}
}
