package remotewrite

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"unsafe"
)

// Minimal protobuf wire-format reader. The generated gogo/golang protobuf
// decoders allocate every TimeSeries, Label and string; on the hot path we
// only need views into the decoded buffer, so we walk the wire format by hand
// (the approach VictoriaMetrics' lib/prompb takes).

const (
	wireVarint = 0
	wireI64    = 1
	wireLen    = 2
	wireI32    = 5
)

var (
	errTruncated   = errors.New("unexpected end of message")
	errVarint      = errors.New("invalid varint")
	errFieldNumber = errors.New("invalid field number 0")
)

// field is one decoded protobuf field. For wireLen fields data aliases the
// input; for wireVarint, wireI64 and wireI32 the value is in num64.
type field struct {
	num   uint32
	wire  uint8
	num64 uint64
	data  []byte
}

// readVarint decodes a base-128 varint. n is 0 on truncation, <0 on overflow.
func readVarint(b []byte) (v uint64, n int) {
	// Fast path for the 1-byte varints that dominate (field tags, small refs).
	if len(b) > 0 && b[0] < 0x80 {
		return uint64(b[0]), 1
	}
	// Two bytes: the symbol refs of a v2 request with up to 16,384 symbols.
	if len(b) > 1 && b[1] < 0x80 {
		return uint64(b[0]&0x7f) | uint64(b[1])<<7, 2
	}
	return binary.Uvarint(b)
}

// nextField decodes the field at the start of b and returns the rest.
func nextField(b []byte) (f field, rest []byte, err error) {
	// Fast path: a length-delimited field with a one-byte tag and a one-byte
	// length, the shape of almost every field in a remote-write request.
	if len(b) >= 2 && b[0] < 0x80 && b[0]&7 == wireLen && b[0]>>3 != 0 && b[1] < 0x80 && int(b[1]) <= len(b)-2 {
		l := 2 + int(b[1])
		return field{num: uint32(b[0] >> 3), wire: wireLen, data: b[2:l]}, b[l:], nil
	}
	tag, n := readVarint(b)
	if n <= 0 {
		return f, nil, fmt.Errorf("cannot read field tag: %w", errVarint)
	}
	b = b[n:]
	if tag>>3 == 0 || tag>>3 > math.MaxInt32 {
		return f, nil, errFieldNumber
	}
	f.num = uint32(tag >> 3)
	f.wire = uint8(tag & 7)
	switch f.wire {
	case wireVarint:
		v, n := readVarint(b)
		if n <= 0 {
			return f, nil, fmt.Errorf("cannot read varint field %d: %w", f.num, errVarint)
		}
		f.num64 = v
		return f, b[n:], nil
	case wireI64:
		if len(b) < 8 {
			return f, nil, fmt.Errorf("cannot read fixed64 field %d: %w", f.num, errTruncated)
		}
		f.num64 = binary.LittleEndian.Uint64(b)
		return f, b[8:], nil
	case wireLen:
		l, n := readVarint(b)
		if n <= 0 {
			return f, nil, fmt.Errorf("cannot read length of field %d: %w", f.num, errVarint)
		}
		b = b[n:]
		if l > uint64(len(b)) {
			return f, nil, fmt.Errorf("cannot read field %d of length %d: %w", f.num, l, errTruncated)
		}
		f.data = b[:l]
		return f, b[l:], nil
	case wireI32:
		if len(b) < 4 {
			return f, nil, fmt.Errorf("cannot read fixed32 field %d: %w", f.num, errTruncated)
		}
		f.num64 = uint64(binary.LittleEndian.Uint32(b))
		return f, b[4:], nil
	default:
		// Groups (3, 4) are proto2-only and not used by any remote-write
		// message; 6 and 7 do not exist.
		return f, nil, fmt.Errorf("unsupported wire type %d for field %d", f.wire, f.num)
	}
}

// wireErr reports a wire type mismatch the way generated decoders do: as a
// malformed message, not as an unknown field. Callers compare f.wire inline
// so the hot path has no call.
func (f *field) wireErr(w uint8, msg, name string) error {
	return fmt.Errorf("cannot decode %s.%s: wrong wire type %d, want %d", msg, name, f.wire, w)
}

// unsafeString returns a string that shares b's memory. The string is valid
// only while b is not modified: see the ownership rules on WriteRequest.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}
