// Package e2e runs sentinel-mesh against real Prometheus (and Alertmanager)
// binaries. The binaries are installed by `make e2e-deps` (pinned `go install`)
// into .cache/bin; TestMain installs them itself when they are missing.
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sentinel-mesh/sentinel-mesh/internal/app"
	"github.com/sentinel-mesh/sentinel-mesh/internal/config"
)

// PrometheusModule is the pinned Prometheus the e2e tests run.
const PrometheusModule = "github.com/prometheus/prometheus/cmd/prometheus@v0.316.0"

// repoRoot is the directory holding go.mod.
func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		require.NotEqual(t, parent, dir, "go.mod not found")
		dir = parent
	}
}

// startPrometheusReceiver starts the Prometheus binary prom with an empty
// TSDB and its remote-write receiver on, and returns its URL once ready.
func startPrometheusReceiver(t testing.TB, prom string) string {
	t.Helper()
	addr := freePort(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	require.NoError(t, os.WriteFile(cfg, []byte("global:\n  scrape_interval: 1h\n"), 0o644))
	startProcess(t, prom,
		"--config.file="+cfg,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--web.enable-remote-write-receiver",
		"--log.level=warn",
	)
	url := "http://" + addr
	waitFor(t, 60*time.Second, func() bool { return httpStatus(url+"/-/ready") == http.StatusOK })
	return url
}

// toolBinary returns .cache/bin/<name>, installing module with go install when missing.
func toolBinary(t testing.TB, name, module string) string {
	t.Helper()
	bin := filepath.Join(repoRoot(t), ".cache", "bin")
	path := filepath.Join(bin, name)
	if _, err := os.Stat(path); err == nil {
		return path
	}
	t.Logf("installing %s (make e2e-deps does this ahead of time)", module)
	cmd := exec.Command("go", "install", module)
	cmd.Env = append(os.Environ(), "GOBIN="+bin)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "cannot go install %s: %s", module, out)
	return path
}

func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

// startSentinel runs sentinel-mesh in process on a loopback port.
func startSentinel(t testing.TB, cfgYAML string) (*app.App, string) {
	t.Helper()
	cfg, err := config.Parse([]byte(cfgYAML))
	require.NoError(t, err)
	// The tests' series are minutes old: scored after warm-up, as before
	// learning_period (detector.TestLearningPeriod), unless a test sets it.
	if !strings.Contains(cfgYAML, "learning_period") {
		cfg.Detector.Scoring.LearningPeriod = 0
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	a, err := app.New(cfg, app.Options{ListenAddress: "127.0.0.1:0", StoragePath: t.TempDir()}, logger)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	addr := "http://" + a.Addr()
	waitFor(t, 30*time.Second, func() bool { return httpStatus(addr+"/-/ready") == http.StatusOK })
	return a, addr
}

// startProcess starts a binary and stops it (SIGTERM, then kill) at cleanup.
func startProcess(t testing.TB, name string, args ...string) {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), filepath.Base(name)+".log")
	logFile, err := os.Create(logPath)
	require.NoError(t, err)
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		logFile.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("%s log:\n%s", filepath.Base(name), tail(b, 4000))
		}
	})
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

func httpStatus(u string) int {
	resp, err := http.Get(u)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func waitFor(t testing.TB, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// promVector runs an instant query and returns the sample values keyed by
// the value of label key.
func promVector(t testing.TB, promURL, query string, at time.Time, key string) map[string]float64 {
	t.Helper()
	q := url.Values{"query": {query}, "time": {strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64)}}
	resp, err := http.Get(promURL + "/api/v1/query?" + q.Encode())
	require.NoError(t, err)
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	require.Equal(t, "success", body.Status, body.Error)
	out := map[string]float64{}
	for _, r := range body.Data.Result {
		v, err := strconv.ParseFloat(fmt.Sprint(r.Value[1]), 64)
		require.NoError(t, err)
		out[r.Metric[key]] = v
	}
	return out
}
