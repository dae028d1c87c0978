package remotewrite

import (
	"errors"
	"fmt"
	"math"
	"unicode/utf8"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
)

// Problem says why a series was rejected. The zero value means valid.
type Problem uint8

const (
	ProblemNone Problem = iota
	ProblemMissingMetricName
	ProblemEmptyLabelName
	ProblemInvalidUTF8LabelName
	ProblemInvalidUTF8LabelValue
	ProblemDuplicateLabelName
	ProblemUnsortedLabels
	ProblemTooManyLabels
	ProblemLabelNameTooLong
	ProblemLabelValueTooLong
	ProblemInvalidSymbolRef // v2: a labels_refs entry is >= len(symbols)
	ProblemOddLabelsRefs    // v2: labels_refs has an odd length
	ProblemEmptySeries      // no samples, histograms or exemplars
	numProblems
)

// String returns the problem as used in the reason label of
// series_invalid_total and in response bodies.
func (p Problem) String() string {
	switch p {
	case ProblemNone:
		return "none"
	case ProblemMissingMetricName:
		return "missing_metric_name"
	case ProblemEmptyLabelName:
		return "empty_label_name"
	case ProblemInvalidUTF8LabelName:
		return "invalid_utf8_label_name"
	case ProblemInvalidUTF8LabelValue:
		return "invalid_utf8_label_value"
	case ProblemDuplicateLabelName:
		return "duplicate_label_name"
	case ProblemUnsortedLabels:
		return "unsorted_labels"
	case ProblemTooManyLabels:
		return "too_many_labels"
	case ProblemLabelNameTooLong:
		return "label_name_too_long"
	case ProblemLabelValueTooLong:
		return "label_value_too_long"
	case ProblemInvalidSymbolRef:
		return "invalid_symbol_ref"
	case ProblemOddLabelsRefs:
		return "odd_labels_refs"
	case ProblemEmptySeries:
		return "empty_series"
	default:
		return "unknown"
	}
}

// Limits are the per-series and per-request bounds the decoders enforce.
type Limits struct {
	MaxLabelsPerSeries   int
	MaxLabelNameLength   int
	MaxLabelValueLength  int
	MaxSamplesPerRequest int
	// NativeHistograms derives from each series of native histograms the
	// two float series the detector scores (accept_native_histograms,
	// deriveHistogramSeries); false leaves the histograms undecoded.
	NativeHistograms bool
}

func (c Config) limits() Limits {
	return Limits{
		MaxLabelsPerSeries:   c.MaxLabelsPerSeries,
		MaxLabelNameLength:   c.MaxLabelNameLength,
		MaxLabelValueLength:  c.MaxLabelValueLength,
		MaxSamplesPerRequest: c.MaxSamplesPerRequest,
		NativeHistograms:     c.AcceptNativeHistograms,
	}
}

// ErrTooManySamples is returned (wrapped) when a request carries more samples
// than Limits.MaxSamplesPerRequest.
var ErrTooManySamples = errors.New("too many samples in request")

// Series is one decoded time series.
type Series struct {
	// Labels are sorted and unique when Problem is ProblemNone. Labels with
	// an empty value are left out: in Prometheus an empty label value is the
	// same as an absent label.
	Labels  detector.Labels
	Samples []detector.Sample
	// Type is the series' metadata type (v2), as the detector reads it:
	// counters are scored on their rate (detector.counter_rate).
	Type detector.MetricType
	// Histograms and Exemplars count the native histogram samples and
	// exemplars of the series. Exemplars are not decoded further; with
	// Limits.NativeHistograms a histogram's count, sum and timestamp are,
	// into the series derived from it (FromHistogram).
	Histograms int
	Exemplars  int
	// FromHistogram marks a float series derived from the native
	// histograms of the series before it in Series: their count or sum
	// (deriveHistogramSeries). Its samples are the histograms' and are
	// reported as histograms, not as float samples.
	FromHistogram bool
	histograms    []histogramSample

	Problem Problem
	// Detail locates the problem: the offending label name (or value for
	// value problems), possibly invalid UTF-8; render it with %q. For
	// ProblemInvalidSymbolRef and ProblemTooManyLabels, DetailNum holds the
	// bad ref or the label count.
	Detail    string
	DetailNum uint64
}

