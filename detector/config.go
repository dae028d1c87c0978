package detector

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/common/model"
)

// Config configures the detector. YAML keys live under `detector:`.
type Config struct {
	// MaxSeries caps the number of active series; samples of new series past
	// the cap are dropped and counted (reason series_limit).
	MaxSeries int `yaml:"max_series"`
	// SeriesIdleTimeout expires series that received no sample for that long.
	SeriesIdleTimeout model.Duration `yaml:"series_idle_timeout"`
	// BatchSize is the most windows one ONNX Runtime call scores.
	BatchSize int `yaml:"batch_size"`
	// InferenceNice is the nice value (0-19) of the thread that runs
	// inference (Linux): above 0, receiving samples takes precedence over
	// scoring them when both compete for the CPU. 0 keeps the process's priority.
	// With model.intra_op_threads above 1, ONNX Runtime's own pool threads
	// keep the process's priority.
	InferenceNice int `yaml:"inference_nice"`
	// BatchInterval is how long pending windows may wait for a batch to fill.
	BatchInterval model.Duration `yaml:"batch_interval"`
	// AnomalyCloseAfter closes an anomaly once its series has scored below the
	// threshold for this long (in sample time).
	AnomalyCloseAfter model.Duration `yaml:"anomaly_close_after"`
	// AnomalyCloseBelow is the score under which an open anomaly counts as
	// calm (hysteresis): it opens at scoring.threshold but stays open while
	// the score stays at or above this, so a score wavering around the
	// threshold is one anomaly, not many. Must not exceed the threshold;
	// equal to it turns hysteresis off.
	AnomalyCloseBelow float64 `yaml:"anomaly_close_below"`
	// HistoryPoints is how many recent results a series keeps for the API
	// once it has had an anomaly (32 bytes per point); 0 turns history off.
	HistoryPoints int `yaml:"history_points"`
	// Selectors are PromQL series selectors; a series is scored when any of
	// them matches. Empty selects every series. Parsed by the caller into
	// Selection.
	Selectors []string      `yaml:"selectors,omitempty"`
	Scoring   ScoringConfig `yaml:"scoring"`
	// DeviationOverrides set the direction and minimum deviations of the
	// series a selector matches, e.g. `up` for latencies and a relative
	// minimum for nearly flat gauges. The first matching entry wins; series
	// no entry matches use scoring.direction and scoring.min_*_deviation.
	DeviationOverrides []DeviationOverride `yaml:"deviation_overrides,omitempty"`
	// EntityLabels name the labels whose values identify the entity a
	// series belongs to (a scrape target by default): the series of one
	// entity corroborate (or fail to corroborate) each other's surprising
	// samples (scoring.corroboration_lift). A series lacking any of them belongs to
	// no entity. Empty turns corroboration off.
	EntityLabels []string `yaml:"entity_labels,omitempty"`
	// CounterRate scores a counter on its per-second increase instead of its
	// raw value (counter.go): a series its input says is a counter
	// (Remote-Write 2.0 metadata, or its family's type in Remote-Write 1.0
	// metadata, metadata.go) or, without that, whose name ends in _total,
	// _sum, _count or _bucket. Its expected value and band are then
	// per-second rates too.
	CounterRate bool `yaml:"counter_rate"`
	// ChurnLabels name the labels whose values change when a workload's
	// process is replaced (a pod rolled out, rescheduled or restarted), the
	// first the one that names the replica (pod): a new series that has it
	// and differs from a live one only in these labels starts from that
	// one's calibration (successor.go). Empty turns it off.
	ChurnLabels []string `yaml:"churn_labels,omitempty"`
	// MaxMetricFamilies caps the metric family types kept from senders'
	// metadata (Remote-Write 1.0 metadata requests, metadata.go), over all
	// tenants; families past it are counted and their series typed by name.
	MaxMetricFamilies int `yaml:"max_metric_families"`
	// CatchUp bounds the backlogs through which samples arriving faster
	// than inference are still scored, in order (catchup.go).
	CatchUp CatchUpConfig `yaml:"catch_up"`

	// Selection is the parsed form of Selectors.
	Selection Selection `yaml:"-"`
	// TenantLimits gives the per-tenant series limits (the limits section,
	// set by the caller); nil: none.
	TenantLimits TenantLimits `yaml:"-"`
	// NewSeries, when set, is called with each series the detector starts
	// tracking from a live sample and that sample's timestamp, under the
	// series' shard lock: it must not block or call into the detector
	// (internal/backfill queues the series to warm from history).
	NewSeries func(tenant string, lbls Labels, firstTs int64) `yaml:"-"`
}

