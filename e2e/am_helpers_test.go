package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// AlertmanagerVersion is the pinned Alertmanager the e2e tests run (the
// version go.mod's dependency graph already carries).
const AlertmanagerVersion = "v0.34.1"

// RequireComponentsEnv is set to 1 by make test: a required component that
// is missing or cannot be built then fails the test. Without it (a developer
// running this package by hand) the test is skipped instead.
const RequireComponentsEnv = "SENTINEL_REQUIRE_COMPONENTS"

// skipOrFail skips the test, or fails it when RequireComponentsEnv is 1.
func skipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv(RequireComponentsEnv) == "1" {
		t.Fatalf(format+" (%s=1: required)", append(args, RequireComponentsEnv)...)
		return
	}
	t.Skipf(format+" (set %s=1 to fail instead)", append(args, RequireComponentsEnv)...)
}

// alertmanagerBinary returns .cache/bin/alertmanager, building it when it is
// missing. When it cannot be built the test fails under make test and is
// skipped otherwise.
//
// `go install github.com/prometheus/alertmanager/cmd/alertmanager@v0.34.x`
// does not build: the module zip lacks the generated UI (ui/app/dist, which
// ui/web.go embeds). So the module source is copied, given a placeholder UI
// page, and built with go build; the API the tests use is unaffected.
func alertmanagerBinary(t *testing.T) string {
	t.Helper()
	path := filepath.Join(repoRoot(t), ".cache", "bin", "alertmanager")
	if _, err := os.Stat(path); err == nil {
		return path
	}
	t.Logf("building Alertmanager %s into %s", AlertmanagerVersion, path)
	if err := buildAlertmanager(t.TempDir(), path); err != nil {
		skipOrFail(t, "cannot build Alertmanager %s: %v", AlertmanagerVersion, err)
	}
	return path
}

func buildAlertmanager(work, out string) error {
	dl := exec.Command("go", "mod", "download", "-json", "github.com/prometheus/alertmanager@"+AlertmanagerVersion)
	dl.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	b, err := dl.Output()
	if err != nil {
		return fmt.Errorf("cannot download module: %w", err)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(b, &mod); err != nil || mod.Dir == "" {
		return fmt.Errorf("cannot parse go mod download output %q: %v", b, err)
	}
	src := filepath.Join(work, "alertmanager")
	if err := os.CopyFS(src, os.DirFS(mod.Dir)); err != nil {
		return fmt.Errorf("cannot copy module source: %w", err)
	}
	dist := filepath.Join(src, "ui", "app", "dist")
	if err := os.MkdirAll(dist, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dist, "index.html"), []byte("<html>UI not built</html>\n"), 0o644); err != nil {
		return err
	}
	build := exec.Command("go", "build", "-o", out, "./cmd/alertmanager")
	build.Dir = src
	build.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	if o, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build failed: %w: %s", err, tail(o, 2000))
	}
	return nil
}

// startAlertmanager runs Alertmanager on a loopback port with a receiver
// that drops everything, and returns its base URL.
func startAlertmanager(t *testing.T) string {
	t.Helper()
	bin := alertmanagerBinary(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(cfg, []byte(`route:
  receiver: blackhole
  group_wait: 1s
  group_interval: 1s
receivers:
  - name: blackhole
`), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freePort(t)
	startProcess(t, bin,
		"--config.file="+cfg,
		"--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--cluster.listen-address=", // no gossip: a single instance
		"--log.level=warn",
	)
	u := "http://" + addr
	waitFor(t, 30*time.Second, func() bool { return httpStatus(u+"/-/ready") == http.StatusOK })
	return u
}

// amAlert is the part of Alertmanager's GettableAlert the tests read.
type amAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt"`
	UpdatedAt   time.Time         `json:"updatedAt"`
	Status      struct {
		State string `json:"state"`
	} `json:"status"`
}

// amAlerts returns GET /api/v2/alerts (which lists only unresolved alerts).
func amAlerts(t *testing.T, base string) []amAlert {
	t.Helper()
	resp, err := http.Get(base + "/api/v2/alerts")
	if err != nil {
		t.Fatalf("cannot list alerts: %v", err)
	}
	defer resp.Body.Close()
	var out []amAlert
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("cannot decode alerts: %v", err)
	}
	return out
}

// recordingTB captures what skipOrFail does instead of ending the test.
type recordingTB struct {
	testing.TB
	fatal, skip string
}

func (r *recordingTB) Helper()                        {}
func (r *recordingTB) Fatalf(format string, a ...any) { r.fatal = fmt.Sprintf(format, a...) }
func (r *recordingTB) Skipf(format string, a ...any)  { r.skip = fmt.Sprintf(format, a...) }

func TestSkipOrFail(t *testing.T) {
	for _, tc := range []struct {
		env         string
		fatal, skip bool
	}{
		{env: "1", fatal: true},
		{env: "", skip: true},
		{env: "0", skip: true},
	} {
		t.Run("env="+tc.env, func(t *testing.T) {
			t.Setenv(RequireComponentsEnv, tc.env)
			r := &recordingTB{TB: t}
			skipOrFail(r, "cannot build %s", "x")
			if (r.fatal != "") != tc.fatal || (r.skip != "") != tc.skip {
				t.Fatalf("fatal=%q skip=%q, want fatal %v skip %v", r.fatal, r.skip, tc.fatal, tc.skip)
			}
			if msg := r.fatal + r.skip; !strings.HasPrefix(msg, "cannot build x (") {
				t.Fatalf("message %q", msg)
			}
		})
	}
}