// WriteRequest is a decoded Remote-Write 1.0 or 2.0 request.
//
// Buffer ownership: every string in a WriteRequest (label names and values,
// symbols, Detail) is an unsafe view into the buffer passed to DecodeV1 or
// DecodeV2, and Labels/Samples are views into pools owned by the
// WriteRequest. They stay valid until the caller modifies that buffer or
// calls Reset/Decode* again. The handler keeps buffer and WriteRequest
// together in one pooled object and hands the Appender views that it must
// not retain (detector.Appender's contract; the detector clones labels of new
// series).
//
// A WriteRequest is reused across requests: Reset truncates its slices to
// [:0] after clearing them, so after a warm-up decoding allocates nothing.
type WriteRequest struct {
	Series []Series
	// Symbols is the v2 symbol table; empty for v1.
	Symbols []string

	// Families holds the metric family types of a v1 request's metadata
	// (Prometheus sends them in requests of their own); names alias the
	// buffer. Entries without a valid name are left out.
	Families []detector.MetricFamily

	// Totals over all series, valid or not.
	Samples    int
	Histograms int
	Exemplars  int
	Metadata   int

	labelsPool  []detector.Label
	samplesPool []detector.Sample
	histPool    []histogramSample
	refs        []uint32
	// symbolValid[i] says whether Symbols[i] is valid UTF-8. v2 series
	// share symbols, so each is checked once per request instead of once
	// per reference.
	symbolValid []bool
	// many and derived hold the valid float series and those derived from
	// native histograms, for the Appender (appendAll).
	many, derived []detector.SeriesSamples
	// v2Series holds the timeseries fields DecodeV2's first pass found, so
	// the second does not walk the message again.
	v2Series [][]byte
}

// Reset drops all references into the previous buffer and keeps capacity.
func (wr *WriteRequest) Reset() {
	clear(wr.Series)
	wr.Series = wr.Series[:0]
	clear(wr.Symbols)
	wr.Symbols = wr.Symbols[:0]
	clear(wr.labelsPool)
	wr.labelsPool = wr.labelsPool[:0]
	wr.samplesPool = wr.samplesPool[:0]
	wr.histPool = wr.histPool[:0]
	wr.refs = wr.refs[:0]
	wr.symbolValid = wr.symbolValid[:0]
	clear(wr.many)
	wr.many = wr.many[:0]
	clear(wr.derived)
	wr.derived = wr.derived[:0]
	clear(wr.v2Series)
	wr.v2Series = wr.v2Series[:0]
	clear(wr.Families)
	wr.Families = wr.Families[:0]
	wr.Samples, wr.Histograms, wr.Exemplars, wr.Metadata = 0, 0, 0, 0
}

// nextSeries appends a zeroed Series and returns a pointer to it. The pointer
// is only valid until the next call.
func (wr *WriteRequest) nextSeries() *Series {
	if len(wr.Series) < cap(wr.Series) {
		wr.Series = wr.Series[:len(wr.Series)+1]
	} else {
		wr.Series = append(wr.Series, Series{})
	}
	s := &wr.Series[len(wr.Series)-1]
	*s = Series{}
	return s
}

// checkSampleLimit enforces max_samples_per_request. It also bounds the
// number of series by the same figure: a series without samples costs ~100
// bytes of Series for 2 bytes of input, so without this bound a request of
// empty series would amplify max_decoded_bytes ~50x in memory.
func (wr *WriteRequest) checkSampleLimit(lim Limits) error {
	if total := wr.Samples + wr.Histograms; total > lim.MaxSamplesPerRequest {
		return fmt.Errorf("%w: more than %d (remote_write.max_samples_per_request)", ErrTooManySamples, lim.MaxSamplesPerRequest)
	}
	if len(wr.Series) > lim.MaxSamplesPerRequest {
		return fmt.Errorf("%w: more than %d series (remote_write.max_samples_per_request bounds series too)", ErrTooManySamples, lim.MaxSamplesPerRequest)
	}
	if wr.Metadata > lim.MaxSamplesPerRequest {
		return fmt.Errorf("%w: more than %d metadata entries (remote_write.max_samples_per_request bounds them too)", ErrTooManySamples, lim.MaxSamplesPerRequest)
	}
	return nil
}

