package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/sentinel-mesh/sentinel-mesh/exporter"
	"github.com/sentinel-mesh/sentinel-mesh/internal/checkpoint"
	"github.com/sentinel-mesh/sentinel-mesh/internal/metrictest"
)

// The tests in this file run the built sentinel-mesh binary as a process
// (kill -9, restarts) against in-test receivers that speak Loki's push API
// (JSON) and Alertmanager's v2 API.

// sentinelBinary builds cmd/sentinel-mesh once per test binary.
var sentinelBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "sentinel-mesh-e2e")
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "sentinel-mesh")
	root, err := os.Getwd()
	if err != nil {
		return "", err
	}
	cmd := exec.Command("go", "build", "-o", out, "./cmd/sentinel-mesh")
	cmd.Dir = filepath.Dir(root) // e2e/ is one level below the module root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %w: %s", err, b)
	}
	return out, nil
})

// proc is one sentinel-mesh process.
type proc struct {
	t    *testing.T
	cmd  *exec.Cmd
	url  string
	logs *syncBuffer
	done chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// lines returns the JSON log lines whose msg contains substr.
func (s *syncBuffer) lines(substr string) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(s.b.Bytes()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && strings.Contains(fmt.Sprint(m["msg"]), substr) {
			out = append(out, m)
		}
	}
	return out
}

func startSentinelProcess(t *testing.T, cfgYAML, storagePath string, interval time.Duration) *proc {
	t.Helper()
	bin, err := sentinelBinary()
	require.NoError(t, err)
	cfgFile := filepath.Join(t.TempDir(), "sentinel-mesh.yml")
	require.NoError(t, os.WriteFile(cfgFile, []byte(cfgYAML), 0o644))
	addr := freePort(t)
	p := &proc{t: t, url: "http://" + addr, logs: &syncBuffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(bin, "--config.file="+cfgFile, "--web.listen-address="+addr,
		"--storage.path="+storagePath, "--storage.checkpoint-interval="+interval.String(), "--log.format=json")
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	require.NoError(t, p.cmd.Start())
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("sentinel-mesh log:\n%s", tail(p.logs.b.Bytes(), 6000))
		}
	})
	waitFor(t, 60*time.Second, func() bool { return httpStatus(p.url+"/-/ready") == http.StatusOK })
	return p
}

func (p *proc) kill9() {
	require.NoError(p.t, p.cmd.Process.Signal(syscall.SIGKILL))
	<-p.done
}

func (p *proc) stop() error {
	require.NoError(p.t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-p.done:
		return err
	case <-time.After(60 * time.Second):
		p.t.Fatal("sentinel-mesh did not stop within 60s of SIGTERM")
		return nil
	}
}

// metric returns the sum of the samples of metric name in the process's
// /metrics whose labels include the name/value pairs kv.
func (p *proc) metric(name string, kv ...string) float64 {
	p.t.Helper()
	return metrictest.Value(p.t, prometheus.GathererFunc(p.scrape), name, kv...)
}

func (p *proc) scrape() ([]*dto.MetricFamily, error) {
	resp, err := http.Get(p.url + "/metrics")
	if err != nil {
		return nil, fmt.Errorf("cannot scrape %s/metrics: %w", p.url, err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("cannot parse %s/metrics: %w", p.url, err)
	}
	out := make([]*dto.MetricFamily, 0, len(fams))
	for _, f := range fams {
		out = append(out, f)
	}
	return out, nil
}

// fleetSender pushes one remote-write 1.0 request per round holding one
// sample of each series, 15 s of sample time apart.
type fleetSender struct {
	t      *testing.T
	series int
	rng    *rand.Rand
	ts     int64
	round  int
}

func newFleetSender(t *testing.T, series int) *fleetSender {
	return &fleetSender{t: t, series: series, rng: rand.New(rand.NewPCG(3, 4)), ts: time.Now().Add(-6 * time.Hour).UnixMilli()}
}

func (f *fleetSender) value(s int) float64 {
	// Slow enough that the samples a kill -9 loses (those after the last
	// checkpoint) leave no jump that is itself an anomaly.
	return 100 + 3*math.Sin(float64(f.round)/40+float64(s)) + f.rng.NormFloat64()
}

// send pushes the next round; spike multiplies series 0's value. It
// reports whether the receiver accepted it.
func (f *fleetSender) send(url string, spike float64) bool {
	req := &prompb.WriteRequest{}
	for s := range f.series {
		v := f.value(s)
		if s == 0 {
			v *= spike
		}
		req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
			Labels:  []prompb.Label{{Name: "__name__", Value: "requests"}, {Name: "instance", Value: fmt.Sprintf("host-%02d", s)}, {Name: "job", Value: "shop"}},
			Samples: []prompb.Sample{{Timestamp: f.ts, Value: v}},
		})
	}
	b, err := req.Marshal()
	require.NoError(f.t, err)
	hreq, err := http.NewRequest(http.MethodPost, url+"/api/v1/write", bytes.NewReader(snappy.Encode(nil, b)))
	require.NoError(f.t, err)
	hreq.Header.Set("Content-Encoding", "snappy")
	hreq.Header.Set("Content-Type", "application/x-protobuf")
	hreq.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	resp, err := http.DefaultClient.Do(hreq)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return false
	}
	f.ts += 15_000
	f.round++
	return true
}

