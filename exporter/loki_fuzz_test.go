package exporter

import (
	"testing"
	"time"

	"github.com/grafana/loki/pkg/push"
	"github.com/stretchr/testify/require"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
)

// A rejection's body comes from the Loki server (or whatever answers in its
// place): whatever it holds, lokiRejected counts at most the entries pushed
// and reports only entries of the request as lost.
func FuzzLokiRejected(f *testing.F) {
	base := time.Date(2026, 10, 7, 1, 35, 32, 405_000_000, time.UTC)
	entries := []lokiEntry{
		{entry: push.Entry{Timestamp: base}, kind: detector.EventOpen, id: 1},
		{entry: push.Entry{Timestamp: base.Add(time.Millisecond)}, kind: detector.EventClose, id: 1},
		{entry: push.Entry{Timestamp: base.Add(2 * time.Millisecond)}, kind: detector.EventOpen, id: 2},
	}
	f.Add([]byte("entry with timestamp 2026-10-07 01:35:32.405 +0000 UTC ignored, reason: 'entry too far behind, oldest acceptable timestamp is: 2026-10-07T02:00:00Z',\n" +
		"user 'acme', total ignored: 1 out of 3 for stream: {service_name=\"sentinel-mesh\"}"))
	f.Add([]byte("total ignored: 5 out of 2"))
	f.Add([]byte("total ignored: 99999999999999999999 out of 3"))
	f.Add([]byte("error at least one label pair is required per stream"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, body []byte) {
		rejected, lost := lokiRejected(entries, body)
		require.GreaterOrEqual(t, rejected, 0)
		require.LessOrEqual(t, rejected, len(entries))
		for _, e := range lost {
			require.Contains(t, entries, e, "a lost entry that was not pushed")
		}
	})
}
