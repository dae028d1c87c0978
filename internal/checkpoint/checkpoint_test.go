package checkpoint

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
	"github.com/sentinel-mesh/sentinel-mesh/internal/api"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type recordingSink struct{ events []detector.Event }

func (r *recordingSink) HandleEvents(evs []detector.Event) { r.events = append(r.events, evs...) }

func newDetector(t testing.TB, sinks ...detector.EventSink) *detector.Detector {
	t.Helper()
	cfg := detector.DefaultConfig
	cfg.AnomalyCloseAfter = 0
	cfg.Scoring.LearningPeriod = 0 // minutes-long series
	d, err := detector.New(cfg, slog.New(slog.DiscardHandler), nil, sinks...)
	require.NoError(t, err)
	d.SetModel(detector.WindowMeanModel{W: 16})
	return d
}

// fleet is a detector with n calm series, the first of which has an open
// anomaly, its samples up to tsEnd (exclusive).
func fleet(t testing.TB, n int, sinks ...detector.EventSink) (d *detector.Detector, spiky detector.Labels, tsEnd int64) {
	t.Helper()
	d = newDetector(t, sinks...)
	rng := rand.New(rand.NewPCG(1, 2))
	ts := int64(1_700_000_000_000)
	for i := range 300 {
		b := d.Begin()
		for s := range n {
			v := 100 + 10*math.Sin(float64(i)/5+float64(s)) + rng.NormFloat64()
			b.Append("t", seriesLabels(s), []detector.Sample{{TimestampMs: ts, Value: v}})
		}
		require.NoError(t, b.Commit(context.Background()))
		require.NoError(t, d.Flush())
		ts += 15_000
	}
	spiky = seriesLabels(0)
	d.Append("t", spiky, []detector.Sample{{TimestampMs: ts, Value: 400}})
	require.NoError(t, d.Flush())
	return d, spiky, ts + 15_000
}

func seriesLabels(i int) detector.Labels {
	return detector.FromStrings("__name__", "requests", "instance", fmt.Sprintf("host-%03d", i))
}

// states exports every series' state, sorted, for comparison.
func states(d *detector.Detector) []detector.SeriesState {
	var out []detector.SeriesState
	d.ExportState(nil, func(st detector.SeriesState) bool {
		out = append(out, st)
		return true
	})
	slices.SortFunc(out, func(a, b detector.SeriesState) int { return strings.Compare(a.Labels.String(), b.Labels.String()) })
	return out
}

