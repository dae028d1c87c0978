package api

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
)

// FuzzStoreRestoreCheckpoint decodes arbitrary bytes as the store's
// checkpoint part: an error or a store, never a panic, and what decodes
// encodes back to bytes that decode to the same anomalies.
func FuzzStoreRestoreCheckpoint(f *testing.F) {
	src := NewStore(10, nil)
	src.HandleEvents([]detector.Event{
		{Kind: detector.EventOpen, ID: 7, Tenant: "t", Labels: detector.FromStrings("__name__", "x"), TimestampMs: 1000, Score: 0.9},
		{Kind: detector.EventOpen, ID: 8, Labels: detector.FromStrings("__name__", "y"), TimestampMs: 2000, Score: 0.8},
		{Kind: detector.EventClose, ID: 8, Labels: detector.FromStrings("__name__", "y"), TimestampMs: 3000, Score: 0.1},
	})
	good := src.AppendCheckpoint(nil)
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		s := NewStore(10, nil)
		if err := s.RestoreCheckpoint(data); err != nil {
			return
		}
		again := NewStore(10, nil)
		require.NoError(t, again.RestoreCheckpoint(s.AppendCheckpoint(nil)))
		var a, b []Anomaly
		s.Snapshot(func(x Anomaly) bool { a = append(a, x); return true })
		again.Snapshot(func(x Anomaly) bool { b = append(b, x); return true })
		require.Equal(t, len(a), len(b))
	})
}
