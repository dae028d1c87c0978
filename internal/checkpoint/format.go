package checkpoint

import (
	"bufio"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
)

// File layout (all integers little-endian):
//
//	magic    "SMCKPT\x00\x01"
//	block... kind u8 | count u32 | length u32 | payload crc32c u32 | header crc32c u32 | payload
//
// The first block is the meta block (fixed-size payload, rewritten in place
// once the totals are known): created unix ms i64, last anomaly ID u64,
// series records u64. Series blocks hold up to maxBlockBytes of records,
// each a u32 length followed by uvarint(open anomaly ID) and the series'
// SeriesState encoding, which carries its own format version: the
// checkpoint never interprets it. Part blocks hold one named opaque part
// (the API's anomaly store). An end block (empty) closes a complete file.
//
// Two checksums per block: a damaged payload loses that block's records
// (at most maxBlockBytes, about a hundred series) and reading goes on with
// the next block; after a damaged header, whose length cannot be trusted,
// reading resumes at the next offset holding a valid header.
const (
	magic         = "SMCKPT\x00\x01"
	headerLen     = 17
	maxBlockBytes = 64 << 10
	metaLen       = 24
	// maxPayload bounds a block length read back, so a damaged header
	// cannot make the reader allocate without limit (parts may be large).
	maxPayload = 1 << 30
)

const (
	kindMeta   byte = 1
	kindSeries byte = 2
	kindPart   byte = 3
	kindEnd    byte = 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// blockHeader frames payload.
func blockHeader(kind byte, count int, payload []byte) [headerLen]byte {
	var h [headerLen]byte
	h[0] = kind
	binary.LittleEndian.PutUint32(h[1:], uint32(count))
	binary.LittleEndian.PutUint32(h[5:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(h[9:], crc32.Checksum(payload, castagnoli))
	binary.LittleEndian.PutUint32(h[13:], crc32.Checksum(h[:13], castagnoli))
	return h
}

// appendBlock appends a framed block to b.
func appendBlock(b []byte, kind byte, count int, payload []byte) []byte {
	h := blockHeader(kind, count, payload)
	b = append(b, h[:]...)
	return append(b, payload...)
}

type meta struct {
	createdMs     int64
	lastAnomalyID uint64
	records       uint64
}

func (m meta) payload() []byte {
	b := make([]byte, 0, metaLen)
	b = binary.LittleEndian.AppendUint64(b, uint64(m.createdMs))
	b = binary.LittleEndian.AppendUint64(b, m.lastAnomalyID)
	return binary.LittleEndian.AppendUint64(b, m.records)
}

func parseMeta(p []byte) (meta, bool) {
	if len(p) != metaLen {
		return meta{}, false
	}
	return meta{
		createdMs:     int64(binary.LittleEndian.Uint64(p)),
		lastAnomalyID: binary.LittleEndian.Uint64(p[8:]),
		records:       binary.LittleEndian.Uint64(p[16:]),
	}, true
}

// block is one block read back.
type block struct {
	kind    byte
	count   int
	payload []byte
	// damaged: the header was intact but the payload's checksum failed or
	// the file ended inside it.
	damaged bool
}

var (
	errBadMagic  = errors.New("not a checkpoint file (bad magic)")
	errBadHeader = errors.New("damaged block header")
)

// blockReader reads blocks from a checkpoint file.
type blockReader struct {
	r      *bufio.Reader
	offset int64
	buf    []byte
}

// resync skips to the next offset that holds a valid block header, after a
// damaged one: a false match needs a 32-bit checksum to hold by chance.
// It returns io.EOF when there is none.
func (br *blockReader) resync() error {
	for {
		h, err := br.r.Peek(headerLen)
		if err != nil {
			return io.EOF
		}
		if h[0] >= kindMeta && h[0] <= kindEnd && crc32.Checksum(h[:13], castagnoli) == binary.LittleEndian.Uint32(h[13:]) {
			return nil
		}
		_, _ = br.r.Discard(1)
		br.offset++
	}
}

func (br *blockReader) readMagic() error {
	var m [len(magic)]byte
	if _, err := io.ReadFull(br.r, m[:]); err != nil {
		return errBadMagic
	}
	br.offset += int64(len(m))
	if string(m[:]) != magic {
		return errBadMagic
	}
	return nil
}

// next returns the next block; io.EOF at a clean end of file,
// io.ErrUnexpectedEOF when the file ends inside a block header, and
// errBadHeader when a header's checksum fails. A payload cut short or
// failing its checksum is returned with damaged set. The payload is valid
// until the next call.
func (br *blockReader) next() (block, error) {
	var h [headerLen]byte
	n, err := io.ReadFull(br.r, h[:])
	br.offset += int64(n)
	if err == io.EOF {
		return block{}, io.EOF
	}
	if err != nil {
		return block{}, io.ErrUnexpectedEOF
	}
	if crc32.Checksum(h[:13], castagnoli) != binary.LittleEndian.Uint32(h[13:]) {
		return block{}, errBadHeader
	}
	b := block{kind: h[0], count: int(binary.LittleEndian.Uint32(h[1:]))}
	length := binary.LittleEndian.Uint32(h[5:])
	if length > maxPayload {
		return block{}, errBadHeader
	}
	if cap(br.buf) < int(length) {
		br.buf = make([]byte, length)
	}
	b.payload = br.buf[:length]
	n, err = io.ReadFull(br.r, b.payload)
	br.offset += int64(n)
	if err != nil {
		b.payload, b.damaged = nil, true
		return b, nil
	}
	if crc32.Checksum(b.payload, castagnoli) != binary.LittleEndian.Uint32(h[9:]) {
		b.payload, b.damaged = nil, true
	}
	return b, nil
}
