// Package kafka bridges Sentinel Mesh and Apache Kafka: a consumer that reads
// remote-write and prometheus-kafka-adapter records into the detector, a
// producer that forwards remote-write series to a topic (--target=receiver),
// and a state store that hands series state to the new owner of a partition
// after a rebalance. It uses franz-go (kgo).
package kafka

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"
)

// Config is the kafka section of the configuration. Kafka is off unless
// brokers are set.
type Config struct {
	// Brokers are the seed brokers, host:port.
	Brokers  []string   `yaml:"brokers"`
	ClientID string     `yaml:"client_id"`
	SASL     SASLConfig `yaml:"sasl"`
	TLS      TLSConfig  `yaml:"tls"`
	// TenantHeader is the record header carrying the tenant, written by the
	// producer and read by the consumer (case-insensitive).
	TenantHeader string `yaml:"tenant_header"`

	Consumer ConsumerConfig `yaml:"consumer"`
	Producer ProducerConfig `yaml:"producer"`
	State    StateConfig    `yaml:"state"`
}

// SASLConfig authenticates with SASL/PLAIN or SCRAM.
type SASLConfig struct {
	// Mechanism is "", "plain", "scram-sha-256" or "scram-sha-512".
	Mechanism string `yaml:"mechanism"`
	Username  string `yaml:"username"`
	Password  string `yaml:"password"`
	// PasswordFile, if set, is read at start instead of Password.
	PasswordFile string `yaml:"password_file"`
}

// TLSConfig enables TLS to the brokers.
type TLSConfig struct {
	Enabled            bool   `yaml:"enabled"`
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// Record formats.
const (
	FormatAuto          = "auto"
	FormatRemoteWriteV1 = "remote_write_v1"
	FormatRemoteWriteV2 = "remote_write_v2"
	FormatJSON          = "prometheus_kafka_adapter_json"
)

var formats = []string{FormatAuto, FormatRemoteWriteV1, FormatRemoteWriteV2, FormatJSON}

// ConsumerConfig configures the input side (--target=detector, or all).
type ConsumerConfig struct {
	// Topics to consume; or TopicRegex (one of the two).
	Topics     []string `yaml:"topics"`
	TopicRegex string   `yaml:"topic_regex"`
	Group      string   `yaml:"group"`
	// StartOffset is where a group without committed offsets starts:
	// "earliest" or "latest".
	StartOffset string `yaml:"start_offset"`
	// Format is the default record format; Formats overrides it per topic.
	// "auto" reads the content-type / x-prometheus-remote-write-version
	// headers and falls back to sniffing the payload.
	Format  string            `yaml:"format"`
	Formats map[string]string `yaml:"formats"`
	// DefaultTenant is used when a record has no tenant header.
	DefaultTenant string `yaml:"default_tenant"`
	// DeadLetterTopic, if set, receives a copy of every bad record with an
	// x-sentinel-mesh-error header.
	DeadLetterTopic string `yaml:"dead_letter_topic"`
	// MaxPollRecords bounds one batch: records are decoded, appended,
	// flushed and committed per batch.
	MaxPollRecords int `yaml:"max_poll_records"`
	// FetchMaxBytes and MaxConcurrentFetches bound what kgo buffers ahead of
	// the detector; a slow detector stops fetching instead of growing memory.
	FetchMaxBytes        int32          `yaml:"fetch_max_bytes"`
	MaxConcurrentFetches int            `yaml:"max_concurrent_fetches"`
	SessionTimeout       model.Duration `yaml:"session_timeout"`
	RebalanceTimeout     model.Duration `yaml:"rebalance_timeout"`
}

// ProducerConfig configures the output of --target=receiver.
type ProducerConfig struct {
	Topic string `yaml:"topic"`
	// Timeout bounds how long a remote-write request waits for the
	// acknowledgement (acks=all) before answering 503.
	Timeout model.Duration `yaml:"timeout"`
	// Linger batches records for this long before sending (0: none).
	Linger model.Duration `yaml:"linger"`
}

// StateConfig configures the series state handoff on rebalances.
type StateConfig struct {
	// Topic is a compacted topic holding the latest state of every series,
	// keyed by series; empty disables the handoff (new owners start cold).
	Topic string `yaml:"topic"`
	// Partitions and ReplicationFactor are used when the topic is created.
	Partitions        int32 `yaml:"partitions"`
	ReplicationFactor int16 `yaml:"replication_factor"`
	// CheckpointInterval is how often the state of owned series is written;
	// it is also written when partitions are revoked and at shutdown.
	CheckpointInterval model.Duration `yaml:"checkpoint_interval"`
	// RestoreTimeout bounds reading the state of newly assigned partitions;
	// keep it below consumer.rebalance_timeout.
	RestoreTimeout model.Duration `yaml:"restore_timeout"`
	// MaxAge skips state records whose newest sample is older than this at
	// restore (series that stopped long ago).
	MaxAge model.Duration `yaml:"max_age"`
}

// DefaultConfig returns the defaults of every key.
func DefaultConfig() Config {
	return Config{
		ClientID:     "sentinel-mesh",
		TenantHeader: "X-Scope-OrgID",
		Consumer: ConsumerConfig{
			Group:                "sentinel-mesh",
			StartOffset:          "earliest",
			Format:               FormatAuto,
			DefaultTenant:        "default",
			MaxPollRecords:       10_000,
			FetchMaxBytes:        50 << 20,
			MaxConcurrentFetches: 2,
			SessionTimeout:       model.Duration(45 * time.Second),
			RebalanceTimeout:     model.Duration(60 * time.Second),
		},
		Producer: ProducerConfig{
			Topic:   "sentinel-mesh-samples",
			Timeout: model.Duration(10 * time.Second),
		},
		State: StateConfig{
			Topic:              "sentinel-mesh-state",
			Partitions:         16,
			ReplicationFactor:  -1,
			CheckpointInterval: model.Duration(time.Minute),
			RestoreTimeout:     model.Duration(30 * time.Second),
			MaxAge:             model.Duration(time.Hour),
		},
	}
}

// UnmarshalYAML starts from DefaultConfig so omitted keys keep their defaults.
func (c *Config) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultConfig()
	type plain Config
	if err := unmarshal((*plain)(c)); err != nil {
		return fmt.Errorf("cannot parse kafka: %w", err)
	}
	return nil
}