// DecodeV1 decodes a prometheus.WriteRequest (Remote-Write 1.0) from buf,
// which must stay unmodified while wr is in use. A returned error means the
// message is malformed or over a request limit; per-series problems are
// reported in Series[i].Problem instead.
func (wr *WriteRequest) DecodeV1(buf []byte, lim Limits) error {
	wr.Reset()
	for len(buf) > 0 {
		f, rest, err := nextField(buf)
		if err != nil {
			return fmt.Errorf("cannot decode prometheus.WriteRequest: %w", err)
		}
		buf = rest
		switch f.num {
		case 1: // timeseries
			if f.wire != wireLen {
				return f.wireErr(wireLen, "WriteRequest", "timeseries")
			}
			if err := wr.decodeSeriesV1(f.data, lim); err != nil {
				return fmt.Errorf("cannot decode timeseries %d: %w", len(wr.Series)-1, err)
			}
			if err := wr.checkSampleLimit(lim); err != nil {
				return err
			}
		case 3: // metadata: the metric family types (detector.MetadataAppender)
			if f.wire != wireLen {
				return f.wireErr(wireLen, "WriteRequest", "metadata")
			}
			wr.Metadata++
			fam, err := decodeMetadataV1(f.data)
			if err != nil {
				return fmt.Errorf("cannot decode metadata %d: %w", wr.Metadata-1, err)
			}
			if fam.Name != "" && utf8.ValidString(fam.Name) {
				wr.Families = append(wr.Families, fam)
			}
			if err := wr.checkSampleLimit(lim); err != nil {
				return err
			}
		}
	}
	wr.deriveHistogramSeries(lim)
	return nil
}

func (wr *WriteRequest) decodeSeriesV1(b []byte, lim Limits) error {
	s := wr.nextSeries()
	labelsStart := len(wr.labelsPool)
	samplesStart := len(wr.samplesPool)
	nLabels := 0
	for len(b) > 0 {
		f, rest, err := nextField(b)
		if err != nil {
			return err
		}
		b = rest
		switch f.num {
		case 1: // labels
			if f.wire != wireLen {
				return f.wireErr(wireLen, "TimeSeries", "labels")
			}
			name, value, err := decodeLabelV1(f.data)
			if err != nil {
				return err
			}
			if value == "" {
				continue
			}
			nLabels++
			// Stop storing labels past the limit: a 10k-label series must not
			// grow the pool, but the rest of the message is still parsed so
			// malformed input is reported as such.
			if nLabels <= lim.MaxLabelsPerSeries {
				wr.labelsPool = append(wr.labelsPool, detector.Label{Name: name, Value: value})
			}
		case 2: // samples
			if f.wire != wireLen {
				return f.wireErr(wireLen, "TimeSeries", "samples")
			}
			smp, err := decodeSample(f.data, "Sample")
			if err != nil {
				return err
			}
			wr.samplesPool = append(wr.samplesPool, smp)
			wr.Samples++
			// Checked per sample: one series must not grow the pool
			// past the limit before the per-series check runs.
			if wr.Samples > lim.MaxSamplesPerRequest {
				return wr.checkSampleLimit(lim)
			}
		case 3: // exemplars
			if f.wire != wireLen {
				return f.wireErr(wireLen, "TimeSeries", "exemplars")
			}
			s.Exemplars++
			wr.Exemplars++
		case 4: // histograms
			if f.wire != wireLen {
				return f.wireErr(wireLen, "TimeSeries", "histograms")
			}
			if err := wr.decodeHistogram(s, f.data, lim); err != nil {
				return err
			}
		}
	}
	wr.finishSeries(s, labelsStart, samplesStart, nLabels, lim, true)
	return nil
}

func decodeLabelV1(b []byte) (name, value string, err error) {
	// Fast path for the canonical encoding every sender produces: name (1)
	// then value (2), each shorter than 128 bytes (one-byte length), and
	// nothing else. Anything else takes the general path below.
	if len(b) >= 4 && b[0] == 0x0a && b[1] < 0x80 {
		n := 2 + int(b[1])
		if n+2 <= len(b) && b[n] == 0x12 && b[n+1] < 0x80 && n+2+int(b[n+1]) == len(b) {
			return unsafeString(b[2:n]), unsafeString(b[n+2:]), nil
		}
	}
	for len(b) > 0 {
		f, rest, err := nextField(b)
		if err != nil {
			return "", "", fmt.Errorf("cannot decode Label: %w", err)
		}
		b = rest
		switch f.num {
		case 1:
			if f.wire != wireLen {
				return "", "", f.wireErr(wireLen, "Label", "name")
			}
			name = unsafeString(f.data)
		case 2:
			if f.wire != wireLen {
				return "", "", f.wireErr(wireLen, "Label", "value")
			}
			value = unsafeString(f.data)
		}
	}
	return name, value, nil
}