func newManager(t testing.TB, dir string, d *detector.Detector, reg prometheus.Registerer, logs *bytes.Buffer) *Manager {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	if logs != nil {
		logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	m, err := New(Config{Path: dir, Interval: time.Minute}, d, logger, reg)
	require.NoError(t, err)
	return m
}

func TestCheckpointRestoresEverySeriesWarmWithItsAnomaly(t *testing.T) {
	sink := &recordingSink{}
	old, spiky, ts := fleet(t, 40, sink)
	require.Len(t, sink.events, 1, "the spike opened one anomaly")
	openID := sink.events[0].ID
	oldStore := api.NewStore(100, nil)
	oldStore.HandleEvents(sink.events)

	dir := t.TempDir()
	m := newManager(t, dir, old, nil, nil)
	m.AddPart("api_store", oldStore)
	st, err := m.Checkpoint()
	require.NoError(t, err)
	require.Equal(t, 40, st.Series)
	fi, err := os.Stat(filepath.Join(dir, FileName))
	require.NoError(t, err)
	require.Equal(t, fi.Size(), st.Bytes)
	require.NoFileExists(t, filepath.Join(dir, FileName+".tmp"))

	after := &recordingSink{}
	d := newDetector(t, after)
	reg := prometheus.NewRegistry()
	store := api.NewStore(100, nil)
	m2 := newManager(t, dir, d, reg, nil)
	m2.AddPart("api_store", store)
	rs, err := m2.Restore()
	require.NoError(t, err)
	require.Equal(t, RestoreStats{Found: true, Complete: true, Restored: 40, Parts: 1, Duration: rs.Duration}, rs)
	require.Equal(t, 40.0, testutil.ToFloat64(m2.metrics.restored))
	// Windows are kept as float32 offsets from a base the restore moves.
	if diff := cmp.Diff(states(old), states(d), cmpopts.EquateApprox(1e-7, 0)); diff != "" {
		t.Fatalf("restored state differs (-old +new):\n%s", diff)
	}
	a, ok := store.Get(openID)
	require.True(t, ok, "the API store came back")
	require.True(t, a.Open())

	// Warm at once: the first new sample of every series is scored; the
	// open anomaly keeps its ID and closes under it.
	require.NoError(t, d.Flush())
	b := d.Begin()
	for s := range 40 {
		b.Append("t", seriesLabels(s), []detector.Sample{{TimestampMs: ts, Value: 100}})
	}
	require.NoError(t, b.Commit(context.Background()))
	scored := 0
	d.Results(func(r *detector.Result) bool {
		if r.TimestampMs == ts {
			scored++
		}
		return true
	})
	require.Equal(t, 40, scored, "every series scored its first sample after the restore")
	for range 20 {
		ts += 15_000
		d.Append("t", spiky, []detector.Sample{{TimestampMs: ts, Value: 100}})
		require.NoError(t, d.Flush())
	}
	require.Len(t, after.events, 1)
	require.Equal(t, detector.EventClose, after.events[0].Kind)
	require.Equal(t, openID, after.events[0].ID, "closed under the ID it opened with")

	// IDs continue above the start time in ms × 1000: ones handed out after
	// the checkpoint by a process that then crashed are not reused.
	require.GreaterOrEqual(t, d.LastAnomalyID(), uint64(time.Now().Add(-time.Minute).UnixMilli())*1000)
}

func TestRestoreWithoutCheckpointStartsEmpty(t *testing.T) {
	d := newDetector(t)
	var logs bytes.Buffer
	rs, err := newManager(t, t.TempDir(), d, nil, &logs).Restore()
	require.NoError(t, err)
	require.False(t, rs.Found)
	require.Equal(t, 0, d.NumSeries())
	require.Contains(t, logs.String(), "no checkpoint to restore")
	require.Positive(t, d.LastAnomalyID())
}

// damage writes a checkpoint of 300 series (several blocks), applies
// change to the file, restores it into a fresh detector and returns what
// happened.
func TestRestoreSkipsAndCountsTheDamagedPart(t *testing.T) {
	old, _, _ := fleet(t, 300)
	dir := t.TempDir()
	_, err := newManager(t, dir, old, nil, nil).Checkpoint()
	require.NoError(t, err)
	path := filepath.Join(dir, FileName)
	orig, err := os.ReadFile(path)
	require.NoError(t, err)
	offs := blockOffsets(t, orig)
	require.Greater(t, len(offs), 4, "series span several blocks")
	seriesBlock := offs[2] // [0] meta, [1] first series block
	seriesCount := func(off int) int { return int(binary.LittleEndian.Uint32(orig[off+1:])) }

	tests := []struct {
		name   string
		change func(b []byte) []byte
		// wantRestored is the series restored; the rest must be counted.
		wantRestored int
		wantLog      string
	}{
		{
			name:         "payload byte flipped",
			change:       func(b []byte) []byte { b[seriesBlock+headerLen+10] ^= 0xff; return b },
			wantRestored: 300 - seriesCount(seriesBlock),
			wantLog:      "damaged_blocks=1",
		},
		{
			name:         "header byte flipped",
			change:       func(b []byte) []byte { b[seriesBlock+6] ^= 0x01; return b },
			wantRestored: 300 - seriesCount(seriesBlock),
			wantLog:      "damaged_blocks=1",
		},
		{
			name: "headers and payloads overwritten across blocks",
			change: func(b []byte) []byte {
				for i := seriesBlock + 5; i < offs[4]+5; i++ {
					b[i] = 0
				}
				return b
			},
			wantRestored: 300 - seriesCount(seriesBlock) - seriesCount(offs[3]) - seriesCount(offs[4]),
			wantLog:      "damaged_blocks=",
		},
		{
			name:         "last header damaged",
			change:       func(b []byte) []byte { b[len(b)-3] ^= 0x01; return b },
			wantRestored: 300,
			wantLog:      "damaged block header and no valid block after it",
		},
		{
			name:         "truncated inside a block",
			change:       func(b []byte) []byte { return b[:seriesBlock+headerLen+100] },
			wantRestored: seriesCount(offs[1]),
			wantLog:      "file truncated",
		},
		{
			name:         "truncated at a block boundary",
			change:       func(b []byte) []byte { return b[:seriesBlock] },
			wantRestored: seriesCount(offs[1]),
			wantLog:      "file truncated",
		},
		{
			name:         "not a checkpoint",
			change:       func(b []byte) []byte { return []byte("hello") },
			wantRestored: 0,
			wantLog:      "bad magic",
		},
		{
			name:         "empty file",
			change:       func(b []byte) []byte { return nil },
			wantRestored: 0,
			wantLog:      "bad magic",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, os.WriteFile(path, tc.change(slices.Clone(orig)), 0o644))
			d := newDetector(t)
			var logs bytes.Buffer
			m := newManager(t, dir, d, prometheus.NewRegistry(), &logs)
			rs, err := m.Restore()
			require.NoError(t, err, "damage is not an error: the server starts")
			require.Equal(t, tc.wantRestored, rs.Restored)
			require.Equal(t, tc.wantRestored, d.NumSeries())
			lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
			require.Len(t, lines, 1, "one log line")
			require.Contains(t, lines[0], "level=WARN")
			require.Contains(t, lines[0], tc.wantLog)
			if tc.wantRestored > 0 {
				// The meta block was intact: every lost series is counted.
				require.Equal(t, 300-tc.wantRestored, rs.Damaged)
				require.Equal(t, float64(300-tc.wantRestored), testutil.ToFloat64(m.metrics.skipped.WithLabelValues("damaged")))
			}
		})
	}
}

