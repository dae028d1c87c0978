package app

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"golang.org/x/crypto/bcrypt"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
	"github.com/sentinel-mesh/sentinel-mesh/internal/config"
	"github.com/sentinel-mesh/sentinel-mesh/models"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// ONNX Runtime's environment and the HTTP client's idle connections
		// outlive a test by design.
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	)
}

func startApp(t *testing.T, cfg *config.Config, opts Options) (*App, func()) {
	t.Helper()
	if opts.ListenAddress == "" {
		opts.ListenAddress = "127.0.0.1:0"
	}
	a, err := New(cfg, opts, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	return a, func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(15 * time.Second):
			t.Fatal("app did not stop within 15s")
		}
	}
}

func get(t *testing.T, url string, mod func(*http.Request)) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	if mod != nil {
		mod(req)
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestStartServeStop(t *testing.T) {
	cfg, err := config.Load("")
	require.NoError(t, err)
	a, stop := startApp(t, cfg, Options{})
	base := "http://" + a.Addr()
	code, _ := get(t, base+"/-/healthy", nil)
	require.Equal(t, http.StatusOK, code)
	require.Eventually(t, func() bool {
		code, _ := get(t, base+"/-/ready", nil)
		return code == http.StatusOK
	}, 30*time.Second, 50*time.Millisecond)
	code, body := get(t, base+"/metrics", nil)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "sentinel_mesh_model_info{version=")
	require.Contains(t, body, "go_goroutines")
	stop()
}

func TestNotReadyWhileModelMissing(t *testing.T) {
	cfg, err := config.Load("")
	require.NoError(t, err)
	cfg.Model.Dir = t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(cfg.Model.Dir, "model.json"), []byte(`{"format":"bogus"}`), 0o644))
	a, stop := startApp(t, cfg, Options{})
	defer stop()
	base := "http://" + a.Addr()
	code, body := get(t, base+"/-/ready", nil)
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, body, "model not loaded")
	code, _ = get(t, base+"/-/healthy", nil)
	require.Equal(t, http.StatusOK, code)

	// Remote-write is refused with a retryable status while not ready.
	req, err := http.NewRequest(http.MethodPost, base+"/api/v1/write", bytes.NewReader(nil))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("Content-Encoding", "snappy")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
}

// startModelDirApp starts the app on an empty, quickly polled model
// directory and waits until it serves the embedded model.
func startModelDirApp(t *testing.T) (*config.Config, *App, func()) {
	t.Helper()
	cfg, err := config.Load("")
	require.NoError(t, err)
	cfg.Model.Dir = t.TempDir()
	cfg.Model.ReloadInterval = model.Duration(100 * time.Millisecond)
	a, stop := startApp(t, cfg, Options{})
	require.Eventually(t, func() bool { return a.Detector().Ready() }, 30*time.Second, 50*time.Millisecond)
	return cfg, a, stop
}

func TestEmptyModelDirServesEmbeddedModelThenReloads(t *testing.T) {
	cfg, a, stop := startModelDirApp(t)
	defer stop()
	embedded := a.Detector().Model().Version()

	// A new version appears in the watched directory: copy the embedded
	// model under another version string.
	for _, name := range []string{"model.onnx", "model.json"} {
		b, err := fs.ReadFile(models.Default, path.Join(models.DefaultDir, name))
		require.NoError(t, err)
		if name == "model.json" {
			b = bytes.Replace(b, []byte(`"version": "`+embedded+`"`), []byte(`"version": "retrained-1"`), 1)
		}
		require.NoError(t, os.WriteFile(filepath.Join(cfg.Model.Dir, name+".tmp"), b, 0o644))
	}
	// model.json last, so the loader never sees a half-written model.
	require.NoError(t, os.Rename(filepath.Join(cfg.Model.Dir, "model.onnx.tmp"), filepath.Join(cfg.Model.Dir, "model.onnx")))
	require.NoError(t, os.Rename(filepath.Join(cfg.Model.Dir, "model.json.tmp"), filepath.Join(cfg.Model.Dir, "model.json")))
	require.Eventually(t, func() bool { return a.Detector().Model().Version() == "retrained-1" }, 10*time.Second, 50*time.Millisecond)

	// A broken model is rejected and the current one keeps serving.
	require.NoError(t, os.WriteFile(filepath.Join(cfg.Model.Dir, "model.onnx"), []byte("not onnx"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(cfg.Model.Dir, "model.json"), bytes.Replace(mustRead(t, filepath.Join(cfg.Model.Dir, "model.json")), []byte("retrained-1"), []byte("broken-2"), 1), 0o644))
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(a.models.failures) >= 1
	}, 10*time.Second, 50*time.Millisecond)
	require.Equal(t, "retrained-1", a.Detector().Model().Version())
}

