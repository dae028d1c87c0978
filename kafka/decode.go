package kafka

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/golang/snappy"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
	"github.com/sentinel-mesh/sentinel-mesh/remotewrite"
)

// Record headers understood by the consumer and written by the producer.
const (
	HeaderContentType     = "content-type"
	HeaderContentEncoding = "content-encoding"
	HeaderRWVersion       = "x-prometheus-remote-write-version"
	HeaderError           = "x-sentinel-mesh-error"
	contentTypeJSON       = "application/json"
)

// Reasons a record is skipped (outcome label of records_total).
const (
	reasonUnknownFormat = "unknown_format"
	reasonBadSnappy     = "bad_snappy"
	reasonBadProtobuf   = "bad_protobuf"
	reasonTooLarge      = "too_large"
	reasonBadJSON       = "bad_json"
	reasonBadTenant     = "bad_tenant"
)

// badRecord is a record that cannot be decoded at all.
type badRecord struct {
	reason string
	err    error
}

func (e *badRecord) Error() string { return e.reason + ": " + e.err.Error() }
func (e *badRecord) Unwrap() error { return e.err }

func bad(reason string, err error) error { return &badRecord{reason, err} }

// Decoder turns records into series. It reuses its buffers and is not safe
// for concurrent use; one per consumer goroutine.
type Decoder struct {
	// Metadata, when set, is called with the metric family types of each
	// Remote-Write 1.0 payload that carries them, before its series; the
	// slice is only valid during the call.
	Metadata func(tenant string, families []detector.MetricFamily)

	cfg          *ConsumerConfig
	tenantHeader string
	lim          remotewrite.Limits
	maxDecoded   int64

	wr      remotewrite.WriteRequest
	scratch []byte
	lbls    detector.Labels
	smp     [1]detector.Sample
	js      adapterSample
}

// NewDecoder returns a decoder for records of cfg.Consumer, validating
// remote-write payloads against lim and maxDecoded (bytes after snappy).
func NewDecoder(cfg *Config, lim remotewrite.Limits, maxDecoded int64) *Decoder {
	return &Decoder{cfg: &cfg.Consumer, tenantHeader: cfg.TenantHeader, lim: lim, maxDecoded: maxDecoded}
}

// Decode calls fn with every valid series of rec; the labels and samples
// passed to fn are only valid during the call. It returns the number of
// samples of invalid series, and a *badRecord error when the record as a
// whole cannot be decoded.
func (d *Decoder) Decode(rec *kgo.Record, fn func(tenant string, ls detector.Labels, s []detector.Sample, typ detector.MetricType)) (invalidSamples int, err error) {
	tenant := d.cfg.DefaultTenant
	format := d.cfg.formatFor(rec.Topic)
	var ct, ver string
	for _, h := range rec.Headers {
		switch {
		case strings.EqualFold(h.Key, d.tenantHeader):
			if len(h.Value) > 0 {
				tenant = string(h.Value)
			}
		case strings.EqualFold(h.Key, HeaderContentType):
			ct = string(h.Value)
		case strings.EqualFold(h.Key, HeaderRWVersion):
			ver = string(h.Value)
		}
	}
	if len(tenant) > remotewrite.MaxTenantLength {
		return 0, bad(reasonBadTenant, fmt.Errorf("tenant header of %d bytes", len(tenant)))
	}
	if format == FormatAuto {
		format = detectFormat(ct, ver, rec.Value)
		if format == "" {
			return 0, bad(reasonUnknownFormat, fmt.Errorf("cannot detect format: content-type %q, %s %q", ct, HeaderRWVersion, ver))
		}
	}
	if format == FormatJSON {
		return 0, d.decodeJSON(rec.Value, tenant, fn)
	}
	v := remotewrite.V1
	if format == FormatRemoteWriteV2 {
		v = remotewrite.V2
	}
	d.scratch, err = remotewrite.DecodeSnappy(&d.wr, v, rec.Value, d.scratch, d.lim, d.maxDecoded)
	if err != nil {
		switch {
		case errors.Is(err, remotewrite.ErrDecodedTooLarge), errors.Is(err, remotewrite.ErrTooManySamples):
			return 0, bad(reasonTooLarge, err)
		case errors.Is(err, snappy.ErrCorrupt), errors.Is(err, snappy.ErrTooLarge), errors.Is(err, snappy.ErrUnsupported):
			return 0, bad(reasonBadSnappy, err)
		default:
			return 0, bad(reasonBadProtobuf, err)
		}
	}
	if len(d.wr.Families) > 0 && d.Metadata != nil {
		d.Metadata(tenant, d.wr.Families)
	}
	for i := range d.wr.Series {
		s := &d.wr.Series[i]
		if s.Problem != remotewrite.ProblemNone {
			invalidSamples += len(s.Samples)
			continue
		}
		if len(s.Samples) > 0 {
			fn(tenant, s.Labels, s.Samples, s.Type)
		}
	}
	return invalidSamples, nil
}

