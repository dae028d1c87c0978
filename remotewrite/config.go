// Package remotewrite receives Prometheus Remote-Write 1.0 and 2.0 requests
// over HTTP, decodes them with allocation-free protobuf decoders, validates
// every series and hands the valid ones to a detector.Appender.
//
// Data flows one way: remotewrite imports detector, never the reverse.
package remotewrite

import (
	"errors"
	"fmt"

	"github.com/sentinel-mesh/sentinel-mesh/limits"
)

// Config is the remote_write section of the sentinel-mesh configuration.
type Config struct {
	// MaxBodyBytes bounds the snappy-compressed request body. Larger bodies
	// get 413 without being read to the end.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// MaxDecodedBytes bounds the uncompressed protobuf. It is checked against
	// the length the snappy header announces, before anything is decoded, so
	// a decompression bomb costs only the compressed read.
	MaxDecodedBytes int64 `yaml:"max_decoded_bytes"`
	// MaxLabelsPerSeries rejects series with more labels (including __name__).
	MaxLabelsPerSeries int `yaml:"max_labels_per_series"`
	// MaxLabelNameLength and MaxLabelValueLength are in bytes.
	MaxLabelNameLength  int `yaml:"max_label_name_length"`
	MaxLabelValueLength int `yaml:"max_label_value_length"`
	// MaxSamplesPerRequest bounds float samples plus histogram samples of one
	// request; a request over it is rejected as a whole with 413.
	MaxSamplesPerRequest int `yaml:"max_samples_per_request"`
	// TenantHeader names the request header carrying the tenant ID.
	TenantHeader string `yaml:"tenant_header"`
	// DefaultTenant is used when the tenant header is absent or empty.
	DefaultTenant string `yaml:"default_tenant"`
	// AcceptNativeHistograms decides what happens to native histogram
	// samples. true (default): they are accepted and scored as the two
	// series PromQL's histogram_count() and histogram_sum() give, named
	// <name>_count and <name>_sum (counters, scored on their rates; a gauge
	// histogram's are gauges), and reported in
	// X-Prometheus-Remote-Write-Histograms-Written. false: they are
	// rejected, counted, and the response is 400 naming how many were
	// rejected, after the float series of the same request were appended
	// (a partial write per the 2.0 spec).
	AcceptNativeHistograms bool `yaml:"accept_native_histograms"`
	// MaxErrorsInResponse bounds how many individual problems a 400 response
	// body lists; the counts of all problems are always included.
	MaxErrorsInResponse int `yaml:"max_errors_in_response"`
	// MaxConcurrentRequests bounds requests being read, decoded and
	// appended at once; 0 means unbounded. Each request may hold up to
	// max_body_bytes + max_decoded_bytes of buffers, so this is what bounds
	// the input's memory. Requests over it wait (body unread) until a slot
	// frees or the sender gives up, like VictoriaMetrics' maxConcurrentInserts.
	MaxConcurrentRequests int `yaml:"max_concurrent_requests"`

	// TenantLimits are the per-tenant limits (the limits section, set by
	// the caller): the handler enforces max_samples_per_second with 429 and
	// reports max_series, which the detector enforces, in 400 bodies. nil:
	// no limits.
	TenantLimits *limits.Config `yaml:"-"`
}

// Defaults; exported so docs and tests can name them.
const (
	DefaultMaxBodyBytes          = 32 << 20
	DefaultMaxDecodedBytes       = 128 << 20
	DefaultMaxLabelsPerSeries    = 100
	DefaultMaxLabelNameLength    = 1024
	DefaultMaxLabelValueLength   = 4096
	DefaultMaxSamplesPerRequest  = 1_000_000
	DefaultTenantHeader          = "X-Scope-OrgID"
	DefaultTenant                = "default"
	DefaultMaxErrorsInResponse   = 5
	DefaultMaxConcurrentRequests = 16
)

// DefaultConfig returns the configuration used when remote_write keys are
// left out.
func DefaultConfig() Config {
	return Config{
		MaxBodyBytes:           DefaultMaxBodyBytes,
		MaxDecodedBytes:        DefaultMaxDecodedBytes,
		MaxLabelsPerSeries:     DefaultMaxLabelsPerSeries,
		MaxLabelNameLength:     DefaultMaxLabelNameLength,
		MaxLabelValueLength:    DefaultMaxLabelValueLength,
		MaxSamplesPerRequest:   DefaultMaxSamplesPerRequest,
		TenantHeader:           DefaultTenantHeader,
		DefaultTenant:          DefaultTenant,
		MaxErrorsInResponse:    DefaultMaxErrorsInResponse,
		MaxConcurrentRequests:  DefaultMaxConcurrentRequests,
		AcceptNativeHistograms: true,
	}
}