// decodeSample decodes v1 prometheus.Sample and v2 io.prometheus.write.v2.Sample,
// which share field numbers for value (1, double) and timestamp (2, int64).
// v2's start_timestamp (3) is skipped.
func decodeSample(b []byte, msg string) (detector.Sample, error) {
	var smp detector.Sample
	for len(b) > 0 {
		f, rest, err := nextField(b)
		if err != nil {
			return smp, fmt.Errorf("cannot decode %s: %w", msg, err)
		}
		b = rest
		switch f.num {
		case 1:
			if f.wire != wireI64 {
				return smp, f.wireErr(wireI64, msg, "value")
			}
			// Bit-exact: the StaleNaN pattern must reach the Appender intact.
			smp.Value = math.Float64frombits(f.num64)
		case 2:
			if f.wire != wireVarint {
				return smp, f.wireErr(wireVarint, msg, "timestamp")
			}
			smp.TimestampMs = int64(f.num64)
		}
	}
	return smp, nil
}

// DecodeV2 decodes an io.prometheus.write.v2.Request from buf, which must stay
// unmodified while wr is in use. Errors mean a malformed message or a
// request limit; per-series problems (including bad symbol refs) are reported
// in Series[i].Problem.
func (wr *WriteRequest) DecodeV2(buf []byte, lim Limits) error {
	wr.Reset()
	// Pass 1: symbols. Protobuf allows fields in any order, so the symbol
	// table must be complete before any labels_refs can be resolved.
	for b := buf; len(b) > 0; {
		f, rest, err := nextField(b)
		if err != nil {
			return fmt.Errorf("cannot decode io.prometheus.write.v2.Request: %w", err)
		}
		b = rest
		switch f.num {
		case 4:
			if f.wire != wireLen {
				return f.wireErr(wireLen, "Request", "symbols")
			}
			sym := unsafeString(f.data)
			wr.Symbols = append(wr.Symbols, sym)
			wr.symbolValid = append(wr.symbolValid, utf8.ValidString(sym))
		case 5:
			if f.wire != wireLen {
				return f.wireErr(wireLen, "Request", "timeseries")
			}
			wr.v2Series = append(wr.v2Series, f.data)
		}
	}
	// Pass 2: timeseries.
	for _, ts := range wr.v2Series {
		if err := wr.decodeSeriesV2(ts, lim); err != nil {
			return fmt.Errorf("cannot decode timeseries %d: %w", len(wr.Series)-1, err)
		}
		if err := wr.checkSampleLimit(lim); err != nil {
			return err
		}
	}
	wr.deriveHistogramSeries(lim)
	return nil
}

