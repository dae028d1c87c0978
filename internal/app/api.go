package app

import (
	"context"
	"net/http"

	"github.com/sentinel-mesh/sentinel-mesh/internal/api"
	"github.com/sentinel-mesh/sentinel-mesh/internal/config"
)

// The JSON API under /api/v1 (anomalies, incidents, series history, labels,
// model and build info) for the Grafana plugin and other clients.
func init() {
	register(component{name: "api", build: buildAPI})
}

func buildAPI(a *App, mux *http.ServeMux) (func(ctx context.Context) error, error) {
	store := api.NewStore(a.cfg.API.MaxAnomalies, a.reg)
	h, err := api.NewHandler(api.Options{
		Config:         a.cfg.API,
		Source:         a.det,
		Store:          store,
		ParseSelectors: config.ParseSelectors,
		TenantHeader:   a.cfg.RemoteWrite.TenantHeader,
		Logger:         a.logger.With("component", "api"),
	})
	if err != nil {
		return nil, err
	}
	a.events.add(store)
	a.storage.setStore(store)
	for _, route := range api.Routes {
		mux.Handle(route, h)
	}
	return nil, nil
}
