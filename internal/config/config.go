// Package config reads the sentinel-mesh YAML configuration file.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"gopkg.in/yaml.v3"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
	"github.com/sentinel-mesh/sentinel-mesh/exporter"
	"github.com/sentinel-mesh/sentinel-mesh/internal/api"
	"github.com/sentinel-mesh/sentinel-mesh/internal/backfill"
	"github.com/sentinel-mesh/sentinel-mesh/internal/k8s"
	"github.com/sentinel-mesh/sentinel-mesh/kafka"
	"github.com/sentinel-mesh/sentinel-mesh/limits"
	"github.com/sentinel-mesh/sentinel-mesh/remotewrite"
)

// Config is the whole configuration file. Every section has defaults, so an
// empty file (or none) runs the product on its embedded defaults.
type Config struct {
	Detector    detector.Config    `yaml:"detector"`
	RemoteWrite remotewrite.Config `yaml:"remote_write"`
	Kafka       kafka.Config       `yaml:"kafka"`
	Model       ModelConfig        `yaml:"model"`
	Exporter    ExporterConfig     `yaml:"exporter"`
	API         api.Config         `yaml:"api"`
	// Limits are per tenant (docs/remote-write.md); off by default.
	Limits limits.Config `yaml:"limits"`

	// Outputs and enrichment (see docs/outputs.md, docs/kubernetes.md).
	Loki           exporter.LokiConfig           `yaml:"loki"`
	RemoteWriteOut exporter.RemoteWriteOutConfig `yaml:"remote_write_out"`
	Alertmanager   exporter.AlertmanagerConfig   `yaml:"alertmanager"`
	Kubernetes     k8s.Config                    `yaml:"kubernetes"`

	// Backfill warms series from a store's history (docs/backfill.md); off by default.
	Backfill backfill.Config `yaml:"backfill"`
}

// ModelConfig selects the model and how ONNX Runtime runs it.
type ModelConfig struct {
	// Dir is a directory holding model.onnx and model.json; empty uses the
	// model embedded in the binary. The directory is watched for new versions.
	Dir string `yaml:"dir"`
	// ReloadInterval is how often Dir is checked for a new model version.
	ReloadInterval model.Duration `yaml:"reload_interval"`
	// IntraOpThreads sizes ONNX Runtime's intra-op thread pool (0: one per
	// core). The default, 1, leaves the other cores to the receiver: the
	// small LSTM scores as many windows per second on one thread as on two.
	IntraOpThreads int `yaml:"intra_op_threads"`
	// AllowSpinning lets idle ONNX Runtime threads busy-wait for the next
	// batch, which burns a core between batches; off by default.
	AllowSpinning bool `yaml:"allow_spinning"`
	// RuntimeLibrary is the path of libonnxruntime.so; empty searches the
	// usual places (see docs/model.md).
	RuntimeLibrary string `yaml:"runtime_library"`
}

// ExporterConfig configures the /metrics outputs.
type ExporterConfig struct {
	LabelNames exporter.LabelNames `yaml:"label_names"`
}

// Default returns the configuration used for keys the file leaves out.
func Default() Config {
	return Config{
		Detector:    detector.DefaultConfig,
		RemoteWrite: remotewrite.DefaultConfig(),
		Kafka:       kafka.DefaultConfig(),
		Model: ModelConfig{
			ReloadInterval: model.Duration(30 * time.Second),
			IntraOpThreads: 1,
		},
		Exporter: ExporterConfig{LabelNames: exporter.DefaultLabelNames},
		API:      api.DefaultConfig(),

		Loki:           exporter.DefaultLokiConfig(),
		RemoteWriteOut: exporter.DefaultRemoteWriteOutConfig(),
		Alertmanager:   exporter.DefaultAlertmanagerConfig(),
		Kubernetes:     k8s.DefaultConfig(),
		Backfill:       backfill.DefaultConfig(),
	}
}

// Load reads and validates the file at path; an empty path gives the defaults.
func Load(path string) (*Config, error) {
	if path == "" {
		cfg := Default()
		return &cfg, cfg.Validate()
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read config file: %w", err)
	}
	cfg, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("cannot load config file %s: %w", path, err)
	}
	return cfg, nil
}