func (wr *WriteRequest) decodeSeriesV2(b []byte, lim Limits) error {
	s := wr.nextSeries()
	labelsStart := len(wr.labelsPool)
	samplesStart := len(wr.samplesPool)
	wr.refs = wr.refs[:0]
	for len(b) > 0 {
		f, rest, err := nextField(b)
		if err != nil {
			return err
		}
		b = rest
		switch f.num {
		case 1: // labels_refs: packed (normal) or unpacked (legal in proto3)
			switch f.wire {
			case wireLen:
				for p := f.data; len(p) > 0; {
					v, n := readVarint(p)
					if n <= 0 {
						return fmt.Errorf("cannot decode TimeSeries.labels_refs: %w", errVarint)
					}
					p = p[n:]
					wr.refs = appendRef(wr.refs, v)
				}
			case wireVarint:
				wr.refs = appendRef(wr.refs, f.num64)
			default:
				return fmt.Errorf("cannot decode TimeSeries.labels_refs: wrong wire type %d", f.wire)
			}
		case 2: // samples
			if f.wire != wireLen {
				return f.wireErr(wireLen, "TimeSeries", "samples")
			}
			smp, err := decodeSample(f.data, "Sample")
			if err != nil {
				return err
			}
			wr.samplesPool = append(wr.samplesPool, smp)
			wr.Samples++
			// Checked per sample: one series must not grow the pool
			// past the limit before the per-series check runs.
			if wr.Samples > lim.MaxSamplesPerRequest {
				return wr.checkSampleLimit(lim)
			}
		case 3: // histograms
			if f.wire != wireLen {
				return f.wireErr(wireLen, "TimeSeries", "histograms")
			}
			if err := wr.decodeHistogram(s, f.data, lim); err != nil {
				return err
			}
		case 4: // exemplars
			if f.wire != wireLen {
				return f.wireErr(wireLen, "TimeSeries", "exemplars")
			}
			s.Exemplars++
			wr.Exemplars++
		case 5: // metadata: only its type is used
			if f.wire != wireLen {
				return f.wireErr(wireLen, "TimeSeries", "metadata")
			}
			if len(f.data) > 0 {
				wr.Metadata++
			}
			t, err := decodeMetadataType(f.data)
			if err != nil {
				return err
			}
			s.Type = t
		}
	}

	nLabels := 0
	switch {
	case len(wr.refs)%2 != 0:
		s.Problem = ProblemOddLabelsRefs
		s.DetailNum = uint64(len(wr.refs))
	default:
		for i := 0; i < len(wr.refs); i += 2 {
			nr, vr := wr.refs[i], wr.refs[i+1]
			if int(nr) >= len(wr.Symbols) || int(vr) >= len(wr.Symbols) {
				s.Problem = ProblemInvalidSymbolRef
				s.DetailNum = uint64(max(nr, vr))
				break
			}
			value := wr.Symbols[vr]
			if value == "" {
				continue
			}
			if s.Problem == ProblemNone {
				switch {
				case !wr.symbolValid[nr]:
					s.Problem, s.Detail = ProblemInvalidUTF8LabelName, wr.Symbols[nr]
				case !wr.symbolValid[vr]:
					s.Problem, s.Detail = ProblemInvalidUTF8LabelValue, value
				}
			}
			nLabels++
			if nLabels <= lim.MaxLabelsPerSeries {
				wr.labelsPool = append(wr.labelsPool, detector.Label{Name: wr.Symbols[nr], Value: value})
			}
		}
	}
	wr.finishSeries(s, labelsStart, samplesStart, nLabels, lim, false)
	return nil
}

// histogramSample is what the detector scores of one native histogram
// sample: its observation count and sum, cumulative unless gauge.
type histogramSample struct {
	timestampMs int64
	count, sum  float64
	gauge       bool // a gauge histogram (reset hint GAUGE)
}

// decodeHistogram counts one native histogram sample of s and, with
// lim.NativeHistograms, decodes its count, sum, reset hint and timestamp
// (v1's prometheus.Histogram and v2's io.prometheus.write.v2.Histogram
// share these field numbers); the buckets are skipped.
func (wr *WriteRequest) decodeHistogram(s *Series, b []byte, lim Limits) error {
	s.Histograms++
	wr.Histograms++
	if wr.Samples+wr.Histograms > lim.MaxSamplesPerRequest {
		return wr.checkSampleLimit(lim)
	}
	if !lim.NativeHistograms {
		return nil
	}
	var h histogramSample
	for len(b) > 0 {
		f, rest, err := nextField(b)
		if err != nil {
			return fmt.Errorf("cannot decode Histogram: %w", err)
		}
		b = rest
		switch f.num {
		case 1: // count_int
			if f.wire != wireVarint {
				return f.wireErr(wireVarint, "Histogram", "count_int")
			}
			h.count = float64(f.num64)
		case 2: // count_float
			if f.wire != wireI64 {
				return f.wireErr(wireI64, "Histogram", "count_float")
			}
			h.count = math.Float64frombits(f.num64)
		case 3: // sum
			if f.wire != wireI64 {
				return f.wireErr(wireI64, "Histogram", "sum")
			}
			h.sum = math.Float64frombits(f.num64)
		case 14: // reset_hint
			if f.wire != wireVarint {
				return f.wireErr(wireVarint, "Histogram", "reset_hint")
			}
			h.gauge = f.num64 == histogramResetHintGauge
		case 15: // timestamp
			if f.wire != wireVarint {
				return f.wireErr(wireVarint, "Histogram", "timestamp")
			}
			h.timestampMs = int64(f.num64)
		}
	}
	start := len(wr.histPool) - len(s.histograms)
	wr.histPool = append(wr.histPool, h)
	end := len(wr.histPool)
	s.histograms = wr.histPool[start:end:end]
	return nil
}

