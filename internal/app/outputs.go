package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/sentinel-mesh/sentinel-mesh/exporter"
	"github.com/sentinel-mesh/sentinel-mesh/internal/k8s"
)

// The outputs component: Kubernetes enrichment (built first so the outputs
// can use its labels and incidents), then Loki, remote-write of scores and
// Alertmanager. Each part is optional and off by default.
func init() {
	register(component{name: "outputs", build: buildOutputs})
}

func buildOutputs(a *App, _ *http.ServeMux) (func(context.Context) error, error) {
	cfg := a.cfg
	names := cfg.Exporter.LabelNames
	var (
		runs      []namedRun
		incidents exporter.IncidentAssigner
	)
	if cfg.Kubernetes.Enabled {
		client, err := k8s.NewClient(cfg.Kubernetes)
		if err != nil {
			return nil, err
		}
		enr, err := k8s.NewEnricher(cfg.Kubernetes, client, a.logger.With("component", "kubernetes"), a.reg)
		if err != nil {
			return nil, fmt.Errorf("cannot create Kubernetes enrichment: %w", err)
		}
		a.enrichers.add(enr)
		if cfg.Kubernetes.IncidentWindow > 0 {
			incidents = k8s.NewIncidents(time.Duration(cfg.Kubernetes.IncidentWindow), enr)
		}
		runs = append(runs, namedRun{"kubernetes", enr.Run})
	}
	if cfg.Loki.Enabled() {
		l, err := exporter.NewLoki(cfg.Loki, names, a.enrichers, incidents, a.logger.With("component", "loki"), a.reg)
		if err != nil {
			return nil, fmt.Errorf("cannot create Loki output: %w", err)
		}
		a.events.add(l)
		runs = append(runs, namedRun{"loki", l.Run})
	}
	if cfg.RemoteWriteOut.Enabled() {
		w, err := exporter.NewRemoteWriteOut(cfg.RemoteWriteOut, a.det, names, a.enrichers, a.logger.With("component", "remote_write_out"), a.reg)
		if err != nil {
			return nil, fmt.Errorf("cannot create remote-write output: %w", err)
		}
		runs = append(runs, namedRun{"remote_write_out", w.Run})
	}
	if cfg.Alertmanager.Enabled() {
		am, err := exporter.NewAlertmanager(cfg.Alertmanager, names, a.enrichers, incidents, a.logger.With("component", "alertmanager"), a.reg)
		if err != nil {
			return nil, fmt.Errorf("cannot create Alertmanager output: %w", err)
		}
		a.events.add(am)
		a.storage.addResender(am)
		runs = append(runs, namedRun{"alertmanager", am.Run})
	}
	if len(runs) == 0 {
		return nil, nil
	}
	return func(ctx context.Context) error {
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			errs []error
		)
		for _, r := range runs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := r.run(ctx); err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("%s: %w", r.name, err))
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		return errors.Join(errs...)
	}, nil
}
