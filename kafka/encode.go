package kafka

import (
	"encoding/binary"
	"math"

	"github.com/golang/snappy"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
)

// appendWriteRequestV1 appends a prometheus.WriteRequest (Remote-Write 1.0)
// holding one series to b, in protobuf wire format. A known typ adds a
// metadata entry naming the series' own name as the family (a counter's or
// gauge's series is named as its family in the Prometheus text format), so
// the consuming detector types it (detector.MetadataAppender).
func appendWriteRequestV1(b []byte, lbls detector.Labels, samples []detector.Sample, typ detector.MetricType) []byte {
	tsLen := 0
	for _, l := range lbls {
		n := labelLen(l)
		tsLen += 1 + uvarintLen(uint64(n)) + n
	}
	for _, s := range samples {
		tsLen += 1 + 1 + sampleLen(s)
	}
	b = append(b, 1<<3|2) // WriteRequest.timeseries
	b = binary.AppendUvarint(b, uint64(tsLen))
	for _, l := range lbls {
		b = append(b, 1<<3|2) // TimeSeries.labels
		b = binary.AppendUvarint(b, uint64(labelLen(l)))
		b = append(b, 1<<3|2)
		b = binary.AppendUvarint(b, uint64(len(l.Name)))
		b = append(b, l.Name...)
		b = append(b, 2<<3|2)
		b = binary.AppendUvarint(b, uint64(len(l.Value)))
		b = append(b, l.Value...)
	}
	for _, s := range samples {
		b = append(b, 2<<3|2, byte(sampleLen(s))) // TimeSeries.samples
		b = append(b, 1<<3|1)                     // Sample.value, fixed64
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(s.Value))
		b = append(b, 2<<3|0) // Sample.timestamp, varint
		b = binary.AppendUvarint(b, uint64(s.TimestampMs))
	}
	var metaType byte
	switch typ {
	case detector.MetricTypeCounter:
		metaType = 1 // prometheus.MetricMetadata.COUNTER
	case detector.MetricTypeGauge:
		metaType = 2 // GAUGE
	}
	if name := lbls.Get(detector.MetricNameLabel); metaType != 0 && name != "" {
		b = append(b, 3<<3|2) // WriteRequest.metadata
		b = binary.AppendUvarint(b, uint64(2+1+uvarintLen(uint64(len(name)))+len(name)))
		b = append(b, 1<<3|0, metaType) // MetricMetadata.type
		b = append(b, 2<<3|2)           // MetricMetadata.metric_family_name
		b = binary.AppendUvarint(b, uint64(len(name)))
		b = append(b, name...)
	}
	return b
}

// sampleLen is the encoded length of a Sample message (at most 20 bytes).
func sampleLen(s detector.Sample) int { return 1 + 8 + 1 + uvarintLen(uint64(s.TimestampMs)) }

func labelLen(l detector.Label) int {
	return 1 + uvarintLen(uint64(len(l.Name))) + len(l.Name) + 1 + uvarintLen(uint64(len(l.Value))) + len(l.Value)
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// EncodeSeriesV1 returns one series as a snappy-compressed Remote-Write 1.0
// request, the payload the producer writes. scratch is reused for the
// uncompressed protobuf and returned.
func EncodeSeriesV1(lbls detector.Labels, samples []detector.Sample, scratch []byte) (payload, newScratch []byte) {
	return EncodeTypedSeriesV1(lbls, samples, detector.MetricTypeUnknown, scratch)
}

// EncodeTypedSeriesV1 is EncodeSeriesV1 for a series of a known type, which
// the request's metadata then carries.
func EncodeTypedSeriesV1(lbls detector.Labels, samples []detector.Sample, typ detector.MetricType, scratch []byte) (payload, newScratch []byte) {
	scratch = appendWriteRequestV1(scratch[:0], lbls, samples, typ)
	return snappy.Encode(nil, scratch), scratch
}