// UnmarshalYAML starts from DefaultConfig so omitted keys keep their
// defaults (the yaml.v2/v3 Unmarshaler convention Prometheus uses).
func (c *Config) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultConfig()
	type plain Config
	if err := unmarshal((*plain)(c)); err != nil {
		return fmt.Errorf("cannot parse remote_write: %w", err)
	}
	return nil
}

// Validate reports every invalid field, naming its YAML key.
func (c Config) Validate() error {
	var errs []error
	if c.MaxBodyBytes <= 0 {
		errs = append(errs, errors.New("remote_write.max_body_bytes must be > 0"))
	}
	if c.MaxDecodedBytes <= 0 {
		errs = append(errs, errors.New("remote_write.max_decoded_bytes must be > 0"))
	} else if c.MaxDecodedBytes > maxSnappyDecodedLen {
		errs = append(errs, fmt.Errorf("remote_write.max_decoded_bytes must be <= %d (snappy block format limit)", int64(maxSnappyDecodedLen)))
	}
	if c.MaxBodyBytes > 0 && c.MaxDecodedBytes > 0 && c.MaxDecodedBytes < c.MaxBodyBytes {
		errs = append(errs, errors.New("remote_write.max_decoded_bytes must be >= remote_write.max_body_bytes"))
	}
	if c.MaxLabelsPerSeries <= 0 {
		errs = append(errs, errors.New("remote_write.max_labels_per_series must be > 0"))
	}
	if c.MaxLabelNameLength <= 0 {
		errs = append(errs, errors.New("remote_write.max_label_name_length must be > 0"))
	}
	if c.MaxLabelValueLength <= 0 {
		errs = append(errs, errors.New("remote_write.max_label_value_length must be > 0"))
	}
	if c.MaxSamplesPerRequest <= 0 {
		errs = append(errs, errors.New("remote_write.max_samples_per_request must be > 0"))
	}
	if c.TenantHeader == "" {
		errs = append(errs, errors.New("remote_write.tenant_header must not be empty"))
	}
	if err := validateTenant(c.DefaultTenant); err != nil {
		errs = append(errs, fmt.Errorf("remote_write.default_tenant is invalid: %w", err))
	}
	if c.MaxConcurrentRequests < 0 {
		errs = append(errs, errors.New("remote_write.max_concurrent_requests must be >= 0 (0: unbounded)"))
	}
	if c.MaxErrorsInResponse < 0 {
		errs = append(errs, errors.New("remote_write.max_errors_in_response must be >= 0"))
	}
	return errors.Join(errs...)
}

// ValidateTenant applies the tenant ID rules of the tenant header, for
// configuration that names tenants (limits.overrides).
func ValidateTenant(t string) error { return validateTenant(t) }

// maxSnappyDecodedLen is the largest length a snappy block header may
// announce that golang/snappy will decode (it rejects anything >= 2^32-1).
const maxSnappyDecodedLen = 1<<32 - 2

// MaxTenantLength follows Cortex/Mimir tenant ID rules so the same headers
// work against either.
const MaxTenantLength = 150

// validateTenant applies the Cortex/Mimir tenant ID rules: 1..150 bytes of
// [A-Za-z0-9!-_.*'()], and not "." or "..". Tenants end up in label values
// and log lines, so anything looser would need escaping downstream.
func validateTenant(t string) error {
	if t == "" {
		return errors.New("tenant ID is empty")
	}
	if len(t) > MaxTenantLength {
		return fmt.Errorf("tenant ID is %d bytes long, max %d", len(t), MaxTenantLength)
	}
	if t == "." || t == ".." {
		return fmt.Errorf("tenant ID %q is not allowed", t)
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '!', c == '-', c == '_', c == '.', c == '*', c == '\'', c == '(', c == ')':
		default:
			return fmt.Errorf("tenant ID contains unsupported character %q at byte %d (allowed: A-Z a-z 0-9 ! - _ . * ' ( ))", c, i)
		}
	}
	return nil
}