// receivers is a Loki push endpoint (JSON) and an Alertmanager v2 alerts
// endpoint that record what they get.
type receivers struct {
	srv *httptest.Server

	mu     sync.Mutex
	loki   []lokiLine
	alerts []receivedAlert
}

type lokiLine struct {
	event, anomalyID, instance string
}

type receivedAlert struct {
	at    time.Time
	alert exporter.PostableAlert
}

func newReceivers(t *testing.T) *receivers {
	r := &receivers{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /loki/api/v1/push", func(w http.ResponseWriter, req *http.Request) {
		var body struct {
			Streams []struct {
				Stream map[string]string `json:"stream"`
				Values [][]any           `json:"values"`
			} `json:"streams"`
		}
		if err := json.NewDecoder(req.Body).Decode(&body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		for _, s := range body.Streams {
			for _, v := range s.Values {
				line, _ := v[1].(string)
				meta, _ := v[2].(map[string]any)
				ev := ""
				if f := strings.Fields(line); len(f) > 0 {
					ev = strings.TrimPrefix(f[0], "event=")
				}
				r.loki = append(r.loki, lokiLine{event: ev, anomalyID: fmt.Sprint(meta["anomaly_id"]), instance: fmt.Sprint(meta["instance"])})
			}
		}
		r.mu.Unlock()
		w.WriteHeader(http.StatusNoContent) // what Loki answers a successful push
	})
	mux.HandleFunc("POST /api/v2/alerts", func(w http.ResponseWriter, req *http.Request) {
		var alerts []exporter.PostableAlert
		if err := json.NewDecoder(req.Body).Decode(&alerts); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		now := time.Now()
		r.mu.Lock()
		for _, a := range alerts {
			r.alerts = append(r.alerts, receivedAlert{at: now, alert: a})
		}
		r.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	})
	r.srv = httptest.NewServer(mux)
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receivers) lokiLines() []lokiLine {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]lokiLine(nil), r.loki...)
}

func (r *receivers) alertsSince(since time.Time) []exporter.PostableAlert {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []exporter.PostableAlert
	for _, a := range r.alerts {
		if !a.at.Before(since) {
			out = append(out, a.alert)
		}
	}
	return out
}

func restartConfig(r *receivers) string {
	return fmt.Sprintf(`
detector:
  batch_interval: 10ms
  anomaly_close_after: 10m
  scoring:
    learning_period: 0s # the series are minutes old
loki:
  url: %[1]s/loki/api/v1/push
  format: json
  batch_wait: 50ms
  namespace_label: job
alertmanager:
  urls: [%[1]s]
  resend_interval: 1s
`, r.srv.URL)
}

