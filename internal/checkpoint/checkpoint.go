// Package checkpoint persists the detector's series state (and opaque parts
// such as the API's anomaly store) under --storage.path, so a restart
// continues scoring where it stopped: periodic checkpoints, one at
// shutdown, and a restore before the server reports ready. See
// docs/operations.md.
package checkpoint

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
)

// FileName is the checkpoint's name under the storage path; it is written as
// FileName+".tmp" and renamed into place once complete and synced.
const FileName = "checkpoint.bin"

// DefaultInterval is the default of --storage.checkpoint-interval.
const DefaultInterval = 5 * time.Minute

// Config is the storage part of the command line.
type Config struct {
	// Path is the directory of the checkpoint (--storage.path); empty
	// disables persistence.
	Path string
	// Interval is the time between checkpoints
	// (--storage.checkpoint-interval), the most state a crash can lose.
	Interval time.Duration
}

// Enabled reports whether persistence is on.
func (c Config) Enabled() bool { return c.Path != "" }

// Validate names the flag of an invalid value.
func (c Config) Validate() error {
	if c.Enabled() && c.Interval <= 0 {
		return fmt.Errorf("--storage.checkpoint-interval must be > 0, got %s", c.Interval)
	}
	return nil
}

// Part is an opaque part of the checkpoint besides the series, versioned by
// its owner.
type Part interface {
	AppendCheckpoint(b []byte) []byte
	RestoreCheckpoint(data []byte) error
}

type namedPart struct {
	name string
	part Part
}

// Manager writes and restores checkpoints of one detector.
type Manager struct {
	cfg     Config
	det     *detector.Detector
	parts   []namedPart
	logger  *slog.Logger
	metrics *metrics
	now     func() time.Time

	mu      sync.Mutex // one checkpoint at a time; guards the buffers
	recs    []byte     // one shard's records
	ends    []int      // end offset of each record in recs
	partBuf []byte
}

// New returns a manager for det. cfg must be enabled.
func New(cfg Config, det *detector.Detector, logger *slog.Logger, reg prometheus.Registerer) (*Manager, error) {
	if !cfg.Enabled() {
		return nil, errors.New("checkpoint: no storage path")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Manager{cfg: cfg, det: det, logger: logger, metrics: newMetrics(reg), now: time.Now}, nil
}

// AddPart adds a part, checkpointed under name; call before Restore.
func (m *Manager) AddPart(name string, p Part) {
	m.parts = append(m.parts, namedPart{name, p})
}

// File is the checkpoint's path.
func (m *Manager) File() string { return filepath.Join(m.cfg.Path, FileName) }

// Run writes a checkpoint every interval until ctx is done. The final
// checkpoint is the caller's: it must come after the inputs stopped.
func (m *Manager) Run(ctx context.Context) error {
	t := time.NewTicker(m.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			_, _ = m.Checkpoint() // logged and counted
		}
	}
}

// Stats describe one checkpoint.
type Stats struct {
	Series   int
	Bytes    int64
	Duration time.Duration
}

// Checkpoint writes the state of every series and every part to a temporary
// file, syncs it, renames it over the previous checkpoint and syncs the
// directory. Each shard is snapshotted under its own lock and written after
// releasing it, so ingest and scoring go on. A failure (unwritable or full
// disk) is logged and counted; the previous checkpoint stays in place.
func (m *Manager) Checkpoint() (Stats, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	start := m.now()
	st, err := m.write()
	st.Duration = m.now().Sub(start)
	m.metrics.checkpoints.Inc()
	if err != nil {
		m.metrics.failures.Inc()
		m.logger.Error("cannot write checkpoint; the previous one stays in place", "path", m.File(), "duration", st.Duration, "err", err)
		return st, err
	}
	m.metrics.duration.Observe(st.Duration.Seconds())
	m.metrics.lastSuccess.Set(float64(m.now().UnixMilli()) / 1000)
	m.metrics.lastBytes.Set(float64(st.Bytes))
	m.metrics.lastSeries.Set(float64(st.Series))
	m.logger.Info("checkpoint written", "path", m.File(), "series", st.Series, "bytes", st.Bytes, "duration", st.Duration)
	return st, nil
}