// Enabled reports whether brokers are configured.
func (c Config) Enabled() bool { return len(c.Brokers) > 0 }

// ConsumerEnabled reports whether topics to consume are configured.
func (c Config) ConsumerEnabled() bool {
	return c.Enabled() && (len(c.Consumer.Topics) > 0 || c.Consumer.TopicRegex != "")
}

// Validate reports every invalid field, naming its YAML key.
func (c Config) Validate() error {
	var errs []error
	for i, b := range c.Brokers {
		if !strings.Contains(b, ":") {
			errs = append(errs, fmt.Errorf("kafka.brokers[%d]: %q is not host:port", i, b))
		}
	}
	switch strings.ToLower(c.SASL.Mechanism) {
	case "":
	case "plain", "scram-sha-256", "scram-sha-512":
		if c.SASL.Username == "" {
			errs = append(errs, errors.New("kafka.sasl.username must be set when kafka.sasl.mechanism is set"))
		}
		if c.SASL.Password != "" && c.SASL.PasswordFile != "" {
			errs = append(errs, errors.New("kafka.sasl.password and kafka.sasl.password_file are mutually exclusive"))
		}
	default:
		errs = append(errs, fmt.Errorf("kafka.sasl.mechanism: unknown %q (plain, scram-sha-256, scram-sha-512)", c.SASL.Mechanism))
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		errs = append(errs, errors.New("kafka.tls.cert_file and kafka.tls.key_file must be set together"))
	}
	if c.TenantHeader == "" {
		errs = append(errs, errors.New("kafka.tenant_header must not be empty"))
	}
	cc := c.Consumer
	if len(cc.Topics) > 0 && cc.TopicRegex != "" {
		errs = append(errs, errors.New("kafka.consumer.topics and kafka.consumer.topic_regex are mutually exclusive"))
	}
	if cc.TopicRegex != "" {
		if _, err := regexp.Compile(cc.TopicRegex); err != nil {
			errs = append(errs, fmt.Errorf("kafka.consumer.topic_regex: %w", err))
		}
	}
	if cc.Group == "" {
		errs = append(errs, errors.New("kafka.consumer.group must not be empty"))
	}
	if cc.StartOffset != "earliest" && cc.StartOffset != "latest" {
		errs = append(errs, fmt.Errorf("kafka.consumer.start_offset: %q is neither earliest nor latest", cc.StartOffset))
	}
	if !slices.Contains(formats, cc.Format) {
		errs = append(errs, fmt.Errorf("kafka.consumer.format: unknown %q (%s)", cc.Format, strings.Join(formats, ", ")))
	}
	for t, f := range cc.Formats {
		if !slices.Contains(formats, f) {
			errs = append(errs, fmt.Errorf("kafka.consumer.formats[%s]: unknown %q (%s)", t, f, strings.Join(formats, ", ")))
		}
	}
	if cc.DefaultTenant == "" {
		errs = append(errs, errors.New("kafka.consumer.default_tenant must not be empty"))
	}
	if cc.MaxPollRecords <= 0 {
		errs = append(errs, errors.New("kafka.consumer.max_poll_records must be > 0"))
	}
	if cc.FetchMaxBytes <= 0 {
		errs = append(errs, errors.New("kafka.consumer.fetch_max_bytes must be > 0"))
	}
	if cc.MaxConcurrentFetches <= 0 {
		errs = append(errs, errors.New("kafka.consumer.max_concurrent_fetches must be > 0"))
	}
	if cc.SessionTimeout <= 0 {
		errs = append(errs, errors.New("kafka.consumer.session_timeout must be > 0"))
	}
	if cc.RebalanceTimeout <= 0 {
		errs = append(errs, errors.New("kafka.consumer.rebalance_timeout must be > 0"))
	}
	if c.Producer.Timeout <= 0 {
		errs = append(errs, errors.New("kafka.producer.timeout must be > 0"))
	}
	if c.Producer.Linger < 0 {
		errs = append(errs, errors.New("kafka.producer.linger must be >= 0"))
	}
	if c.State.Topic != "" {
		if c.State.Partitions <= 0 {
			errs = append(errs, errors.New("kafka.state.partitions must be > 0"))
		}
		if c.State.CheckpointInterval <= 0 {
			errs = append(errs, errors.New("kafka.state.checkpoint_interval must be > 0"))
		}
		if c.State.RestoreTimeout <= 0 {
			errs = append(errs, errors.New("kafka.state.restore_timeout must be > 0"))
		}
		if c.State.MaxAge < 0 {
			errs = append(errs, errors.New("kafka.state.max_age must be >= 0"))
		}
	}
	return errors.Join(errs...)
}

// formatFor returns the configured format of topic.
func (c *ConsumerConfig) formatFor(topic string) string {
	if f, ok := c.Formats[topic]; ok {
		return f
	}
	return c.Format
}
