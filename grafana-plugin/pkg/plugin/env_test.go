package plugin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"testing"
	"time"

	"github.com/golang/snappy"
	"golang.org/x/crypto/bcrypt"
	"google.golang.org/protobuf/encoding/protowire"
)

// The tests run against a real sentinel-mesh server built from the root
// module and started once for the package, with basic auth enabled through
// its web config. It is fed over remote write until it reports anomalies.
const (
	testUser     = "grafana"
	testPassword = "s3cret-Pa55"
	tenantA      = "team-a"
	tenantB      = "team-b"
)

var (
	serverURL   string // base URL of the running sentinel-mesh
	skipReason  string // set when the server cannot run here (no ONNX Runtime)
	serverError string // set when it could not be built or fed: tests fail
	pluginBin   string // gpx_sentinel_mesh built for this test run
	buildErrors string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "sentinelmesh-plugin-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop, err := startServer(ctx, dir)
	var nr notReadyError
	switch {
	case errors.As(err, &nr):
		skipReason = err.Error()
		if os.Getenv(RequireComponentsEnv) == "1" {
			fmt.Fprintln(os.Stderr, "sentinel-mesh never became ready; integration tests fail:", err)
		} else {
			fmt.Fprintln(os.Stderr, "sentinel-mesh has no model here, integration tests skip:", err)
		}
	case err != nil:
		serverError = err.Error()
	default:
		defer stop()
	}
	pluginBin = filepath.Join(dir, "gpx_sentinel_mesh")
	if out, err := goBuild(pluginRoot(), pluginBin, "./pkg"); err != nil {
		buildErrors = fmt.Sprintf("cannot build plugin: %v\n%s", err, out)
	}
	return m.Run()
}

// pluginRoot is grafana-plugin/; repoRoot the sentinel-mesh module.
func pluginRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func repoRoot() string { return filepath.Join(pluginRoot(), "..") }

func goBuild(dir, out, pkg string) ([]byte, error) {
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off")
	return cmd.CombinedOutput()
}

func requireServer(t *testing.T) {
	t.Helper()
	if serverError != "" {
		t.Fatal(serverError)
	}
	if skipReason != "" {
		skipOrFail(t, "%s", skipReason)
	}
}

// RequireComponentsEnv is set to 1 by the root Makefile's test target: a
// required component (ONNX Runtime, a server that becomes ready, chromium,
// node, the e2e bundle, the plugin archive) that is missing then fails the
// test. A developer running this package by hand without it gets a skip.
const RequireComponentsEnv = "SENTINEL_REQUIRE_COMPONENTS"

// skipOrFail skips the test, or fails it when RequireComponentsEnv is 1.
func skipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv(RequireComponentsEnv) == "1" {
		t.Fatalf(format+" (%s=1: this component is required)", append(args, RequireComponentsEnv)...)
	}
	t.Skipf(format+" (set %s=1 to fail instead)", append(args, RequireComponentsEnv)...)
}

// notReadyError means the server runs but never loaded its model, which
// happens where ONNX Runtime is not installed.
type notReadyError struct{ msg string }

func (e notReadyError) Error() string { return e.msg }

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func startServer(ctx context.Context, dir string) (func(), error) {
	if _, err := os.Stat(filepath.Join(repoRoot(), "cmd", "sentinel-mesh")); err != nil {
		return nil, fmt.Errorf("sentinel-mesh sources not found: %w", err)
	}
	bin := filepath.Join(dir, "sentinel-mesh")
	if out, err := goBuild(repoRoot(), bin, "./cmd/sentinel-mesh"); err != nil {
		return nil, fmt.Errorf("cannot build sentinel-mesh: %v\n%s", err, out)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.MinCost)
	if err != nil {
		return nil, err
	}
	webCfg := filepath.Join(dir, "web.yml")
	if err := os.WriteFile(webCfg, fmt.Appendf(nil, "basic_auth_users:\n  %s: %s\n", testUser, hash), 0o600); err != nil {
		return nil, err
	}
	// Fast inference and anomalies that stay open for the whole test.
	cfgFile := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgFile, []byte("detector:\n  batch_interval: 5ms\n  anomaly_close_after: 1h\n  scoring:\n    learning_period: 0s # the series are seconds old\n"), 0o600); err != nil {
		return nil, err
	}
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, bin, "--web.listen-address="+addr, "--web.config.file="+webCfg,
		"--config.file="+cfgFile, "--storage.path="+filepath.Join(dir, "data"), "--log.level=warn")
	cmd.Dir = repoRoot() // finds .cache/onnxruntime like the developer setup does
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	stop := func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	serverURL = "http://" + addr
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, _ := get("/-/ready", testUser, testPassword)
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			stop()
			return nil, notReadyError{fmt.Sprintf("sentinel-mesh did not become ready (is ONNX Runtime installed? scripts/install-onnxruntime.sh); last status %d; logs:\n%s", code, logs.String())}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := feed(); err != nil {
		stop()
		return nil, fmt.Errorf("cannot feed sentinel-mesh: %w; logs:\n%s", err, logs.String())
	}
	return stop, nil
}

