package checkpoint

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/stretchr/testify/require"
)

// A checkpoint file is read back after crashes and disk damage: whatever
// its bytes, the block reader walks it to the end in bounded steps, never
// returns a payload longer than what the file holds, and never panics.
// (The series records inside are detector.SeriesState, fuzzed in detector.)
func FuzzBlockReader(f *testing.F) {
	var rec []byte
	rec = binary.LittleEndian.AppendUint32(rec, 3)
	rec = append(rec, 0x07, 0x06, 0x00)
	file := []byte(magic)
	file = appendBlock(file, kindMeta, 0, meta{createdMs: 1, lastAnomalyID: 2, records: 1}.payload())
	file = appendBlock(file, kindSeries, 1, rec)
	file = appendBlock(file, kindPart, 1, append([]byte{4}, "apixdata"...))
	file = appendBlock(file, kindEnd, 0, nil)
	f.Add(file)
	f.Add(file[:len(file)-5])
	damaged := bytes.Clone(file)
	damaged[len(magic)+3] ^= 0xff // the meta block's header
	f.Add(damaged)
	f.Add([]byte(magic))
	f.Add([]byte("not a checkpoint"))
	f.Fuzz(func(t *testing.T, data []byte) {
		br := &blockReader{r: bufio.NewReaderSize(bytes.NewReader(data), 4096)}
		if br.readMagic() != nil {
			return
		}
		for steps := 0; ; steps++ {
			require.LessOrEqual(t, steps, len(data), "more blocks than bytes")
			before := br.offset
			b, err := br.next()
			if errors.Is(err, errBadHeader) {
				if br.resync() == nil {
					continue
				}
				return
			}
			if err != nil {
				require.True(t, err == io.EOF || err == io.ErrUnexpectedEOF, "unexpected error %v", err)
				return
			}
			require.Greater(t, br.offset, before, "no progress")
			require.LessOrEqual(t, br.offset, int64(len(data)))
			require.LessOrEqual(t, len(b.payload), len(data))
			if b.kind == kindMeta && !b.damaged {
				_, _ = parseMeta(b.payload)
			}
		}
	})
}