// DefaultConfig is the detector configuration used when none is given.
var DefaultConfig = Config{
	MaxSeries:         1_000_000,
	SeriesIdleTimeout: model.Duration(15 * time.Minute),
	BatchSize:         1024,
	BatchInterval:     model.Duration(100 * time.Millisecond),
	InferenceNice:     10,
	AnomalyCloseAfter: model.Duration(5 * time.Minute),
	AnomalyCloseBelow: 0.15,
	HistoryPoints:     120,
	EntityLabels:      []string{"job", "instance"},
	ChurnLabels:       []string{"pod", "instance"},
	CounterRate:       true,
	MaxMetricFamilies: 100_000,
	Scoring:           DefaultScoringConfig,
	CatchUp:           DefaultCatchUpConfig,
}

// maxDeviationOverrides bounds detector.deviation_overrides: a series keeps
// the index of its entry in 16 bits, and every new series is matched
// against the entries in turn.
const maxDeviationOverrides = 1000

// DeviationOverride is one entry of detector.deviation_overrides. Fields
// left out take the values of detector.scoring.
type DeviationOverride struct {
	// Selector is a PromQL series selector; the caller parses it into Match
	// (internal/config does).
	Selector        string     `yaml:"selector"`
	Direction       *Direction `yaml:"direction,omitempty"`
	MinAbsDeviation *float64   `yaml:"min_abs_deviation,omitempty"`
	MinRelDeviation *float64   `yaml:"min_rel_deviation,omitempty"`
	// MetricType scores the matched series as a counter (on its rate) or
	// a gauge (as sent), whatever their metadata or name say and whatever
	// detector.counter_rate is: a gauge named like a counter whose sender
	// sends no metadata, or a counter without the suffixes.
	MetricType *MetricType `yaml:"metric_type,omitempty"`

	Match Selector `yaml:"-"`
}

// deviationGate is the direction and minimum deviations one series is
// scored with.
type deviationGate struct {
	direction      Direction
	minAbs, minRel float64
	// kind is the metric type the series is scored as
	// (DeviationOverride.MetricType); MetricTypeUnknown leaves it to
	// metadata and names.
	kind MetricType
}

// deviationGates resolves the configuration into gates: index 0 is
// detector.scoring's, index i+1 that of deviation_overrides[i].
func (c *Config) deviationGates() []deviationGate {
	base := deviationGate{direction: c.Scoring.Direction, minAbs: c.Scoring.MinAbsDeviation, minRel: c.Scoring.MinRelDeviation}
	gates := []deviationGate{base}
	for _, o := range c.DeviationOverrides {
		g := base
		if o.Direction != nil {
			g.direction = *o.Direction
		}
		if o.MinAbsDeviation != nil {
			g.minAbs = *o.MinAbsDeviation
		}
		if o.MinRelDeviation != nil {
			g.minRel = *o.MinRelDeviation
		}
		if o.MetricType != nil {
			g.kind = *o.MetricType
		}
		gates = append(gates, g)
	}
	return gates
}

// gateIndex returns the index in deviationGates of the gate for a series.
func (c *Config) gateIndex(ls Labels) uint16 {
	for i := range c.DeviationOverrides {
		if c.DeviationOverrides[i].Match.Matches(ls) {
			return uint16(i + 1)
		}
	}
	return 0
}