// Parse parses and validates YAML; unknown keys are errors.
func Parse(b []byte) (*Config, error) {
	cfg := Default()
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, errEOF(err)) {
		return nil, fmt.Errorf("cannot parse YAML: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// errEOF lets an empty document through: yaml.v3 reports it as io.EOF.
func errEOF(err error) error {
	if err != nil && err.Error() == "EOF" {
		return err
	}
	return errors.New("not EOF")
}

// Validate checks every section and parses the detector selectors.
func (c *Config) Validate() error {
	var errs []error
	sel, err := ParseSelectors(c.Detector.Selectors)
	if err != nil {
		errs = append(errs, fmt.Errorf("detector.selectors: %w", err))
	}
	c.Detector.Selection = sel
	for i := range c.Detector.DeviationOverrides {
		o := &c.Detector.DeviationOverrides[i]
		if o.Selector == "" {
			continue // detector.Config.Validate names the key
		}
		sel, err := ParseSelectors([]string{o.Selector})
		if err != nil {
			errs = append(errs, fmt.Errorf("detector.deviation_overrides[%d].selector: %w", i, err))
			continue
		}
		o.Match = sel[0]
	}
	if err := c.Detector.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.RemoteWrite.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Limits.Validate(); err != nil {
		errs = append(errs, err)
	}
	for t := range c.Limits.Overrides {
		if err := remotewrite.ValidateTenant(t); err != nil && t != "" {
			errs = append(errs, fmt.Errorf("limits.overrides[%q]: %w", t, err))
		}
	}
	if c.Limits.Enabled() {
		c.Detector.TenantLimits = &c.Limits
		c.RemoteWrite.TenantLimits = &c.Limits
	} else {
		c.Detector.TenantLimits, c.RemoteWrite.TenantLimits = nil, nil
	}
	if err := c.Kafka.Validate(); err != nil {
		errs = append(errs, err)
	}
	for i := range c.Backfill.Startup {
		if c.Backfill.Startup[i].Tenant == "" {
			c.Backfill.Startup[i].Tenant = c.RemoteWrite.DefaultTenant
		}
	}
	if err := c.Backfill.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.API.Validate(); err != nil {
		errs = append(errs, err)
	}
	for _, v := range []interface{ Validate() error }{&c.Loki, &c.RemoteWriteOut, &c.Alertmanager, &c.Kubernetes} {
		if err := v.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Model.ReloadInterval <= 0 {
		errs = append(errs, errors.New("model.reload_interval must be > 0"))
	}
	if c.Model.IntraOpThreads < 0 {
		errs = append(errs, errors.New("model.intra_op_threads must be >= 0"))
	}
	ln := c.Exporter.LabelNames
	for key, v := range map[string]string{"metric": ln.Metric, "tenant": ln.Tenant, "model": ln.Model} {
		if !legacyLabelName.MatchString(v) || v == detector.MetricNameLabel {
			errs = append(errs, fmt.Errorf("exporter.label_names.%s: invalid label name %q", key, v))
		}
	}
	return errors.Join(errs...)
}

// legacyLabelName keeps the added output labels usable by every PromQL
// engine and remote-write receiver, including ones without UTF-8 names.
var legacyLabelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// ParseSelectors parses PromQL series selectors such as
// `{job="api", __name__=~"http_.*"}` into a detector.Selection.
func ParseSelectors(in []string) (detector.Selection, error) {
	var out detector.Selection
	for _, s := range in {
		ms, err := parser.NewParser(parser.Options{}).ParseMetricSelector(s)
		if err != nil {
			return nil, fmt.Errorf("cannot parse selector %q: %w", s, err)
		}
		var sel detector.Selector
		for _, m := range ms {
			dm, err := detector.NewMatcher(matchType(m.Type), m.Name, m.Value)
			if err != nil {
				return nil, err
			}
			sel = append(sel, dm)
		}
		out = append(out, sel)
	}
	return out, nil
}

func matchType(t labels.MatchType) detector.MatchType {
	switch t {
	case labels.MatchNotEqual:
		return detector.MatchNotEqual
	case labels.MatchRegexp:
		return detector.MatchRegexp
	case labels.MatchNotRegexp:
		return detector.MatchNotRegexp
	}
	return detector.MatchEqual
}