// histogramResetHintGauge is Histogram.ResetHint GAUGE (both versions).
const histogramResetHintGauge = 3

// deriveHistogramSeries appends, for every valid series with decoded native
// histograms, the two float series PromQL's histogram_count() and
// histogram_sum() give: its name with _count and _sum, the classic
// histogram's names, with the series' other labels. They are counters (a
// gauge histogram's are gauges), so the detector scores the histogram's
// observation rate and the rate of its sum. The derived names are the
// only allocations.
func (wr *WriteRequest) deriveHistogramSeries(lim Limits) {
	n := len(wr.Series)
	for i := range n {
		if len(wr.Series[i].histograms) == 0 || wr.Series[i].Problem != ProblemNone {
			continue
		}
		for _, suffix := range [...]string{"_count", "_sum"} {
			src := &wr.Series[i] // appending may move wr.Series
			typ := detector.MetricTypeCounter
			labelsStart, samplesStart := len(wr.labelsPool), len(wr.samplesPool)
			for _, l := range src.Labels {
				if l.Name == detector.MetricNameLabel {
					l.Value += suffix
				}
				wr.labelsPool = append(wr.labelsPool, l)
			}
			for _, h := range src.histograms {
				v := h.count
				if suffix == "_sum" || detector.IsStaleNaN(h.sum) {
					// A stale histogram is marked by its sum: both
					// series go stale.
					v = h.sum
				}
				if h.gauge {
					typ = detector.MetricTypeGauge
				}
				wr.samplesPool = append(wr.samplesPool, detector.Sample{TimestampMs: h.timestampMs, Value: v})
			}
			d := wr.nextSeries()
			d.FromHistogram, d.Type = true, typ
			end := len(wr.labelsPool)
			d.Labels = wr.labelsPool[labelsStart:end:end]
			end = len(wr.samplesPool)
			d.Samples = wr.samplesPool[samplesStart:end:end]
			// The suffix may take the name past max_label_value_length.
			d.Problem, d.Detail = validateLabels(d.Labels, lim, false)
		}
	}
}

// decodeMetadataV1 decodes a prometheus.MetricMetadata: the family's type
// (1) and name (2); help (4) and unit (5) are skipped. The name aliases b.
func decodeMetadataV1(b []byte) (detector.MetricFamily, error) {
	var fam detector.MetricFamily
	for len(b) > 0 {
		f, rest, err := nextField(b)
		if err != nil {
			return fam, fmt.Errorf("cannot decode MetricMetadata: %w", err)
		}
		b = rest
		switch f.num {
		case 1:
			if f.wire != wireVarint {
				return fam, f.wireErr(wireVarint, "MetricMetadata", "type")
			}
			fam.Type = familyType(f.num64)
		case 2:
			if f.wire != wireLen {
				return fam, f.wireErr(wireLen, "MetricMetadata", "metric_family_name")
			}
			fam.Name = unsafeString(f.data)
		}
	}
	return fam, nil
}

// familyType maps a MetricType of either version (they share values) to
// the detector's; values it does not know are unknown.
func familyType(v uint64) detector.FamilyType {
	switch v {
	case metricTypeCounter:
		return detector.FamilyTypeCounter
	case metricTypeGauge:
		return detector.FamilyTypeGauge
	case metricTypeHistogram:
		return detector.FamilyTypeHistogram
	case metricTypeGaugeHistogram:
		return detector.FamilyTypeGaugeHistogram
	case metricTypeSummary:
		return detector.FamilyTypeSummary
	case metricTypeInfo:
		return detector.FamilyTypeInfo
	case metricTypeStateset:
		return detector.FamilyTypeStateSet
	}
	return detector.FamilyTypeUnknown
}