// detectFormat picks a format from the headers, then from the payload.
func detectFormat(ct, ver string, value []byte) string {
	if ct != "" {
		media, params, _ := strings.Cut(ct, ";")
		media = strings.TrimSpace(strings.ToLower(media))
		switch {
		case media == contentTypeJSON:
			return FormatJSON
		case media == remotewrite.ContentTypeProtobuf:
			if strings.Contains(params, remotewrite.ProtoV2) {
				return FormatRemoteWriteV2
			}
			if !strings.HasPrefix(ver, "2") {
				return FormatRemoteWriteV1
			}
		default:
			return "" // a content type we do not read
		}
	}
	switch {
	case strings.HasPrefix(ver, "2"):
		return FormatRemoteWriteV2
	case strings.HasPrefix(ver, "0.1"), strings.HasPrefix(ver, "1"):
		return FormatRemoteWriteV1
	}
	// No headers: sniff. A JSON object is wrapped in braces; anything else
	// with a valid snappy header is taken for a Remote-Write 1.0 request.
	trimmed := bytes.TrimSpace(value)
	if len(trimmed) >= 2 && trimmed[0] == '{' && trimmed[len(trimmed)-1] == '}' {
		return FormatJSON
	}
	if _, err := snappy.DecodedLen(value); err == nil && len(value) > 0 {
		return FormatRemoteWriteV1
	}
	return ""
}

// adapterSample is one record of prometheus-kafka-adapter's JSON
// serialization: {"timestamp":"RFC3339","value":"1.5","name":"up","labels":{...}}.
type adapterSample struct {
	Timestamp string            `json:"timestamp"`
	Value     string            `json:"value"`
	Name      string            `json:"name"`
	Labels    map[string]string `json:"labels"`
}

func (d *Decoder) decodeJSON(b []byte, tenant string, fn func(string, detector.Labels, []detector.Sample, detector.MetricType)) error {
	js := &d.js
	js.Timestamp, js.Value, js.Name = "", "", ""
	clear(js.Labels)
	if err := json.Unmarshal(b, js); err != nil {
		return bad(reasonBadJSON, fmt.Errorf("cannot parse prometheus-kafka-adapter JSON: %w", err))
	}
	ts, err := time.Parse(time.RFC3339Nano, js.Timestamp)
	if err != nil {
		return bad(reasonBadJSON, fmt.Errorf("cannot parse timestamp %q: %w", js.Timestamp, err))
	}
	v, err := strconv.ParseFloat(js.Value, 64)
	if err != nil {
		return bad(reasonBadJSON, fmt.Errorf("cannot parse value %q: %w", js.Value, err))
	}
	d.lbls = d.lbls[:0]
	hasName := false
	for n, val := range js.Labels {
		if n == "" || val == "" {
			continue
		}
		hasName = hasName || n == detector.MetricNameLabel
		d.lbls = append(d.lbls, detector.Label{Name: n, Value: val})
	}
	if !hasName {
		if js.Name == "" {
			return bad(reasonBadJSON, errors.New("sample has neither name nor labels.__name__"))
		}
		d.lbls = append(d.lbls, detector.Label{Name: detector.MetricNameLabel, Value: js.Name})
	}
	if len(d.lbls) > d.lim.MaxLabelsPerSeries {
		return bad(reasonBadJSON, fmt.Errorf("%d labels exceed remote_write.max_labels_per_series", len(d.lbls)))
	}
	sort.Slice(d.lbls, func(i, j int) bool { return d.lbls[i].Name < d.lbls[j].Name })
	d.smp[0] = detector.Sample{TimestampMs: ts.UnixMilli(), Value: v}
	fn(tenant, d.lbls, d.smp[:], detector.MetricTypeUnknown)
	return nil
}
