package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
	"github.com/sentinel-mesh/sentinel-mesh/detector/onnxmodel"
	"github.com/sentinel-mesh/sentinel-mesh/internal/config"
)

// modelLoader loads the configured model into the detector and, when a model
// directory is configured, reloads it when a new version appears there. A bad
// model is rejected with a log line and a metric while the old one keeps serving.
type modelLoader struct {
	cfg      config.ModelConfig
	det      *detector.Detector
	logger   *slog.Logger
	failures prometheus.Counter
	lastOK   prometheus.Gauge
	version  string
}

func newModelLoader(cfg config.ModelConfig, det *detector.Detector, logger *slog.Logger, reg prometheus.Registerer) *modelLoader {
	l := &modelLoader{
		cfg:    cfg,
		det:    det,
		logger: logger,
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sentinel_mesh_model_load_failures_total",
			Help: "Models that could not be loaded; the previous model keeps serving.",
		}),
		lastOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sentinel_mesh_model_last_load_success_timestamp_seconds",
			Help: "When the current model was loaded.",
		}),
	}
	reg.MustRegister(l.failures, l.lastOK)
	return l
}

func (l *modelLoader) options() onnxmodel.Options {
	return onnxmodel.Options{LibraryPath: l.cfg.RuntimeLibrary, IntraOpThreads: l.cfg.IntraOpThreads, DisableSpinning: !l.cfg.AllowSpinning}
}

// load loads the model once: from the directory if configured, else the
// embedded default. A configured directory that holds no model yet (a fresh
// volume waiting for its first training run) also gets the embedded default
// until a model appears there.
func (l *modelLoader) load() error {
	var (
		m   onnxmodel.Loaded
		err error
	)
	_, statErr := os.Stat(filepath.Join(l.cfg.Dir, "model.json"))
	switch {
	case l.cfg.Dir == "":
		m, err = onnxmodel.LoadDefault(l.options())
	case errors.Is(statErr, fs.ErrNotExist) && l.det.Model() == nil:
		l.logger.Warn("model directory holds no model.json yet; serving the embedded model until one appears", "dir", l.cfg.Dir)
		m, err = onnxmodel.LoadDefault(l.options())
	default:
		m, err = onnxmodel.Load(l.cfg.Dir, l.options())
	}
	if err != nil {
		l.failures.Inc()
		return err
	}
	old := l.det.Model()
	l.det.SetModel(m)
	if old != nil {
		if err := old.Close(); err != nil {
			l.logger.Warn("cannot close previous model", "err", err)
		}
	}
	l.version = m.Version()
	l.lastOK.SetToCurrentTime()
	_, dist := m.(detector.DistributionModel)
	l.logger.Info("model loaded", "version", m.Version(), "window", m.Window(), "format", m.Metadata().Format, "distribution", dist, "dir", l.cfg.Dir)
	return nil
}

// dirVersion reads the version in the directory's model.json without loading the network.
func (l *modelLoader) dirVersion() (string, error) {
	b, err := os.ReadFile(filepath.Join(l.cfg.Dir, "model.json"))
	if err != nil {
		return "", err
	}
	var meta struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(b, &meta); err != nil {
		return "", fmt.Errorf("cannot parse model.json: %w", err)
	}
	return meta.Version, nil
}

// run loads the model, retrying until it succeeds, then watches the model
// directory for new versions.
func (l *modelLoader) run(ctx context.Context) error {
	interval := time.Duration(l.cfg.ReloadInterval)
	for {
		err := l.load()
		if err == nil {
			break
		}
		l.logger.Error("cannot load model; retrying", "err", err, "retry_in", interval)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(interval):
		}
	}
	if l.cfg.Dir == "" {
		<-ctx.Done()
		return nil
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	failedVersion := ""
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		v, err := l.dirVersion()
		if err != nil || v == l.version || v == failedVersion {
			continue
		}
		if err := l.load(); err != nil {
			failedVersion = v
			l.logger.Error("cannot load new model version; keeping the current one", "version", v, "current", l.version, "err", err)
			continue
		}
		failedVersion = ""
	}
}
