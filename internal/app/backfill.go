package app

import (
	"context"
	"net/http"
	"time"

	"github.com/sentinel-mesh/sentinel-mesh/internal/backfill"
)

// Backfill warms series from a Prometheus-compatible store's history
// (docs/backfill.md): at start for the backfill.startup selectors, and for
// each new series the detector reports.
func init() {
	register(component{name: "backfill", build: buildBackfill})
}

func buildBackfill(a *App, _ *http.ServeMux) (func(ctx context.Context) error, error) {
	if !a.cfg.Backfill.Enabled() || a.opts.Target == TargetReceiver {
		return nil, nil
	}
	s, err := backfill.New(a.cfg.Backfill, a.logger.With("component", "backfill"), a.reg)
	if err != nil {
		return nil, err
	}
	a.det.OnNewSeries(s.Notify)
	// Startup backfill needs the model, and must see the series a
	// checkpoint restores so it leaves them alone.
	ready := a.storage.ready(a.det.Ready)
	return func(ctx context.Context) error {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for !ready() {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
		}
		return s.Run(ctx, a.det)
	}, nil
}
