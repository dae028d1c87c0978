package exporter

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/grafana/loki/pkg/push"
	"github.com/stretchr/testify/require"
)

// lokiReceiver is a push endpoint that stores and rejects entries as Loki's
// ingester does with unordered writes (the default since Loki 2.4):
//
//   - an entry whose timestamp is not after the newest entry of its stream
//     less max_chunk_age/2 (1h by default) is rejected as "entry too far
//     behind";
//   - an entry equal in timestamp and line to the stream's last stored entry
//     is a duplicate, dropped silently;
//   - the other entries of the request are stored even when some are
//     rejected, and the answer is then a 400 whose body (http.Error, so
//     text/plain with a trailing newline) lists up to
//     max_returned_stream_errors (10) ignored entries and a summary, for the
//     last stream with rejections only (instance.Push keeps the last error).
//
// The messages are Loki 3.x's (pkg/ingester/stream.go, pkg/chunkenc).
type lokiReceiver struct {
	t   *testing.T
	srv *httptest.Server

	mu      sync.Mutex
	down    bool                     // answer 503, store nothing
	reject  func(stream string) bool // answer 400 without a summary for these streams
	streams map[string]*lokiReceiverStream
	stored  []lokiStored // in arrival order
	pushes  int
}

type lokiReceiverStream struct {
	highest  time.Time
	lastTs   time.Time
	lastLine string
}

type lokiStored struct {
	tenant, stream string
	entry          push.Entry
}

const (
	lokiMaxChunkAge        = 2 * time.Hour
	lokiMaxReturnedErrors  = 10
	lokiDefaultTenant      = "fake" // auth_enabled: false
	lokiTooFarBehindFormat = "entry too far behind, entry timestamp is: %s, oldest acceptable timestamp is: %s"
)

func newLokiReceiver(t *testing.T) *lokiReceiver {
	r := &lokiReceiver{t: t, streams: map[string]*lokiReceiverStream{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *lokiReceiver) url() string { return r.srv.URL + "/loki/api/v1/push" }

func (r *lokiReceiver) setDown(down bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.down = down
}

func (r *lokiReceiver) entries() []lokiStored {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]lokiStored(nil), r.stored...)
}

func (r *lokiReceiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	require.NoError(r.t, err)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pushes++
	if r.down {
		http.Error(w, "Service Unavailable", http.StatusServiceUnavailable)
		return
	}
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var pr push.PushRequest
	if err := pr.Unmarshal(raw); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	tenant := req.Header.Get("X-Scope-OrgID")
	if tenant == "" {
		tenant = lokiDefaultTenant
	}
	var lastErr string
	for _, s := range pr.Streams {
		if r.reject != nil && r.reject(s.Labels) {
			lastErr = fmt.Sprintf("error at stream %s: rejected by the test", s.Labels)
			continue
		}
		if msg := r.pushStream(tenant, s); msg != "" {
			lastErr = msg
		}
	}
	if lastErr != "" {
		http.Error(w, lastErr, http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// pushStream stores what Loki would store of s and returns the error body
// Loki would give for it, "" when nothing was rejected.
func (r *lokiReceiver) pushStream(tenant string, s push.Stream) string {
	key := tenant + "\x00" + s.Labels
	st := r.streams[key]
	if st == nil {
		st = &lokiReceiverStream{}
		r.streams[key] = st
	}
	type failed struct {
		ts     time.Time
		reason string
	}
	var fails []failed
	for _, e := range s.Entries {
		if e.Timestamp.Equal(st.lastTs) && e.Line == st.lastLine {
			continue
		}
		if cutoff := st.highest.Add(-lokiMaxChunkAge / 2); !st.highest.IsZero() && !e.Timestamp.After(cutoff) {
			fails = append(fails, failed{e.Timestamp, fmt.Sprintf(lokiTooFarBehindFormat, e.Timestamp.Format(time.RFC3339), cutoff.Format(time.RFC3339))})
			continue
		}
		st.lastTs, st.lastLine = e.Timestamp, e.Line
		if e.Timestamp.After(st.highest) {
			st.highest = e.Timestamp
		}
		r.stored = append(r.stored, lokiStored{tenant: tenant, stream: s.Labels, entry: e})
	}
	if len(fails) == 0 {
		return ""
	}
	var b bytes.Buffer
	for i, f := range fails {
		if i == lokiMaxReturnedErrors {
			break
		}
		fmt.Fprintf(&b, "entry with timestamp %s ignored, reason: '%s',\n", f.ts.String(), f.reason)
	}
	fmt.Fprintf(&b, "user '%s', total ignored: %d out of %d for stream: %s", tenant, len(fails), len(s.Entries), s.Labels)
	return b.String()
}

// pushDirect sends one stream to the receiver as another Loki client would
// and returns the status and body.
func (r *lokiReceiver) pushDirect(tenant, stream string, entries ...push.Entry) (int, string) {
	r.t.Helper()
	b, err := (&push.PushRequest{Streams: []push.Stream{{Labels: stream, Entries: entries}}}).Marshal()
	require.NoError(r.t, err)
	req, err := http.NewRequest(http.MethodPost, r.url(), bytes.NewReader(snappy.Encode(nil, b)))
	require.NoError(r.t, err)
	req.Header.Set("Content-Type", "application/x-protobuf")
	if tenant != "" {
		req.Header.Set("X-Scope-OrgID", tenant)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(r.t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(r.t, err)
	return resp.StatusCode, string(body)
}

// TestLokiReceiverRejectsLikeLoki pins the receiver the other tests rely on
// to Loki's rule and answer.
func TestLokiReceiverRejectsLikeLoki(t *testing.T) {
	r := newLokiReceiver(t)
	const stream = `{service_name="x"}`
	t0 := time.Date(2026, 10, 7, 3, 0, 0, 0, time.UTC)
	code, _ := r.pushDirect("acme", stream, push.Entry{Timestamp: t0, Line: "newest"})
	require.Equal(t, http.StatusNoContent, code)
	code, body := r.pushDirect("acme", stream,
		push.Entry{Timestamp: t0.Add(-61 * time.Minute), Line: "too old"},
		push.Entry{Timestamp: t0.Add(-59 * time.Minute), Line: "late but within the hour"},
		push.Entry{Timestamp: t0.Add(-time.Hour), Line: "exactly an hour behind"},
	)
	require.Equal(t, http.StatusBadRequest, code)
	require.Equal(t, "entry with timestamp 2026-10-07 01:59:00 +0000 UTC ignored, reason: 'entry too far behind, entry timestamp is: 2026-10-07T01:59:00Z, oldest acceptable timestamp is: 2026-10-07T02:00:00Z',\n"+
		"entry with timestamp 2026-10-07 02:00:00 +0000 UTC ignored, reason: 'entry too far behind, entry timestamp is: 2026-10-07T02:00:00Z, oldest acceptable timestamp is: 2026-10-07T02:00:00Z',\n"+
		"user 'acme', total ignored: 2 out of 3 for stream: {service_name=\"x\"}\n", body)
	lines := []string{}
	for _, e := range r.entries() {
		lines = append(lines, e.entry.Line)
	}
	require.Equal(t, []string{"newest", "late but within the hour"}, lines)
}
