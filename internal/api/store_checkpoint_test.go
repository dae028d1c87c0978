package api_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
	"github.com/sentinel-mesh/sentinel-mesh/internal/api"
)

func storeContent(s *api.Store) []api.Anomaly {
	var out []api.Anomaly
	s.Snapshot(func(a api.Anomaly) bool {
		out = append(out, a)
		return true
	})
	return out
}

func TestStoreCheckpointRoundTrip(t *testing.T) {
	ls := detector.FromStrings("__name__", "up", "job", "api")
	evs := []detector.Event{
		{Kind: detector.EventOpen, ID: 7, Tenant: "a", Labels: ls, OpenedAtMs: 1000, TimestampMs: 1000, Value: 9, Expected: 1, Lower: 0, Upper: 2, Score: 0.9, PeakScore: 0.9, Direction: detector.DirectionUp, ModelVersion: "m1", Cause: detector.CauseLevel},
		{Kind: detector.EventOpen, ID: 8, Labels: ls, OpenedAtMs: 2000, TimestampMs: 2000, Value: -3, Score: 0.8, PeakScore: 0.8, Direction: detector.DirectionDown, Corroborated: true, Cause: detector.CauseSeasonal},
		{Kind: detector.EventClose, ID: 7, Tenant: "a", Labels: ls, OpenedAtMs: 1000, ClosedAtMs: 5000, TimestampMs: 5000, Value: 1, Score: 0.1, PeakScore: 0.95},
		{Kind: detector.EventOpen, ID: 9, Labels: ls, OpenedAtMs: 6000, TimestampMs: 6000, Value: 4, Score: 0.99, PeakScore: 0.99, Cause: detector.CausePrediction},
	}
	tests := []struct {
		name      string
		size      int
		wantIDs   []uint64 // newest first
		wantError bool
	}{
		{name: "all fit", size: 10, wantIDs: []uint64{9, 8, 7}},
		{name: "smaller store keeps the newest", size: 2, wantIDs: []uint64{9, 8}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := api.NewStore(10, nil)
			src.HandleEvents(evs)
			data := src.AppendCheckpoint([]byte("prefix"))[len("prefix"):]

			dst := api.NewStore(tc.size, nil)
			require.NoError(t, dst.RestoreCheckpoint(data))
			got := storeContent(dst)
			var ids []uint64
			for _, a := range got {
				ids = append(ids, a.ID)
			}
			require.Equal(t, tc.wantIDs, ids)
			want := storeContent(src)[:len(tc.wantIDs)]
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("restored store differs (-want +got):\n%s", diff)
			}
			// A close after the restart lands on the restored anomaly.
			dst.HandleEvents([]detector.Event{{Kind: detector.EventClose, ID: 9, Labels: ls, ClosedAtMs: 7000, TimestampMs: 7000}})
			a, ok := dst.Get(9)
			require.True(t, ok)
			require.Equal(t, int64(7000), a.ClosedAtMs)
			require.Equal(t, int64(6000), a.OpenedAtMs)
		})
	}
}

func TestStoreRestoreRejectsDamage(t *testing.T) {
	src := api.NewStore(10, nil)
	src.HandleEvents([]detector.Event{{Kind: detector.EventOpen, ID: 1, Labels: detector.FromStrings("a", "b"), OpenedAtMs: 1}})
	data := src.AppendCheckpoint(nil)
	for _, bad := range [][]byte{nil, {9}, data[:len(data)-1], append([]byte{1, 0xff, 0xff, 0xff, 0x7f}, data[2:]...)} {
		dst := api.NewStore(10, nil)
		require.Error(t, dst.RestoreCheckpoint(bad))
		require.Equal(t, 0, dst.Len(), "nothing is added from a damaged part")
	}
}

// Format 1, before the flags byte, still restores (not corroborated).
func TestStoreRestoresFormat1(t *testing.T) {
	src := api.NewStore(10, nil)
	src.HandleEvents([]detector.Event{{Kind: detector.EventOpen, ID: 1, Labels: detector.FromStrings("a", "b"), OpenedAtMs: 1, Score: 0.7, Corroborated: true}})
	v2 := src.AppendCheckpoint(nil)
	require.Equal(t, byte(2), v2[0])
	v1 := append([]byte{1}, v2[1:len(v2)-1]...)
	dst := api.NewStore(10, nil)
	require.NoError(t, dst.RestoreCheckpoint(v1))
	a, ok := dst.Get(1)
	require.True(t, ok)
	require.False(t, a.Corroborated)
	require.Equal(t, 0.7, a.Score)

	again := api.NewStore(10, nil)
	require.NoError(t, again.RestoreCheckpoint(v2))
	a, ok = again.Get(1)
	require.True(t, ok)
	require.True(t, a.Corroborated)
}

// A format 2 checkpoint written before anomalies had a cause (its flags
// byte's cause bits 0) restores them with an unknown cause.
func TestStoreRestoresUnknownCause(t *testing.T) {
	src := api.NewStore(10, nil)
	src.HandleEvents([]detector.Event{{Kind: detector.EventOpen, ID: 1, Labels: detector.FromStrings("a", "b"), OpenedAtMs: 1, Corroborated: true, Cause: detector.CauseSeasonal}})
	data := src.AppendCheckpoint(nil)
	data[len(data)-1] &= 1 // the corroborated flag alone
	dst := api.NewStore(10, nil)
	require.NoError(t, dst.RestoreCheckpoint(data))
	a, ok := dst.Get(1)
	require.True(t, ok)
	require.True(t, a.Corroborated)
	require.Equal(t, detector.CauseUnknown, a.Cause)
}
