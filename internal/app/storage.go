package app

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
	"github.com/sentinel-mesh/sentinel-mesh/internal/api"
	"github.com/sentinel-mesh/sentinel-mesh/internal/checkpoint"
)

// storage is persistence under --storage.path (internal/checkpoint): the
// checkpoint is restored once the model is loaded and before /-/ready
// turns 200, rewritten every --storage.checkpoint-interval, and once more
// at shutdown after the inputs stopped. An empty path turns it off.
type storage struct {
	mgr    *checkpoint.Manager // nil: persistence off
	det    *detector.Detector
	logger *slog.Logger
	store  *api.Store
	resend []detector.EventSink
	// restored gates readiness; it is also what allows the shutdown
	// checkpoint: one written before the restore would replace the state
	// on disk with an empty detector.
	restored atomic.Bool
}

func newStorage(a *App) (*storage, error) {
	s := &storage{det: a.det, logger: a.logger.With("component", "checkpoint")}
	if a.opts.StoragePath == "" || a.opts.Target == TargetReceiver {
		s.restored.Store(true)
		return s, nil
	}
	cfg := checkpoint.Config{Path: a.opts.StoragePath, Interval: a.opts.CheckpointInterval}
	if cfg.Interval == 0 {
		cfg.Interval = checkpoint.DefaultInterval
	}
	mgr, err := checkpoint.New(cfg, a.det, s.logger, a.reg)
	if err != nil {
		return nil, err
	}
	s.mgr = mgr
	return s, nil
}

// ready is inner and the restore done.
func (s *storage) ready(inner func() bool) func() bool {
	return func() bool { return s.restored.Load() && inner() }
}

// setStore checkpoints the API's anomaly store with the series.
func (s *storage) setStore(st *api.Store) {
	s.store = st
	if s.mgr != nil {
		s.mgr.AddPart("api_store", st)
	}
}

// addResender adds an output that keeps open anomalies alive by re-sending
// them (Alertmanager): it is told about the restored ones. Outputs that log
// each event once (Loki) are not, so a restart sends no second open.
func (s *storage) addResender(sink detector.EventSink) { s.resend = append(s.resend, sink) }

func (s *storage) run(ctx context.Context) error {
	if s.mgr == nil {
		return nil
	}
	// Restored windows are queued for inference only with a model, so the
	// first new sample of every series is scored.
	for !s.det.Ready() {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(50 * time.Millisecond):
		}
	}
	_, _ = s.mgr.Restore() // damage is logged and counted; start with what was intact
	// Predict the restored windows before turning ready, so the first new
	// sample of every series is scored rather than left to inference lag.
	if err := s.det.Flush(); err != nil {
		s.logger.Error("cannot score restored windows", "err", err)
	}
	s.reconcile()
	s.restored.Store(true)
	return s.mgr.Run(ctx)
}

// shutdown writes the final checkpoint; call after the inputs stopped.
func (s *storage) shutdown() {
	if s.mgr == nil || !s.restored.Load() {
		return
	}
	_, _ = s.mgr.Checkpoint() // logged and counted
}

// reconcile makes the API store agree with the restored detector (their
// snapshots are moments apart) and re-announces the open anomalies to the
// re-sending outputs, with the values of their open event as the store
// kept them, so Alertmanager gets the same labels (severity) as before.
func (s *storage) reconcile() {
	var (
		resend []detector.Event
		toLog  []detector.Event // store updates
	)
	open := map[uint64]bool{}
	s.det.OpenAnomalies(func(ev detector.Event) {
		open[ev.ID] = true
		if s.store != nil {
			if a, ok := s.store.Get(ev.ID); ok && a.Open() {
				ev.TimestampMs, ev.Direction, ev.ModelVersion = a.UpdatedAtMs, a.Direction, a.ModelVersion
				ev.Value, ev.Expected, ev.Lower, ev.Upper, ev.Score, ev.PeakScore = a.Value, a.Expected, a.Lower, a.Upper, a.Score, a.PeakScore
			} else {
				toLog = append(toLog, ev) // opened after the store's snapshot
			}
		}
		resend = append(resend, ev)
	})
	if s.store != nil {
		// Open in the store but not in the detector: it closed (or its
		// series went) between the two snapshots.
		s.store.Snapshot(func(a api.Anomaly) bool {
			if a.Open() && !open[a.ID] {
				toLog = append(toLog, detector.Event{
					Kind: detector.EventClose, ID: a.ID, Tenant: a.Tenant, Labels: a.Labels,
					OpenedAtMs: a.OpenedAtMs, ClosedAtMs: a.UpdatedAtMs, TimestampMs: a.UpdatedAtMs,
					Value: a.Value, Expected: a.Expected, Lower: a.Lower, Upper: a.Upper,
					Score: a.Score, PeakScore: a.PeakScore, Direction: a.Direction, ModelVersion: a.ModelVersion,
				})
			}
			return true
		})
		if len(toLog) > 0 {
			s.store.HandleEvents(toLog)
		}
	}
	if len(resend) > 0 {
		for _, sink := range s.resend {
			sink.HandleEvents(resend)
		}
	}
}