// decodeMetadataType reads the type of a v2 Metadata message as the
// detector needs it: counters, and gauges (a gauge named like a counter is
// not scored on its rate). A classic histogram's or summary's series are
// left to their names: _bucket, _sum and _count count, a summary's
// quantiles do not.
func decodeMetadataType(b []byte) (detector.MetricType, error) {
	t := detector.MetricTypeUnknown
	for len(b) > 0 {
		f, rest, err := nextField(b)
		if err != nil {
			return t, fmt.Errorf("cannot decode Metadata: %w", err)
		}
		b = rest
		if f.num != 1 {
			continue
		}
		if f.wire != wireVarint {
			return t, f.wireErr(wireVarint, "Metadata", "type")
		}
		switch f.num64 {
		case metricTypeCounter:
			t = detector.MetricTypeCounter
		case metricTypeGauge, metricTypeGaugeHistogram, metricTypeInfo, metricTypeStateset:
			t = detector.MetricTypeGauge
		default:
			t = detector.MetricTypeUnknown
		}
	}
	return t, nil
}

// prometheus.MetricMetadata.MetricType and
// io.prometheus.write.v2.Metadata.MetricType values (the same).
const (
	metricTypeCounter        = 1
	metricTypeGauge          = 2
	metricTypeHistogram      = 3
	metricTypeGaugeHistogram = 4
	metricTypeSummary        = 5
	metricTypeInfo           = 6
	metricTypeStateset       = 7
)

// appendRef stores a labels_refs entry; refs that do not fit uint32 are
// clamped to MaxUint32 so they fail the range check instead of wrapping.
func appendRef(refs []uint32, v uint64) []uint32 {
	if v > math.MaxUint32 {
		v = math.MaxUint32
	}
	return append(refs, uint32(v))
}

// finishSeries slices the series' labels and samples out of the pools and
// validates the labels unless decoding already found a problem. checkUTF8
// is false when the caller validated UTF-8 already (v2 symbols).
func (wr *WriteRequest) finishSeries(s *Series, labelsStart, samplesStart, nLabels int, lim Limits, checkUTF8 bool) {
	// Full slice expressions: an Appender appending to Labels or Samples
	// must reallocate rather than overwrite the next series.
	end := len(wr.labelsPool)
	s.Labels = wr.labelsPool[labelsStart:end:end]
	end = len(wr.samplesPool)
	s.Samples = wr.samplesPool[samplesStart:end:end]
	if s.Problem != ProblemNone {
		return
	}
	if nLabels > lim.MaxLabelsPerSeries {
		s.Problem = ProblemTooManyLabels
		s.DetailNum = uint64(nLabels)
		return
	}
	if len(s.Samples) == 0 && s.Histograms == 0 && s.Exemplars == 0 {
		s.Problem = ProblemEmptySeries
		return
	}
	s.Problem, s.Detail = validateLabels(s.Labels, lim, checkUTF8)
}

// validateLabels checks a label set against the remote-write rules (sorted
// by name, unique names, __name__ present) and Prometheus' UTF-8 name rules
// (any valid UTF-8 except the empty string), plus our length limits. It
// returns the first problem found and the label name or value at fault.
func validateLabels(ls detector.Labels, lim Limits, checkUTF8 bool) (Problem, string) {
	hasName := false
	for i, l := range ls {
		switch {
		case l.Name == "":
			return ProblemEmptyLabelName, ""
		case len(l.Name) > lim.MaxLabelNameLength:
			return ProblemLabelNameTooLong, l.Name
		case len(l.Value) > lim.MaxLabelValueLength:
			return ProblemLabelValueTooLong, l.Name
		case checkUTF8 && !utf8.ValidString(l.Name):
			return ProblemInvalidUTF8LabelName, l.Name
		case checkUTF8 && !utf8.ValidString(l.Value):
			return ProblemInvalidUTF8LabelValue, l.Value
		}
		if i > 0 {
			switch prev := ls[i-1].Name; {
			case l.Name == prev:
				return ProblemDuplicateLabelName, l.Name
			case l.Name < prev:
				return ProblemUnsortedLabels, l.Name
			}
		}
		if l.Name == detector.MetricNameLabel {
			hasName = true
		}
	}
	if !hasName {
		return ProblemMissingMetricName, ""
	}
	return ProblemNone, ""
}
