// Package backfill warms series from a Prometheus-compatible store's
// history (Prometheus, Thanos, Mimir, VictoriaMetrics), so a fresh or
// restarted detector scores a series' first live sample instead of
// waiting out its warm-up: at start for the series of configured selectors
// that have no state, and for every new series the detector sees.
package backfill

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
)

// Protocols a store is read with.
const (
	// ProtocolQuery reads raw samples with an instant query of a range
	// selector (/api/v1/query, `{…}[6h]`): every store named above serves it.
	ProtocolQuery = "query"
	// ProtocolRemoteRead reads with Prometheus remote-read (/api/v1/read,
	// SAMPLES responses), several series per request: Prometheus and Mimir.
	ProtocolRemoteRead = "remote_read"
)

// Config is the `backfill:` section. An empty URL turns backfill off.
type Config struct {
	// URL is the store's Prometheus API root: the part before /api/v1/…
	// (http://prometheus:9090, http://mimir/prometheus,
	// http://vmselect:8481/select/0/prometheus).
	URL string `yaml:"url"`
	// Protocol is query or remote_read.
	Protocol string `yaml:"protocol"`
	// Lookback is how much history a series is warmed from. The default
	// covers detector.scoring.learning_period (a day), so a warmed series'
	// first live sample is scored.
	Lookback model.Duration `yaml:"lookback"`
	// TenantHeader carries the series' tenant on every request (Mimir,
	// Thanos, Cortex); empty sends none.
	TenantHeader string `yaml:"tenant_header"`
	// Startup lists the series to warm when the server starts: those of
	// each selector, for its tenant, that have no state yet.
	Startup []StartupConfig `yaml:"startup"`
	// OnNewSeries warms each series the detector starts tracking from a
	// live sample; that first sample is then scored.
	OnNewSeries bool `yaml:"on_new_series"`
	// NewSeriesBatchWait is how long new series are collected into one
	// request before it is sent.
	NewSeriesBatchWait model.Duration `yaml:"new_series_batch_wait"`
	// MaxSeriesPerRequest bounds the series read by one remote-read
	// request and warmed together (query reads one series per request).
	MaxSeriesPerRequest int `yaml:"max_series_per_request"`
	// Concurrency is the most requests in flight to the store.
	Concurrency int `yaml:"concurrency"`
	// RequestsPerSecond is the most requests per second to the store.
	RequestsPerSecond float64 `yaml:"requests_per_second"`
	// QueueSize bounds the new series waiting to be read; beyond it they
	// are not warmed (they warm up from live samples) and are counted.
	QueueSize int `yaml:"queue_size"`
	// Timeout bounds one request; a request that fails with a transport
	// error, 429 or 5xx is retried MaxRetries times, backing off from 1 s.
	Timeout    model.Duration `yaml:"timeout"`
	MaxRetries int            `yaml:"max_retries"`
	// HTTPClientConfig holds basic_auth, authorization (bearer),
	// tls_config, http_headers, proxy_url, ...
	HTTPClientConfig config.HTTPClientConfig `yaml:",inline"`
}

// StartupConfig is one entry of backfill.startup.
type StartupConfig struct {
	// Tenant the series belong to in this detector, sent in tenant_header;
	// empty: remote_write.default_tenant.
	Tenant string `yaml:"tenant"`
	// Selectors are PromQL series selectors, e.g. `{job="api"}`.
	Selectors []string `yaml:"selectors"`
}

// DefaultConfig returns the section used for omitted keys.
func DefaultConfig() Config {
	return Config{
		Protocol:            ProtocolQuery,
		Lookback:            model.Duration(25 * time.Hour),
		TenantHeader:        "X-Scope-OrgID",
		OnNewSeries:         true,
		NewSeriesBatchWait:  model.Duration(time.Second),
		MaxSeriesPerRequest: 100,
		Concurrency:         2,
		RequestsPerSecond:   10,
		QueueSize:           100_000,
		Timeout:             model.Duration(time.Minute),
		MaxRetries:          3,
		HTTPClientConfig:    config.DefaultHTTPClientConfig,
	}
}

// UnmarshalYAML starts from the defaults so omitted keys keep them.
func (c *Config) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultConfig()
	type plain Config
	if err := unmarshal((*plain)(c)); err != nil {
		return fmt.Errorf("cannot parse backfill: %w", err)
	}
	return nil
}

// Enabled reports whether backfill is configured.
func (c *Config) Enabled() bool { return c.URL != "" }

// Validate reports every invalid field, naming its YAML key.
func (c *Config) Validate() error {
	if !c.Enabled() {
		return nil
	}
	var errs []error
	if u, err := url.Parse(c.URL); err != nil {
		errs = append(errs, fmt.Errorf("backfill.url: cannot parse URL: %w", err))
	} else if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("backfill.url: %q must be an http or https URL with a host", c.URL))
	}
	if c.Protocol != ProtocolQuery && c.Protocol != ProtocolRemoteRead {
		errs = append(errs, fmt.Errorf("backfill.protocol: unknown protocol %q (want %s or %s)", c.Protocol, ProtocolQuery, ProtocolRemoteRead))
	}
	if c.Lookback <= 0 {
		errs = append(errs, errors.New("backfill.lookback must be > 0"))
	}
	for i, s := range c.Startup {
		if len(s.Selectors) == 0 {
			errs = append(errs, fmt.Errorf("backfill.startup[%d].selectors must not be empty", i))
		}
		for j, sel := range s.Selectors {
			if _, err := parser.NewParser(parser.Options{}).ParseMetricSelector(sel); err != nil {
				errs = append(errs, fmt.Errorf("backfill.startup[%d].selectors[%d]: cannot parse selector %q: %w", i, j, sel, err))
			}
		}
	}
	if c.NewSeriesBatchWait <= 0 {
		errs = append(errs, errors.New("backfill.new_series_batch_wait must be > 0"))
	}
	if c.MaxSeriesPerRequest <= 0 {
		errs = append(errs, errors.New("backfill.max_series_per_request must be > 0"))
	}
	if c.Concurrency <= 0 {
		errs = append(errs, errors.New("backfill.concurrency must be > 0"))
	}
	if !(c.RequestsPerSecond > 0) {
		errs = append(errs, errors.New("backfill.requests_per_second must be > 0"))
	}
	if c.QueueSize <= 0 {
		errs = append(errs, errors.New("backfill.queue_size must be > 0"))
	}
	if c.Timeout <= 0 {
		errs = append(errs, errors.New("backfill.timeout must be > 0"))
	}
	if c.MaxRetries < 0 {
		errs = append(errs, errors.New("backfill.max_retries must be >= 0"))
	}
	if err := c.HTTPClientConfig.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("backfill: invalid HTTP client settings: %w", err))
	}
	return errors.Join(errs...)
}
