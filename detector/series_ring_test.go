package detector

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRingKeepsPrecisionRelativeToTheWindow(t *testing.T) {
	for _, tc := range []struct {
		name string
		v    func(i int) float64
	}{
		// float32 alone would round these to multiples of 2^17.
		{"counter at 1e12 in unit steps", func(i int) float64 { return 1e12 + float64(i) }},
		{"small wiggle on a large level", func(i int) float64 { return 5e9 + 0.25*float64(i%7) }},
		{"negative and fractional", func(i int) float64 { return -3.5 + 0.001*float64(i*i%11) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &series{ring: make([]float32, 32)}
			for i := range 200 {
				s.push(tc.v(i))
				got := s.window(nil)
				lo := max(0, i+1-32)
				for j, g := range got {
					want := tc.v(lo + j)
					require.InDelta(t, want, g, 1e-6*max(1, math.Abs(want-tc.v(i))), "sample %d, window position %d", i, j)
				}
			}
		})
	}
}

func TestRingSurvivesJumpsBeyondFloat32(t *testing.T) {
	s := &series{ring: make([]float32, 4)}
	for _, v := range []float64{1, 2, 1e300, 1e300, 3} {
		s.push(v)
	}
	// A jump beyond float32's range rebases the ring: the values on the
	// other side of it overflow (that window is not predicted) until they
	// leave the window.
	w := s.window(nil)
	require.Len(t, w, 4)
	require.Equal(t, 3.0, w[3])
	require.True(t, math.IsInf(w[1], 1))
	for _, v := range []float64{4, 5, 6} {
		s.push(v)
	}
	require.Equal(t, []float64{3, 4, 5, 6}, s.window(nil))
}