// TestRestartAfterKillIsWarmAndKeepsOpenAnomalies kills sentinel-mesh with
// SIGKILL while samples stream in, right after a checkpoint holding an open
// anomaly, and restarts it on the same storage path.
func TestRestartAfterKillIsWarmAndKeepsOpenAnomalies(t *testing.T) {
	const series, interval = 20, time.Second
	recv := newReceivers(t)
	storage := t.TempDir()
	p1 := startSentinelProcess(t, restartConfig(recv), storage, interval)
	snd := newFleetSender(t, series)
	pace := func(url string, spike float64) {
		t.Helper()
		require.True(t, snd.send(url, spike), "round %d refused", snd.round)
		time.Sleep(30 * time.Millisecond) // inference keeps up (batch_interval 10ms)
	}
	for range 160 {
		pace(p1.url, 1)
	}
	pace(p1.url, 8) // the spike opens an anomaly on host-00
	var openID string
	waitFor(t, 10*time.Second, func() bool {
		for _, l := range recv.lokiLines() {
			if l.event == "open" && l.instance == "host-00" {
				openID = l.anomalyID
				return true
			}
		}
		return false
	})
	opened := time.Now()
	// Mid-stream: samples keep coming until after a checkpoint that
	// holds the open anomaly has completed, then SIGKILL.
	for p1.metric("sentinel_mesh_checkpoint_last_success_timestamp_seconds") < float64(opened.UnixMilli())/1000+0.05 {
		pace(p1.url, 1)
	}
	for range 5 {
		pace(p1.url, 1)
	}
	scoredBefore := p1.metric("sentinel_mesh_samples_scored_total")
	require.Positive(t, scoredBefore)
	killedAt := time.Now()
	p1.kill9()

	restartedAt := time.Now()
	p2 := startSentinelProcess(t, restartConfig(recv), storage, interval)
	restored := p2.logs.lines("checkpoint restored")
	require.Len(t, restored, 1, "one restore log line")
	require.EqualValues(t, series, restored[0]["series_restored"])
	writtenAt, err := time.Parse(time.RFC3339Nano, fmt.Sprint(restored[0]["written_at"]))
	require.NoError(t, err)
	lost := killedAt.Sub(writtenAt)
	t.Logf("state lost to kill -9: %s of samples (checkpoint interval %s)", lost.Round(time.Millisecond), interval)
	require.Less(t, lost, interval+500*time.Millisecond, "at most one checkpoint interval (plus a checkpoint's duration) lost")
	require.Equal(t, float64(series), p2.metric("sentinel_mesh_checkpoint_series_restored_total"))

	// Warm at once: the first new sample of every series is scored.
	pace(p2.url, 1)
	waitFor(t, 5*time.Second, func() bool { return p2.metric("sentinel_mesh_samples_scored_total") == series })
	require.Zero(t, p2.metric("sentinel_mesh_samples_unscored_total", "reason", "warmup"))
	require.Zero(t, p2.metric("sentinel_mesh_samples_unscored_total", "reason", "inference_lag"))
	require.GreaterOrEqual(t, p2.metric("sentinel_mesh_anomalies_open"), 1.0) // noise may have opened others

	// The API's anomaly store came back with the open anomaly.
	resp, err := http.Get(p2.url + "/api/v1/anomalies?state=open")
	require.NoError(t, err)
	var body struct {
		Data []struct {
			ID    string `json:"id"`
			State string `json:"state"`
		} `json:"data"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	resp.Body.Close()
	var openIDs []string
	for _, a := range body.Data {
		openIDs = append(openIDs, a.ID)
	}
	require.Contains(t, openIDs, openID)

	// Alertmanager is re-sent the restored alert (it would otherwise
	// expire there); calm samples then close the anomaly under its ID.
	waitFor(t, 10*time.Second, func() bool { return len(recv.alertsSince(restartedAt)) > 0 })
	closed := func() bool {
		for _, l := range recv.lokiLines() {
			if l.event == "close" && l.instance == "host-00" {
				return true
			}
		}
		return false
	}
	for i := 0; !closed(); i++ {
		require.Less(t, i, 400, "the anomaly did not close")
		pace(p2.url, 1)
	}
	var events []string
	for _, l := range recv.lokiLines() {
		if l.instance == "host-00" {
			events = append(events, l.event+" "+l.anomalyID)
		}
	}
	require.Equal(t, []string{"open " + openID, "close " + openID}, events, "one open and one close in Loki, under one ID")
	// Anomaly IDs stay unique across the restart.
	seen := map[string]bool{}
	for _, l := range recv.lokiLines() {
		if l.event == "open" {
			require.False(t, seen[l.anomalyID], "anomaly ID %s opened twice", l.anomalyID)
			seen[l.anomalyID] = true
		}
	}

	waitFor(t, 10*time.Second, func() bool {
		for _, a := range recv.alertsSince(restartedAt) {
			if !a.EndsAt.After(time.Now()) {
				return true
			}
		}
		return false
	})
	var starts []time.Time
	for _, a := range recv.alertsSince(time.Time{}) {
		if a.Labels["instance"] != "host-00" {
			continue // noise may open anomalies on the calm series
		}
		require.Equal(t, openID, a.Annotations["anomaly_id"], "every post to Alertmanager for host-00 is the one anomaly")
		starts = append(starts, a.StartsAt)
	}
	require.NotEmpty(t, starts)
	for _, s := range starts {
		require.True(t, s.Equal(starts[0]), "one alert start: no second open in Alertmanager")
	}
	require.NoError(t, p2.stop())
}

// TestRestartFromDamagedCheckpoint stops sentinel-mesh gracefully (which
// writes a final checkpoint), damages the checkpoint, and restarts.
func TestRestartFromDamagedCheckpoint(t *testing.T) {
	const series = 60
	recv := newReceivers(t)
	tests := []struct {
		name   string
		damage func(b []byte) []byte
	}{
		{"truncated", func(b []byte) []byte { return b[:len(b)*6/10] }},
		{"corrupted", func(b []byte) []byte {
			for i := len(b) / 3; i < len(b)/3+64; i++ {
				b[i] ^= 0x5a
			}
			return b
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			storage := t.TempDir()
			p1 := startSentinelProcess(t, restartConfig(recv), storage, time.Hour)
			snd := newFleetSender(t, series)
			for range 80 {
				require.True(t, snd.send(p1.url, 1))
				time.Sleep(10 * time.Millisecond)
			}
			require.NoError(t, p1.stop(), "SIGTERM: graceful stop")
			written := p1.logs.lines("checkpoint written")
			require.Len(t, written, 1, "the shutdown checkpoint (the interval is 1h)")
			require.EqualValues(t, series, written[0]["series"])

			path := filepath.Join(storage, checkpoint.FileName)
			b, err := os.ReadFile(path)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(path, tc.damage(b), 0o644))

			p2 := startSentinelProcess(t, restartConfig(recv), storage, time.Hour)
			damaged := p2.logs.lines("checkpoint damaged")
			require.Len(t, damaged, 1, "one clear log line")
			require.Equal(t, "WARN", damaged[0]["level"])
			require.Empty(t, p2.logs.lines("checkpoint restored"))
			restored := int(damaged[0]["series_restored"].(float64))
			skipped := int(damaged[0]["skipped_damaged"].(float64))
			t.Logf("restored %d, skipped %d: %v", restored, skipped, damaged[0])
			require.Positive(t, restored, "the intact part is restored")
			require.Positive(t, skipped, "the damaged part is skipped")
			require.Equal(t, series, restored+skipped, "every series is restored or counted")
			require.Equal(t, float64(skipped), p2.metric("sentinel_mesh_checkpoint_records_skipped_total", "reason", "damaged"))
			require.Equal(t, float64(restored), p2.metric("sentinel_mesh_series_active"))
			// The server runs: new samples are taken and scored.
			snd.send(p2.url, 1)
			waitFor(t, 5*time.Second, func() bool { return p2.metric("sentinel_mesh_samples_scored_total") >= float64(restored) })
			require.NoError(t, p2.stop())
		})
	}
}

// TestUnwritableStorageKeepsScoring runs sentinel-mesh with a storage path
// that cannot be created (its parent is a file; tests run as root, so
// permissions would not stop the writes).
func TestUnwritableStorageKeepsScoring(t *testing.T) {
	file := filepath.Join(t.TempDir(), "not-a-dir")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	recv := newReceivers(t)
	p := startSentinelProcess(t, restartConfig(recv), filepath.Join(file, "data"), 200*time.Millisecond)
	snd := newFleetSender(t, 5)
	for range 100 {
		require.True(t, snd.send(p.url, 1), "ingest goes on")
		time.Sleep(10 * time.Millisecond)
	}
	waitFor(t, 5*time.Second, func() bool { return p.metric("sentinel_mesh_samples_scored_total") > 0 })
	require.Positive(t, p.metric("sentinel_mesh_checkpoint_failures_total"))
	require.Zero(t, p.metric("sentinel_mesh_checkpoint_last_success_timestamp_seconds"))
	require.NotEmpty(t, p.logs.lines("cannot write checkpoint"))
	require.NotEmpty(t, p.logs.lines("cannot open checkpoint; starting empty"))
	require.NoError(t, p.stop())
}
