package api

import (
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/prometheus/common/model"
)

// Config configures the HTTP API. YAML keys live under `api:`.
type Config struct {
	// MaxAnomalies is how many anomalies (open or closed) the in-memory store
	// keeps; the oldest is evicted first.
	MaxAnomalies int `yaml:"max_anomalies"`
	// IncidentGroupBy are the labels whose values group anomalies into one
	// incident (e.g. the same namespace and workload).
	IncidentGroupBy []string `yaml:"incident_group_by"`
	// IncidentWindow is how close in time anomalies of one group must open to
	// belong to the same incident.
	IncidentWindow model.Duration `yaml:"incident_window"`
	// MaxSeriesPerQuery bounds the series one /api/v1/series response holds.
	MaxSeriesPerQuery int `yaml:"max_series_per_query"`
}

// Defaults; exported so docs and tests can name them.
const (
	DefaultMaxAnomalies      = 10_000
	DefaultIncidentWindow    = 5 * time.Minute
	DefaultMaxSeriesPerQuery = 1_000
)

// DefaultIncidentGroupBy groups anomalies of one workload.
var DefaultIncidentGroupBy = []string{"namespace", "workload", "job"}

// DefaultConfig returns the configuration used when api keys are left out.
func DefaultConfig() Config {
	return Config{
		MaxAnomalies:      DefaultMaxAnomalies,
		IncidentGroupBy:   append([]string(nil), DefaultIncidentGroupBy...),
		IncidentWindow:    model.Duration(DefaultIncidentWindow),
		MaxSeriesPerQuery: DefaultMaxSeriesPerQuery,
	}
}

// UnmarshalYAML starts from DefaultConfig so omitted keys keep their defaults.
func (c *Config) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultConfig()
	type plain Config
	return unmarshal((*plain)(c))
}

// maxAnomaliesLimit keeps a typo from reserving gigabytes.
const maxAnomaliesLimit = 10_000_000

var labelNameRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// Validate checks the configuration; errors name the YAML key.
func (c *Config) Validate() error {
	var errs []error
	if c.MaxAnomalies <= 0 || c.MaxAnomalies > maxAnomaliesLimit {
		errs = append(errs, fmt.Errorf("api.max_anomalies must be in [1,%d]", maxAnomaliesLimit))
	}
	if len(c.IncidentGroupBy) == 0 {
		errs = append(errs, errors.New("api.incident_group_by must name at least one label"))
	}
	for _, n := range c.IncidentGroupBy {
		if !labelNameRE.MatchString(n) {
			errs = append(errs, fmt.Errorf("api.incident_group_by: invalid label name %q", n))
		}
	}
	if c.IncidentWindow <= 0 {
		errs = append(errs, errors.New("api.incident_window must be > 0"))
	}
	if c.MaxSeriesPerQuery <= 0 {
		errs = append(errs, errors.New("api.max_series_per_query must be > 0"))
	}
	return errors.Join(errs...)
}