func (m *Manager) write() (st Stats, err error) {
	if err := os.MkdirAll(m.cfg.Path, 0o755); err != nil {
		return st, fmt.Errorf("cannot create storage directory: %w", err)
	}
	tmp := m.File() + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return st, fmt.Errorf("cannot create checkpoint file: %w", err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	// Unbuffered: blocks are large enough that a buffer would only add a
	// copy of every byte.
	w := &countingWriter{w: f}
	if _, err := io.WriteString(w, magic); err != nil {
		return st, fmt.Errorf("cannot write checkpoint: %w", err)
	}
	md := meta{createdMs: m.now().UnixMilli(), lastAnomalyID: m.det.LastAnomalyID()}
	// Written again in place at the end, once the record count is known.
	if err := writeBlock(w, kindMeta, 1, md.payload()); err != nil {
		return st, err
	}
	for i := range m.det.Shards() {
		m.recs, m.ends = m.recs[:0], m.ends[:0]
		m.det.SnapshotShard(i, func(s *detector.SeriesState, anomalyID uint64) {
			// The length goes before the record and is known after it: a
			// fixed-size field, filled in, saves copying the record.
			at := len(m.recs)
			m.recs = binary.AppendUvarint(append(m.recs, 0, 0, 0, 0), anomalyID)
			m.recs, _ = s.AppendBinary(m.recs) // never fails
			binary.LittleEndian.PutUint32(m.recs[at:], uint32(len(m.recs)-at-4))
			m.ends = append(m.ends, len(m.recs))
		})
		// The shard's lock is released: split into blocks and write.
		from, n := 0, 0
		for j, end := range m.ends {
			n++
			last := j == len(m.ends)-1
			if last || m.ends[j+1]-from > maxBlockBytes {
				if err := writeBlock(w, kindSeries, n, m.recs[from:end]); err != nil {
					return st, err
				}
				from, n = end, 0
			}
		}
		st.Series += len(m.ends)
	}
	for _, p := range m.parts {
		m.partBuf = appendString(m.partBuf[:0], p.name)
		m.partBuf = p.part.AppendCheckpoint(m.partBuf)
		if err := writeBlock(w, kindPart, 1, m.partBuf); err != nil {
			return st, err
		}
	}
	if err := writeBlock(w, kindEnd, 0, nil); err != nil {
		return st, err
	}
	md.records = uint64(st.Series)
	if _, err := f.WriteAt(appendBlock(nil, kindMeta, 1, md.payload()), int64(len(magic))); err != nil {
		return st, fmt.Errorf("cannot write checkpoint: %w", err)
	}
	if err := f.Sync(); err != nil {
		return st, fmt.Errorf("cannot sync checkpoint: %w", err)
	}
	if err := f.Close(); err != nil {
		return st, fmt.Errorf("cannot close checkpoint: %w", err)
	}
	if err := os.Rename(tmp, m.File()); err != nil {
		return st, fmt.Errorf("cannot rename checkpoint into place: %w", err)
	}
	st.Bytes = w.n
	// The rename is durable only once the directory is synced.
	if err := syncDir(m.cfg.Path); err != nil {
		return st, fmt.Errorf("cannot sync storage directory: %w", err)
	}
	return st, nil
}

func writeBlock(w io.Writer, kind byte, count int, payload []byte) error {
	h := blockHeader(kind, count, payload)
	if _, err := w.Write(h[:]); err != nil {
		return fmt.Errorf("cannot write checkpoint: %w", err)
	}
	if _, err := w.Write(payload); err != nil {
		return fmt.Errorf("cannot write checkpoint: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// RestoreStats describe one restore.
type RestoreStats struct {
	Found    bool // a checkpoint file existed
	Complete bool // it ended with its end block
	Restored int  // series restored
	// Skipped series records: damaged (in a block whose checksum failed or
	// that the file cut off), undecodable (e.g. a newer format) or rejected
	// by the detector (detector.max_series, detector.selectors).
	Damaged, Undecodable, Rejected int
	DamagedBlocks                  int
	Parts                          int // parts restored
	Duration                       time.Duration
}

// Restore loads the checkpoint into the detector and the parts. A missing
// file is a fresh start; damage is skipped (whatever is intact is restored),
// counted and reported in one log line: only an unreadable file is an error,
// and even then the server should start empty. The detector must have its
// model, so full windows are queued and each series is scored on its first
// new sample. Anomaly IDs continue above the checkpoint's, and above the
// start time in milliseconds × 1000, so IDs handed out after the last
// checkpoint before a crash are not reused.
func (m *Manager) Restore() (rs RestoreStats, err error) {
	start := m.now()
	seed := uint64(max(start.UnixMilli(), 0)) * 1000
	defer func() {
		m.det.SeedAnomalyIDs(seed)
		rs.Duration = m.now().Sub(start)
		m.metrics.restoreDuration.Set(rs.Duration.Seconds())
	}()
	f, err := os.Open(m.File())
	if errors.Is(err, fs.ErrNotExist) {
		m.logger.Info("no checkpoint to restore; starting empty", "path", m.File())
		return rs, nil
	}
	if err != nil {
		m.logger.Error("cannot open checkpoint; starting empty", "path", m.File(), "err", err)
		return rs, fmt.Errorf("cannot open checkpoint: %w", err)
	}
	defer f.Close()
	rs.Found = true

	br := &blockReader{r: bufio.NewReaderSize(f, 1<<20)}
	var (
		md      meta
		haveMD  bool
		stopErr error
		st      detector.SeriesState
		maxID   uint64
	)
	if err := br.readMagic(); err != nil {
		stopErr = err
	}
	for stopErr == nil {
		b, err := br.next()
		if errors.Is(err, errBadHeader) {
			rs.DamagedBlocks++
			if br.resync() == nil {
				continue
			}
		}
		if err != nil {
			if err != io.EOF || !rs.Complete {
				stopErr = err
			}
			break
		}
		if b.damaged {
			rs.DamagedBlocks++
			if b.kind == kindSeries {
				rs.Damaged += b.count
			}
			continue
		}
		switch b.kind {
		case kindMeta:
			md, haveMD = parseMeta(b.payload)
		case kindSeries:
			m.restoreRecords(b, &st, &rs, &maxID)
		case kindPart:
			m.restorePart(b.payload, &rs)
		case kindEnd:
			rs.Complete = true
		}
	}
	if stopErr == io.EOF {
		stopErr = io.ErrUnexpectedEOF // ended without its end block
	}
	if haveMD {
		seed = max(seed, md.lastAnomalyID)
		// The meta block knows how many records were written: whatever was
		// not seen intact was damaged, including blocks after a bad header.
		seen := uint64(rs.Restored + rs.Undecodable + rs.Rejected)
		if md.records > seen {
			rs.Damaged = int(md.records - seen)
		}
	}
	seed = max(seed, maxID)
	m.metrics.restored.Add(float64(rs.Restored))
	m.metrics.skipped.WithLabelValues("damaged").Add(float64(rs.Damaged))
	m.metrics.skipped.WithLabelValues("undecodable").Add(float64(rs.Undecodable))
	m.metrics.skipped.WithLabelValues("rejected").Add(float64(rs.Rejected))
	attrs := []any{"path", m.File(), "series_restored", rs.Restored,
		"skipped_damaged", rs.Damaged, "skipped_undecodable", rs.Undecodable, "skipped_rejected", rs.Rejected,
		"damaged_blocks", rs.DamagedBlocks, "parts", rs.Parts, "duration", m.now().Sub(start)}
	if haveMD {
		attrs = append(attrs, "written_at", time.UnixMilli(md.createdMs).UTC())
	}
	switch {
	case stopErr != nil || rs.DamagedBlocks > 0 || rs.Undecodable > 0:
		if stopErr != nil {
			attrs = append(attrs, "stopped_at_offset", br.offset, "err", stopReason(stopErr))
		}
		m.logger.Warn("checkpoint damaged; restored the intact part and skipped the rest", attrs...)
	default:
		m.logger.Info("checkpoint restored", attrs...)
	}
	return rs, nil
}

func stopReason(err error) string {
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "file truncated"
	case errors.Is(err, errBadHeader):
		return "damaged block header and no valid block after it"
	}
	return err.Error()
}

func (m *Manager) restoreRecords(b block, st *detector.SeriesState, rs *RestoreStats, maxID *uint64) {
	p := b.payload
	seen := 0
	for len(p) >= 4 {
		n := binary.LittleEndian.Uint32(p)
		if uint64(n) > uint64(len(p)-4) {
			break
		}
		rec := p[4 : 4+n]
		p = p[4+n:]
		seen++
		id, k := binary.Uvarint(rec)
		if k <= 0 {
			rs.Undecodable++
			continue
		}
		if err := st.UnmarshalBinary(rec[k:]); err != nil {
			rs.Undecodable++
			continue
		}
		if !m.det.RestoreState(*st, id) {
			rs.Rejected++
			continue
		}
		rs.Restored++
		*maxID = max(*maxID, id)
	}
	// A block whose checksum holds but whose framing does not is a writer
	// bug rather than disk damage; its unread records still count.
	if seen < b.count {
		rs.Undecodable += b.count - seen
	}
}

func (m *Manager) restorePart(payload []byte, rs *RestoreStats) {
	n, k := binary.Uvarint(payload)
	if k <= 0 || n > uint64(len(payload)-k) {
		m.logger.Warn("checkpoint part has no valid name; skipped")
		return
	}
	name := string(payload[k : k+int(n)])
	data := payload[k+int(n):]
	for _, p := range m.parts {
		if p.name != name {
			continue
		}
		if err := p.part.RestoreCheckpoint(data); err != nil {
			m.logger.Warn("cannot restore checkpoint part; skipped", "part", name, "err", err)
			return
		}
		rs.Parts++
		return
	}
	m.logger.Warn("checkpoint holds an unknown part; skipped", "part", name)
}

type metrics struct {
	checkpoints     prometheus.Counter
	failures        prometheus.Counter
	duration        prometheus.Histogram
	lastSuccess     prometheus.Gauge
	lastBytes       prometheus.Gauge
	lastSeries      prometheus.Gauge
	restored        prometheus.Counter
	skipped         *prometheus.CounterVec
	restoreDuration prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		checkpoints: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sentinel_mesh_checkpoints_total",
			Help: "Checkpoints attempted (periodic and at shutdown).",
		}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sentinel_mesh_checkpoint_failures_total",
			Help: "Checkpoints that could not be written (unwritable or full disk); the previous checkpoint stays in place.",
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sentinel_mesh_checkpoint_duration_seconds",
			Help:    "Wall time of a successful checkpoint.",
			Buckets: prometheus.ExponentialBuckets(0.01, 3, 10),
		}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sentinel_mesh_checkpoint_last_success_timestamp_seconds",
			Help: "When the last successful checkpoint completed.",
		}),
		lastBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sentinel_mesh_checkpoint_last_size_bytes",
			Help: "Size of the last successful checkpoint.",
		}),
		lastSeries: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sentinel_mesh_checkpoint_last_series",
			Help: "Series in the last successful checkpoint.",
		}),
		restored: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sentinel_mesh_checkpoint_series_restored_total",
			Help: "Series restored from the checkpoint at start.",
		}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sentinel_mesh_checkpoint_records_skipped_total",
			Help: "Series records of the checkpoint not restored, by reason (damaged, undecodable, rejected).",
		}, []string{"reason"}),
		restoreDuration: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sentinel_mesh_checkpoint_restore_duration_seconds",
			Help: "Wall time of the restore at start.",
		}),
	}
	for _, r := range []string{"damaged", "undecodable", "rejected"} {
		m.skipped.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.checkpoints, m.failures, m.duration, m.lastSuccess, m.lastBytes, m.lastSeries, m.restored, m.skipped, m.restoreDuration)
	}
	return m
}
