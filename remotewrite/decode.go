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
}

func (c Config) limits() Limits {
	return Limits{
		MaxLabelsPerSeries:   c.MaxLabelsPerSeries,
		MaxLabelNameLength:   c.MaxLabelNameLength,
		MaxLabelValueLength:  c.MaxLabelValueLength,
		MaxSamplesPerRequest: c.MaxSamplesPerRequest,
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
	// Histograms and Exemplars count the native histogram samples and
	// exemplars of the series; neither is decoded further.
	Histograms int
	Exemplars  int

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

	// Totals over all series, valid or not.
	Samples    int
	Histograms int
	Exemplars  int
	Metadata   int

	labelsPool  []detector.Label
	samplesPool []detector.Sample
	refs        []uint32
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
	wr.refs = wr.refs[:0]
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

// addSamples counts n more samples against the request limit.
func (wr *WriteRequest) checkSampleLimit(lim Limits) error {
	if total := wr.Samples + wr.Histograms; total > lim.MaxSamplesPerRequest {
		return fmt.Errorf("%w: more than %d (remote_write.max_samples_per_request)", ErrTooManySamples, lim.MaxSamplesPerRequest)
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
			if err := f.expectWire(wireLen, "WriteRequest", "timeseries"); err != nil {
				return err
			}
			if err := wr.decodeSeriesV1(f.data, lim); err != nil {
				return fmt.Errorf("cannot decode timeseries %d: %w", len(wr.Series)-1, err)
			}
			if err := wr.checkSampleLimit(lim); err != nil {
				return err
			}
		case 3: // metadata: tolerated, not used by the detector
			if err := f.expectWire(wireLen, "WriteRequest", "metadata"); err != nil {
				return err
			}
			wr.Metadata++
		}
	}
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
			if err := f.expectWire(wireLen, "TimeSeries", "labels"); err != nil {
				return err
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
			if err := f.expectWire(wireLen, "TimeSeries", "samples"); err != nil {
				return err
			}
			smp, err := decodeSample(f.data, "Sample")
			if err != nil {
				return err
			}
			wr.samplesPool = append(wr.samplesPool, smp)
			wr.Samples++
		case 3: // exemplars
			if err := f.expectWire(wireLen, "TimeSeries", "exemplars"); err != nil {
				return err
			}
			s.Exemplars++
			wr.Exemplars++
		case 4: // histograms
			if err := f.expectWire(wireLen, "TimeSeries", "histograms"); err != nil {
				return err
			}
			s.Histograms++
			wr.Histograms++
		}
	}
	wr.finishSeries(s, labelsStart, samplesStart, nLabels, lim)
	return nil
}

func decodeLabelV1(b []byte) (name, value string, err error) {
	for len(b) > 0 {
		f, rest, err := nextField(b)
		if err != nil {
			return "", "", fmt.Errorf("cannot decode Label: %w", err)
		}
		b = rest
		switch f.num {
		case 1:
			if err := f.expectWire(wireLen, "Label", "name"); err != nil {
				return "", "", err
			}
			name = unsafeString(f.data)
		case 2:
			if err := f.expectWire(wireLen, "Label", "value"); err != nil {
				return "", "", err
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
			if err := f.expectWire(wireI64, msg, "value"); err != nil {
				return smp, err
			}
			// Bit-exact: the StaleNaN pattern must reach the Appender intact.
			smp.Value = math.Float64frombits(f.num64)
		case 2:
			if err := f.expectWire(wireVarint, msg, "timestamp"); err != nil {
				return smp, err
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
			if err := f.expectWire(wireLen, "Request", "symbols"); err != nil {
				return err
			}
			wr.Symbols = append(wr.Symbols, unsafeString(f.data))
		case 5:
			if err := f.expectWire(wireLen, "Request", "timeseries"); err != nil {
				return err
			}
		}
	}
	// Pass 2: timeseries.
	for b := buf; len(b) > 0; {
		f, rest, _ := nextField(b) // pass 1 already validated the framing
		b = rest
		if f.num != 5 {
			continue
		}
		if err := wr.decodeSeriesV2(f.data, lim); err != nil {
			return fmt.Errorf("cannot decode timeseries %d: %w", len(wr.Series)-1, err)
		}
		if err := wr.checkSampleLimit(lim); err != nil {
			return err
		}
	}
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
			if err := f.expectWire(wireLen, "TimeSeries", "samples"); err != nil {
				return err
			}
			smp, err := decodeSample(f.data, "Sample")
			if err != nil {
				return err
			}
			wr.samplesPool = append(wr.samplesPool, smp)
			wr.Samples++
		case 3: // histograms
			if err := f.expectWire(wireLen, "TimeSeries", "histograms"); err != nil {
				return err
			}
			s.Histograms++
			wr.Histograms++
		case 4: // exemplars
			if err := f.expectWire(wireLen, "TimeSeries", "exemplars"); err != nil {
				return err
			}
			s.Exemplars++
			wr.Exemplars++
		case 5: // metadata: tolerated, not used by the detector
			if err := f.expectWire(wireLen, "TimeSeries", "metadata"); err != nil {
				return err
			}
			if len(f.data) > 0 {
				wr.Metadata++
			}
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
			nLabels++
			if nLabels <= lim.MaxLabelsPerSeries {
				wr.labelsPool = append(wr.labelsPool, detector.Label{Name: wr.Symbols[nr], Value: value})
			}
		}
	}
	wr.finishSeries(s, labelsStart, samplesStart, nLabels, lim)
	return nil
}

// appendRef stores a labels_refs entry; refs that do not fit uint32 are
// clamped to MaxUint32 so they fail the range check instead of wrapping.
func appendRef(refs []uint32, v uint64) []uint32 {
	if v > math.MaxUint32 {
		v = math.MaxUint32
	}
	return append(refs, uint32(v))
}

// finishSeries slices the series' labels and samples out of the pools and
// validates the labels unless decoding already found a problem.
func (wr *WriteRequest) finishSeries(s *Series, labelsStart, samplesStart, nLabels int, lim Limits) {
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
	s.Problem, s.Detail = validateLabels(s.Labels, lim)
}

// validateLabels checks a label set against the remote-write rules (sorted
// by name, unique names, __name__ present) and Prometheus' UTF-8 name rules
// (any valid UTF-8 except the empty string), plus our length limits. It
// returns the first problem found and the label name or value at fault.
func validateLabels(ls detector.Labels, lim Limits) (Problem, string) {
	hasName := false
	for i, l := range ls {
		switch {
		case l.Name == "":
			return ProblemEmptyLabelName, ""
		case len(l.Name) > lim.MaxLabelNameLength:
			return ProblemLabelNameTooLong, l.Name
		case len(l.Value) > lim.MaxLabelValueLength:
			return ProblemLabelValueTooLong, l.Name
		case !utf8.ValidString(l.Name):
			return ProblemInvalidUTF8LabelName, l.Name
		case !utf8.ValidString(l.Value):
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
