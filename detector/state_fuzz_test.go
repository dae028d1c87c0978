package detector

import (
	"bytes"
	"testing"
)

// FuzzSeriesStateUnmarshal: series state arrives from the kafka state topic,
// so any bytes must decode to an error or to a state that encodes back to
// bytes that decode to the same state, never panic or allocate without bound.
//
//	go test -fuzz FuzzSeriesStateUnmarshal ./detector/
func FuzzSeriesStateUnmarshal(f *testing.F) {
	full := exportSeries(&series{cal: noisyCalibration(500, 41), labels: encodeLabels(FromStrings("__name__", "x", "job", "api")), ring: make([]float32, 4)})
	full.Window = []float64{1, 2, 3, 4}
	full.Tenant, full.AnomalyOpen, full.OpenedAt = "t", true, 1234
	b, err := full.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	for _, version := range []byte{stateFormatV1, stateFormatV2, stateFormatV3} {
		old := append([]byte(nil), b...)
		old[0] = version
		f.Add(old)
	}
	f.Add([]byte{stateFormatV4})
	f.Fuzz(func(t *testing.T, data []byte) {
		var st SeriesState
		if err := st.UnmarshalBinary(data); err != nil {
			return
		}
		enc, err := st.MarshalBinary()
		if err != nil {
			t.Fatalf("cannot encode a decoded state: %v", err)
		}
		var again SeriesState
		if err := again.UnmarshalBinary(enc); err != nil {
			t.Fatalf("cannot decode a re-encoded state: %v", err)
		}
		enc2, err := again.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("re-encoding changed the state")
		}
		_ = restoreCalibration(&again)
	})
}