// TestModelDirReloadsBetweenFormats swaps a sentinel-mesh/v2 (distribution)
// model into the watched directory and back to a v1 one.
func TestModelDirReloadsBetweenFormats(t *testing.T) {
	cfg, a, stop := startModelDirApp(t)
	defer stop()
	install := func(files map[string][]byte) {
		// model.json last, so the loader never sees a half-written model.
		for _, name := range []string{"model.onnx", "model.json"} {
			tmp := filepath.Join(cfg.Model.Dir, name+".tmp")
			require.NoError(t, os.WriteFile(tmp, files[name], 0o644))
			require.NoError(t, os.Rename(tmp, filepath.Join(cfg.Model.Dir, name)))
		}
	}
	v2Dir := filepath.Join("..", "..", "detector", "onnxmodel", "testdata", "v2")
	v2 := map[string][]byte{"model.onnx": mustRead(t, filepath.Join(v2Dir, "model.onnx")), "model.json": mustRead(t, filepath.Join(v2Dir, "model.json"))}
	install(v2)
	require.Eventually(t, func() bool { return a.Detector().Model().Version() == "test-gauss-lstm-w32-u16" }, 10*time.Second, 50*time.Millisecond)
	_, ok := a.Detector().Model().(detector.DistributionModel)
	require.True(t, ok, "a v2 model must reach the detector as a detector.DistributionModel")

	v1 := map[string][]byte{}
	for _, name := range []string{"model.onnx", "model.json"} {
		b, err := fs.ReadFile(models.Default, path.Join(models.DefaultDir, name))
		require.NoError(t, err)
		v1[name] = b
	}
	v1["model.json"] = bytes.Replace(v1["model.json"], []byte(`"version": "`), []byte(`"version": "v1-again-`), 1)
	install(v1)
	require.Eventually(t, func() bool {
		_, dist := a.Detector().Model().(detector.DistributionModel)
		return strings.HasPrefix(a.Detector().Model().Version(), "v1-again-") && !dist
	}, 10*time.Second, 50*time.Millisecond)
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	return b
}

func TestBasicAuthFromWebConfig(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	require.NoError(t, err)
	webCfg := filepath.Join(t.TempDir(), "web.yml")
	require.NoError(t, os.WriteFile(webCfg, []byte("basic_auth_users:\n  admin: "+string(hash)+"\n"), 0o600))
	cfg, err := config.Load("")
	require.NoError(t, err)
	a, stop := startApp(t, cfg, Options{WebConfigFile: webCfg})
	defer stop()
	base := "http://" + a.Addr()
	require.Eventually(t, func() bool {
		code, _ := get(t, base+"/-/healthy", nil)
		return code == http.StatusUnauthorized
	}, 5*time.Second, 50*time.Millisecond)
	code, _ := get(t, base+"/-/healthy", func(r *http.Request) { r.SetBasicAuth("admin", "s3cret") })
	require.Equal(t, http.StatusOK, code)
	code, _ = get(t, base+"/metrics", func(r *http.Request) { r.SetBasicAuth("admin", "wrong") })
	require.Equal(t, http.StatusUnauthorized, code)
}

func TestMainRejectsBadConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yml")
	require.NoError(t, os.WriteFile(path, []byte("detector:\n  batch_size: -1\n"), 0o644))
	var stderr bytes.Buffer
	code := Main([]string{"--config.file=" + path, "--web.listen-address=127.0.0.1:0", "--log.level=error"}, io.Discard, &stderr)
	require.Equal(t, 1, code)
}
