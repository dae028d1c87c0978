package plugin_test

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestAppPageInBrowser renders the app page in headless Chromium against the
// live server: e2e/harness.tsx bundles the page with a stand-in for
// @grafana/runtime whose resource calls go to the Sentinel Mesh API through
// e2e/serve.mjs. It needs chromium, node and `npx webpack -c
// e2e/webpack.config.cjs` (make e2e); without them it skips, or fails
// under SENTINEL_REQUIRE_COMPONENTS=1 (make test). Set
// SCREENSHOT_OUT=path.png to keep the screenshot.
func TestAppPageInBrowser(t *testing.T) {
	requireServer(t)
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		skipOrFail(t, "chromium not installed (make chromium)")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		skipOrFail(t, "node not installed")
	}
	e2e := filepath.Join(pluginRoot(), "e2e")
	if _, err := os.Stat(filepath.Join(e2e, "dist", "harness.js")); err != nil {
		skipOrFail(t, "e2e harness not built (make e2e): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	addr, err := freePort()
	require.NoError(t, err)
	port := addr[strings.LastIndex(addr, ":")+1:]
	srv := exec.CommandContext(ctx, node, filepath.Join(e2e, "serve.mjs"))
	srv.Env = append(os.Environ(), "SENTINEL_URL="+serverURL, "SENTINEL_USER="+testUser, "SENTINEL_PASSWORD="+testPassword, "PORT="+port)
	out, err := srv.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, srv.Start())
	t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	url := strings.TrimSpace(strings.TrimPrefix(line, "listening on "))

	browser := func(args ...string) []byte {
		base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
			"--disable-background-networking", "--no-first-run", "--hide-scrollbars",
			"--user-data-dir=" + t.TempDir(), "--virtual-time-budget=15000"}
		cmd := exec.CommandContext(ctx, chromium, append(append(base, args...), url)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		b, err := cmd.Output()
		require.NoError(t, err, stderr.String())
		return b
	}

	dom := string(browser("--dump-dom"))
	require.Equal(t, 3, strings.Count(dom, `data-testid="anomaly-row"`), "one row per open anomaly")
	require.Contains(t, dom, "http_requests_rate")
	require.Contains(t, dom, "queue_depth")
	require.Equal(t, 3, strings.Count(dom, `data-testid="sparkline"`), "a sparkline per anomaly")
	require.Contains(t, dom, `data-testid="sparkline-band"`)
	require.Contains(t, dom, "/explore?")

	shot := filepath.Join(t.TempDir(), "app-page.png")
	if p := os.Getenv("SCREENSHOT_OUT"); p != "" {
		shot = p
	}
	browser("--screenshot="+shot, "--window-size=1400,700")
	info, err := os.Stat(shot)
	require.NoError(t, err)
	require.Greater(t, info.Size(), int64(10_000), "a rendered page, not a blank one")
	t.Logf("screenshot: %s (%d bytes)", shot, info.Size())
}