// blockOffsets returns the offset of every block in a checkpoint file.
func blockOffsets(t *testing.T, b []byte) []int {
	t.Helper()
	require.Equal(t, magic, string(b[:len(magic)]))
	var offs []int
	for off := len(magic); off < len(b); {
		offs = append(offs, off)
		off += headerLen + int(binary.LittleEndian.Uint32(b[off+5:]))
	}
	return offs
}

func TestRestoreCountsUndecodableAndRejectedRecords(t *testing.T) {
	good, _, _ := fleet(t, 3)
	var recs []byte
	n := 0
	good.ExportState(nil, func(st detector.SeriesState) bool {
		rec := binary.AppendUvarint(nil, 0)
		rec, _ = st.AppendBinary(rec)
		if n == 0 {
			rec[1] = 200 // a format version from the future
		}
		if n == 1 {
			st.Labels = detector.FromStrings("__name__", "other")
			rec = binary.AppendUvarint(nil, 0)
			rec, _ = st.AppendBinary(rec)
		}
		recs = binary.LittleEndian.AppendUint32(recs, uint32(len(rec)))
		recs = append(recs, rec...)
		n++
		return true
	})
	file := []byte(magic)
	file = appendBlock(file, kindMeta, 1, meta{records: 3}.payload())
	file = appendBlock(file, kindSeries, 3, recs)
	file = appendBlock(file, kindEnd, 0, nil)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, FileName), file, 0o644))

	cfg := detector.DefaultConfig
	sel, err := detector.NewMatcher(detector.MatchEqual, "__name__", "requests")
	require.NoError(t, err)
	cfg.Selection = detector.Selection{{sel}} // "other" is no longer selected
	d, err := detector.New(cfg, slog.New(slog.DiscardHandler), nil)
	require.NoError(t, err)
	d.SetModel(detector.WindowMeanModel{W: 16})
	rs, err := newManager(t, dir, d, nil, nil).Restore()
	require.NoError(t, err)
	require.Equal(t, RestoreStats{Found: true, Complete: true, Restored: 1, Undecodable: 1, Rejected: 1, Duration: rs.Duration}, rs)
}

func TestCheckpointFailureKeepsThePreviousOne(t *testing.T) {
	d, _, _ := fleet(t, 5)
	dir := t.TempDir()
	reg := prometheus.NewRegistry()
	var logs bytes.Buffer
	m := newManager(t, dir, d, reg, &logs)
	_, err := m.Checkpoint()
	require.NoError(t, err)
	before, err := os.ReadFile(filepath.Join(dir, FileName))
	require.NoError(t, err)

	// The temporary file's name taken by a directory: the write fails as on
	// an unwritable disk.
	require.NoError(t, os.Mkdir(filepath.Join(dir, FileName+".tmp"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, FileName+".tmp", "x"), nil, 0o644))
	_, err = m.Checkpoint()
	require.Error(t, err)
	after, err := os.ReadFile(filepath.Join(dir, FileName))
	require.NoError(t, err)
	require.Equal(t, before, after, "the previous checkpoint stays in place")
	require.Equal(t, 1.0, testutil.ToFloat64(m.metrics.failures))
	require.Equal(t, 2.0, testutil.ToFloat64(m.metrics.checkpoints))
	require.Contains(t, logs.String(), "cannot write checkpoint")

	// A storage path that cannot be a directory fails the same way.
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	m2 := newManager(t, filepath.Join(file, "data"), d, nil, nil)
	_, err = m2.Checkpoint()
	require.ErrorContains(t, err, "cannot create storage directory")
	_, err = m2.Restore()
	require.Error(t, err, "an unreadable path is reported; the caller starts empty")
}

func TestRunCheckpointsPeriodically(t *testing.T) {
	d, _, _ := fleet(t, 2)
	dir := t.TempDir()
	m, err := New(Config{Path: dir, Interval: 20 * time.Millisecond}, d, slog.New(slog.DiscardHandler), nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	require.Eventually(t, func() bool { return testutil.ToFloat64(m.metrics.checkpoints) >= 2 }, 5*time.Second, 10*time.Millisecond)
	cancel()
	require.NoError(t, <-done)
	require.FileExists(t, filepath.Join(dir, FileName))
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg     Config
		wantErr string
	}{
		{Config{}, ""},
		{Config{Path: "data", Interval: time.Minute}, ""},
		{Config{Path: "data"}, "--storage.checkpoint-interval must be > 0"},
		{Config{Path: "data", Interval: -time.Second}, "--storage.checkpoint-interval must be > 0"},
	} {
		err := tc.cfg.Validate()
		if tc.wantErr == "" {
			require.NoError(t, err)
		} else {
			require.ErrorContains(t, err, tc.wantErr)
		}
	}
}