func get(path, user, pass string) (int, []byte) {
	req, _ := http.NewRequest(http.MethodGet, serverURL+path, nil)
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

type testSeries struct {
	tenant string
	labels map[string]string
	value  func(i int) float64
}

// Series fed to the server; samples are one second apart and end now.
var (
	webA = map[string]string{"__name__": "http_requests_rate", "job": "api", "namespace": "prod", "workload": "web", "instance": "a"}
	webB = map[string]string{"__name__": "http_requests_rate", "job": "api", "namespace": "prod", "workload": "web", "instance": "b"}
	jobs = map[string]string{"__name__": "queue_depth", "job": "worker", "namespace": "batch"}
	// calmFleet never has an anomaly, so the detector keeps no history for
	// it: only its latest result.
	calmFleet = []map[string]string{
		{"__name__": "node_load", "job": "node", "namespace": "infra", "instance": "n1"},
		{"__name__": "node_load", "job": "node", "namespace": "infra", "instance": "n2"},
		{"__name__": "node_load", "job": "node", "namespace": "infra", "instance": "n3"},
	}
)

const (
	feedSamples = 160
	spikeAt     = 140
)

// feed sends one sample per series per request, waiting for the detector
// to score each before the next, with a spike on webA, webB and jobs.
func feed() error {
	series := []testSeries{
		{tenantA, webA, func(i int) float64 { return spiky(i, 100, 1000) }},
		{tenantA, webB, func(i int) float64 { return spiky(i, 50, 800) }},
		{tenantB, jobs, func(i int) float64 { return spiky(i, 500, 5000) }},
	}
	for k, ls := range calmFleet {
		level := float64(2 + k)
		series = append(series, testSeries{tenantA, ls, func(i int) float64 { return calm(i, level) }})
	}
	start := time.Now().Add(-feedSamples * time.Second)
	for i := range feedSamples {
		ts := start.Add(time.Duration(i) * time.Second).UnixMilli()
		for _, s := range series {
			if err := remoteWrite(s.tenant, s.labels, ts, s.value(i)); err != nil {
				return err
			}
		}
		time.Sleep(15 * time.Millisecond)
	}
	// Wait until the anomalies are in the API.
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, body := get("/api/v1/anomalies", testUser, testPassword)
		var env struct {
			Data []json.RawMessage `json:"data"`
		}
		_ = json.Unmarshal(body, &env)
		if code == http.StatusOK && len(env.Data) >= 3 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no anomalies after feeding: %d %s", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func spiky(i int, level, spike float64) float64 {
	if i == spikeAt {
		return spike
	}
	return calm(i, level)
}

func calm(i int, level float64) float64 {
	return level + level/10*math.Sin(float64(i)/4) + level/50*math.Cos(float64(i)*1.7)
}

// remoteWrite sends one sample as a Prometheus remote-write 1.0 request,
// encoding the protobuf by hand to keep the test's dependencies small.
func remoteWrite(tenant string, labels map[string]string, ts int64, v float64) error {
	names := make([]string, 0, len(labels))
	for k := range labels {
		names = append(names, k)
	}
	sort.Strings(names)
	var tsb []byte
	for _, n := range names {
		var lb []byte
		lb = protowire.AppendTag(lb, 1, protowire.BytesType)
		lb = protowire.AppendString(lb, n)
		lb = protowire.AppendTag(lb, 2, protowire.BytesType)
		lb = protowire.AppendString(lb, labels[n])
		tsb = protowire.AppendTag(tsb, 1, protowire.BytesType)
		tsb = protowire.AppendBytes(tsb, lb)
	}
	var sb []byte
	sb = protowire.AppendTag(sb, 1, protowire.Fixed64Type)
	sb = protowire.AppendFixed64(sb, math.Float64bits(v))
	sb = protowire.AppendTag(sb, 2, protowire.VarintType)
	sb = protowire.AppendVarint(sb, uint64(ts))
	tsb = protowire.AppendTag(tsb, 2, protowire.BytesType)
	tsb = protowire.AppendBytes(tsb, sb)
	var wr []byte
	wr = protowire.AppendTag(wr, 1, protowire.BytesType)
	wr = protowire.AppendBytes(wr, tsb)

	req, err := http.NewRequest(http.MethodPost, serverURL+"/api/v1/write", bytes.NewReader(snappy.Encode(nil, wr)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	req.Header.Set("X-Scope-OrgID", tenant)
	req.SetBasicAuth(testUser, testPassword)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("remote write: HTTP %d: %s", resp.StatusCode, b)
	}
	return nil
}