// UnmarshalYAML reads a direction from "up", "down" or "both".
func (d *Direction) UnmarshalYAML(unmarshal func(any) error) error {
	var s string
	if err := unmarshal(&s); err != nil {
		return err
	}
	v, err := ParseDirection(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalYAML writes a direction as text.
func (d Direction) MarshalYAML() (any, error) { return d.String(), nil }

// ParseDirection parses "up", "down" or "both".
func ParseDirection(s string) (Direction, error) {
	switch s {
	case "", "both":
		return DirectionBoth, nil
	case "up":
		return DirectionUp, nil
	case "down":
		return DirectionDown, nil
	}
	return DirectionBoth, fmt.Errorf("unknown direction %q (want up, down or both)", s)
}

// Validate checks the configuration; errors name the YAML key.
func (c *Config) Validate() error {
	var errs []error
	if c.MaxSeries <= 0 {
		errs = append(errs, errors.New("detector.max_series must be > 0"))
	}
	if c.MaxMetricFamilies <= 0 {
		errs = append(errs, errors.New("detector.max_metric_families must be > 0"))
	}
	if c.SeriesIdleTimeout <= 0 {
		errs = append(errs, errors.New("detector.series_idle_timeout must be > 0"))
	}
	if c.BatchSize <= 0 {
		errs = append(errs, errors.New("detector.batch_size must be > 0"))
	}
	if c.BatchInterval <= 0 {
		errs = append(errs, errors.New("detector.batch_interval must be > 0"))
	}
	if c.InferenceNice < 0 || c.InferenceNice > 19 {
		errs = append(errs, errors.New("detector.inference_nice must be in [0, 19]"))
	}
	if c.AnomalyCloseAfter < 0 {
		errs = append(errs, errors.New("detector.anomaly_close_after must be >= 0"))
	}
	if !(c.AnomalyCloseBelow >= 0 && c.AnomalyCloseBelow <= c.Scoring.Threshold) {
		errs = append(errs, fmt.Errorf("detector.anomaly_close_below must be in [0, detector.scoring.threshold (%g)]", c.Scoring.Threshold))
	}
	if c.HistoryPoints < 0 {
		errs = append(errs, errors.New("detector.history_points must be >= 0"))
	}
	s := &c.Scoring
	if s.WarmupSamples < 0 {
		errs = append(errs, errors.New("detector.scoring.warmup_samples must be >= 0"))
	}
	if s.LearningPeriod < 0 {
		errs = append(errs, errors.New("detector.scoring.learning_period must be >= 0"))
	}
	if s.LongWindow < 1 {
		errs = append(errs, errors.New("detector.scoring.long_window must be >= 1"))
	}
	if s.ShortWindow < 1 {
		errs = append(errs, errors.New("detector.scoring.short_window must be >= 1"))
	}
	if !(s.PFloor > 0 && s.PFloor < 1) {
		errs = append(errs, errors.New("detector.scoring.p_floor must be in (0,1)"))
	}
	if !(s.Threshold > 0 && s.Threshold <= 1) {
		errs = append(errs, errors.New("detector.scoring.threshold must be in (0,1]"))
	}
	if s.RangeSurprise < 0 {
		errs = append(errs, errors.New("detector.scoring.range_surprise must be >= 0"))
	}
	if s.RangeMargin < 0 {
		errs = append(errs, errors.New("detector.scoring.range_margin must be >= 0"))
	}
	if !(s.InRangeErrorExcess >= 0 && s.InRangeErrorExcess <= 1) {
		errs = append(errs, errors.New("detector.scoring.in_range_error_excess must be in [0,1]"))
	}
	if s.TransitionSpread < 0 {
		errs = append(errs, errors.New("detector.scoring.transition_spread must be >= 0"))
	}
	if s.ReferenceInterval < 0 {
		errs = append(errs, errors.New("detector.scoring.reference_interval must be >= 0"))
	}
	if s.PointWindow < 0 {
		errs = append(errs, errors.New("detector.scoring.point_window must be >= 0"))
	}
	if !(s.DailyProfileRatio >= 0 && s.DailyProfileRatio <= 1) {
		errs = append(errs, errors.New("detector.scoring.daily_profile_ratio must be in [0,1]"))
	}
	if !(s.CorroborationLift >= 0 && s.CorroborationLift < s.Threshold) {
		errs = append(errs, fmt.Errorf("detector.scoring.corroboration_lift must be in [0, detector.scoring.threshold (%g))", s.Threshold))
	}
	for i, n := range c.EntityLabels {
		if !model.LabelName(n).IsValidLegacy() {
			errs = append(errs, fmt.Errorf("detector.entity_labels[%d]: %q is not a valid label name", i, n))
		}
	}
	if len(c.DeviationOverrides) > maxDeviationOverrides {
		errs = append(errs, fmt.Errorf("detector.deviation_overrides: %d entries, at most %d", len(c.DeviationOverrides), maxDeviationOverrides))
	}
	for i, o := range c.DeviationOverrides {
		key := fmt.Sprintf("detector.deviation_overrides[%d]", i)
		if o.Selector == "" {
			errs = append(errs, fmt.Errorf("%s.selector must not be empty", key))
		}
		if o.MinAbsDeviation != nil && !(*o.MinAbsDeviation >= 0) {
			errs = append(errs, fmt.Errorf("%s.min_abs_deviation must be >= 0", key))
		}
		if o.MinRelDeviation != nil && !(*o.MinRelDeviation >= 0) {
			errs = append(errs, fmt.Errorf("%s.min_rel_deviation must be >= 0", key))
		}
		if o.MetricType != nil && *o.MetricType != MetricTypeCounter && *o.MetricType != MetricTypeGauge {
			errs = append(errs, fmt.Errorf("%s.metric_type must be counter or gauge", key))
		}
	}
	errs = append(errs, c.CatchUp.validate()...)
	if s.MinAbsDeviation < 0 {
		errs = append(errs, errors.New("detector.scoring.min_abs_deviation must be >= 0"))
	}
	if s.MinRelDeviation < 0 {
		errs = append(errs, errors.New("detector.scoring.min_rel_deviation must be >= 0"))
	}
	return errors.Join(errs...)
}
