// Package app wires sentinel-mesh together. Tests start and stop an App in
// process; cmd/sentinel-mesh only parses flags and calls Main.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
	"github.com/sentinel-mesh/sentinel-mesh/exporter"
	"github.com/sentinel-mesh/sentinel-mesh/internal/config"
	"github.com/sentinel-mesh/sentinel-mesh/remotewrite"
)

// Options are the command-line settings of the server.
type Options struct {
	ListenAddress string // web.listen-address
	WebConfigFile string // web.config.file (exporter-toolkit TLS and basic auth)
	StoragePath   string // storage.path; empty: no persistence
	Target        string // target: all (default), receiver or detector; see docs/kafka.md
	// CheckpointInterval is storage.checkpoint-interval; 0: checkpoint.DefaultInterval.
	CheckpointInterval time.Duration
}

// App is one running sentinel-mesh.
type App struct {
	cfg      *config.Config
	opts     Options
	logger   *slog.Logger
	reg      *prometheus.Registry
	det      *detector.Detector
	models   *modelLoader
	listener net.Listener
	server   *http.Server

	events    *eventFanout
	enrichers *enricherChain
	runs      []namedRun
	kafka     kafkaState
	storage   *storage
}

type namedRun struct {
	name string
	run  func(context.Context) error
}

// New builds the components and binds the listen address; Run serves.
func New(cfg *config.Config, opts Options, logger *slog.Logger) (*App, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		versioncollector.NewCollector("sentinel_mesh"),
	)
	a := &App{cfg: cfg, opts: opts, logger: logger, reg: reg, events: &eventFanout{}, enrichers: &enricherChain{}}

	det, err := detector.New(cfg.Detector, logger.With("component", "detector"), reg, a.events)
	if err != nil {
		return nil, fmt.Errorf("cannot create detector: %w", err)
	}
	a.det = det
	if a.storage, err = newStorage(a); err != nil {
		return nil, fmt.Errorf("cannot set up storage: %w", err)
	}
	modelReg := prometheus.Registerer(reg)
	if opts.Target == TargetReceiver {
		// A receiver loads no model; exporting the loader's metrics would
		// make the mixin's model alerts fire on it.
		modelReg = prometheus.NewRegistry()
	}
	a.models = newModelLoader(cfg.Model, det, logger.With("component", "model"), modelReg)
	reg.MustRegister(exporter.NewCollector(det, cfg.Exporter.LabelNames, a.enrichers))

	rwApp, rwReady, err := a.remoteWriteAppender()
	if err != nil {
		return nil, err
	}
	rwReady = a.storage.ready(rwReady)
	rw, err := remotewrite.NewHandler(cfg.RemoteWrite, rwApp, logger.With("component", "remotewrite"), reg, remotewrite.WithReady(rwReady))
	if err != nil {
		return nil, fmt.Errorf("cannot create remote-write handler: %w", err)
	}

	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		Registry:          reg,
		EnableOpenMetrics: true,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelError),
	}))
	mux.Handle("/api/v1/write", rw)
	// Profiling, as Prometheus serves it; behind the same web config auth.
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/-/healthy", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		fmt.Fprintln(w, "Sentinel Mesh is Healthy.")
	})
	mux.HandleFunc("/-/ready", func(w http.ResponseWriter, _ *http.Request) {
		// A receiver only forwards to Kafka and needs no model.
		if !rwReady() {
			http.Error(w, "Sentinel Mesh is not ready: model not loaded or state not restored yet.", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
		fmt.Fprintln(w, "Sentinel Mesh is Ready.")
	})
	landing, err := web.NewLandingPage(web.LandingConfig{
		Name:        "Sentinel Mesh",
		Description: "Anomaly detection for Prometheus remote-write",
		Version:     version.Info(),
		Links: []web.LandingLinks{
			{Address: "/metrics", Text: "Metrics"},
			{Address: "/-/healthy", Text: "Health"},
			{Address: "/-/ready", Text: "Readiness"},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("cannot create landing page: %w", err)
	}
	mux.Handle("/", landing)

	for _, c := range components {
		run, err := c.build(a, mux)
		if err != nil {
			return nil, fmt.Errorf("cannot create %s: %w", c.name, err)
		}
		if run != nil {
			a.runs = append(a.runs, namedRun{c.name, run})
		}
	}

	l, err := net.Listen("tcp", opts.ListenAddress)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on %s: %w", opts.ListenAddress, err)
	}
	a.listener = l
	a.server = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelError),
	}
	return a, nil
}

// Addr is the address the server listens on (useful with port 0 in tests).
func (a *App) Addr() string { return a.listener.Addr().String() }

// Detector returns the app's detector.
func (a *App) Detector() *detector.Detector { return a.det }

// Registry returns the app's metrics registry.
func (a *App) Registry() *prometheus.Registry { return a.reg }

// Run serves until ctx is cancelled, then shuts down gracefully: the HTTP
// server stops taking requests and finishes the ones in flight, then the
// detector's scheduler stops.
func (a *App) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var wg sync.WaitGroup
	errc := make(chan error, 2+len(a.runs))
	run := func(name string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil {
				errc <- fmt.Errorf("%s: %w", name, err)
				cancel()
			}
		}()
	}
	if a.opts.Target != TargetReceiver {
		run("detector", a.det.Run)
		run("model", a.models.run)
		run("storage", a.storage.run)
	}
	for _, r := range a.runs {
		run(r.name, r.run)
	}

	webCfg := a.opts.WebConfigFile
	flags := &web.FlagConfig{WebConfigFile: &webCfg, WebListenAddresses: &[]string{a.opts.ListenAddress}}
	serveErr := make(chan error, 1)
	go func() { serveErr <- web.Serve(a.listener, a.server, flags, a.logger) }()

	var err error
	select {
	case <-ctx.Done():
	case err = <-serveErr:
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		cancel()
	}
	shutdownCtx, stop := context.WithTimeout(context.Background(), 10*time.Second)
	defer stop()
	if serr := a.server.Shutdown(shutdownCtx); serr != nil {
		err = errors.Join(err, fmt.Errorf("cannot shut down HTTP server: %w", serr))
	}
	cancel()
	wg.Wait()
	a.storage.shutdown() // the inputs and the scheduler have stopped
	close(errc)
	for e := range errc {
		err = errors.Join(err, e)
	}
	if m := a.det.Model(); m != nil {
		_ = m.Close()
	}
	return err
}
