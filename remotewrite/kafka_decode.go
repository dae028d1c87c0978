package remotewrite

import (
	"errors"
	"fmt"

	"github.com/golang/snappy"
)

// DecodeLimits returns the per-series and per-request limits of c, for
// decoders outside the HTTP handler (the Kafka consumer).
func (c Config) DecodeLimits() Limits { return c.limits() }

// ErrDecodedTooLarge is returned (wrapped) by DecodeSnappy when the snappy
// header announces more than maxDecoded bytes.
var ErrDecodedTooLarge = errors.New("decoded payload too large")

// DecodeSnappy decodes one snappy-compressed Remote-Write request of version
// v into wr, decompressing into scratch (grown if needed). It returns the
// scratch buffer, which wr's strings alias: keep both unmodified while wr is
// in use, and reuse both for the next payload. maxDecoded bounds the length
// the snappy header may announce (a decompression-bomb guard); <= 0 means
// no bound beyond the snappy format's.
func DecodeSnappy(wr *WriteRequest, v Version, compressed, scratch []byte, lim Limits, maxDecoded int64) ([]byte, error) {
	wr.Reset()
	n, err := snappy.DecodedLen(compressed)
	if err != nil {
		return scratch, fmt.Errorf("cannot decode snappy payload: %w", err)
	}
	if maxDecoded > 0 && int64(n) > maxDecoded {
		return scratch, fmt.Errorf("%w: %d bytes, max %d", ErrDecodedTooLarge, n, maxDecoded)
	}
	if cap(scratch) < n {
		scratch = make([]byte, n)
	}
	decoded, err := snappy.Decode(scratch[:cap(scratch)], compressed)
	if err != nil {
		return scratch, fmt.Errorf("cannot decode snappy payload: %w", err)
	}
	switch v {
	case V2:
		err = wr.DecodeV2(decoded, lim)
	case V1:
		err = wr.DecodeV1(decoded, lim)
	default:
		err = fmt.Errorf("unsupported remote-write version %s", v)
	}
	return scratch, err
}
