//go:build unix

package kafka

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
	"github.com/sentinel-mesh/sentinel-mesh/detector/onnxmodel"
	"github.com/sentinel-mesh/sentinel-mesh/internal/metrictest"
	"github.com/sentinel-mesh/sentinel-mesh/remotewrite"
)

// processCPU is the user+system CPU time of the process (every goroutine
// and ONNX Runtime thread: sender, handler, kfake, consumer, detector).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// e2eLoad is the prebuilt load: senders × requests snappy Remote-Write 1.0
// payloads; each sender owns `series` series (node_exporter-like, 6
// labels) and every request carries one sample of each, one step later than
// the previous request.
type e2eLoad struct {
	series, senders, perSender int
	payloads                   [][][]byte // [sender][request]
}

// warmupSteps are sent before the clock starts: they fill the 32-sample
// windows and the calibration warm-up, so the timed part is steady state.
const warmupSteps = 40

func buildLoad(series, senders, perSender int) *e2eLoad {
	perSender += warmupSteps
	l := &e2eLoad{series: series, senders: senders, perSender: perSender, payloads: make([][][]byte, senders)}
	t0 := time.Now().Add(-2 * time.Hour).UnixMilli()
	labels := make([]detector.Labels, series)
	var raw []byte
	for s := range senders {
		for i := range series {
			labels[i] = detector.FromStrings("__name__", "node_cpu_seconds_total", "cpu", strconv.Itoa(i%16),
				"instance", fmt.Sprintf("host-%d-%d:9100", s, i/16), "job", "node", "mode", "idle", "cluster", "bench")
		}
		l.payloads[s] = make([][]byte, perSender)
		for r := range perSender {
			raw = raw[:0]
			ts := t0 + int64(r)*15_000
			for i := range series {
				v := 1000 + float64(r)*0.5 + float64((i*7+r*3)%11)
				raw = appendWriteRequestV1(raw, labels[i], []detector.Sample{{TimestampMs: ts, Value: v}}, detector.MetricTypeUnknown)
			}
			l.payloads[s][r] = snappy.Encode(nil, raw)
		}
	}
	return l
}

func (l *e2eLoad) samples(from, to int) int { return l.series * l.senders * (to - from) }

// send posts payloads [from, to) of every sender, each sender in its own goroutine over one
// keep-alive connection, and fails on any answer but 204.
func (l *e2eLoad) send(b *testing.B, url string, from, to int) {
	tr := &http.Transport{MaxIdleConnsPerHost: l.senders}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: time.Minute}
	var wg sync.WaitGroup
	errs := make(chan error, l.senders)
	for s := range l.senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, p := range l.payloads[s][from:to] {
				req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(p))
				req.Header.Set("Content-Type", "application/x-protobuf")
				req.Header.Set("Content-Encoding", "snappy")
				req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
				resp, err := client.Do(req)
				if err != nil {
					errs <- err
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusNoContent {
					errs <- fmt.Errorf("status %d: %s", resp.StatusCode, body)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

func benchModel(b *testing.B, name string) detector.Model {
	switch name {
	case "windowmean":
		return detector.WindowMeanModel{W: 32} // the embedded model's window
	case "onnx":
		m, err := onnxmodel.LoadDefault(onnxmodel.Options{})
		if err != nil {
			b.Skipf("ONNX Runtime not available: %v", err)
		}
		b.Cleanup(func() { _ = m.Close() })
		return m
	}
	b.Fatalf("unknown model %q", name)
	return nil
}

// BenchmarkEndToEnd measures samples/s through the remote-write handler into
// the detector, over HTTP from the same prebuilt load:
//
//   - direct: handler → detector (--target=all);
//   - kafka: handler → Producer (--target=receiver) → kfake → Consumer →
//     detector (--target=detector), all in this process.
//
// b.N is the number of requests (use -benchtime=Nx); the clock stops once
// the detector has appended every sample and run the final inference. It
// reports samples/s, wall and CPU ns/sample (whole process: sender, kfake,
// both sides), and the fraction of samples that were scored (a sample is
// scored when the prediction from the window before it was ready).
//
// SENTINEL_BENCH_SERIES (default 1000) series per request,
// SENTINEL_BENCH_SENDERS (default 4) concurrent senders,
// SENTINEL_BENCH_PARTITIONS (default 4) partitions of the samples topic.
func BenchmarkEndToEnd(b *testing.B) {
	series := envInt("SENTINEL_BENCH_SERIES", 1000)
	senders := envInt("SENTINEL_BENCH_SENDERS", 4)
	partitions := envInt("SENTINEL_BENCH_PARTITIONS", 4)
	for _, mode := range []string{"saturate", "lockstep"} {
		for _, model := range []string{"windowmean", "onnx"} {
			for _, path := range []string{"direct", "kafka"} {
				b.Run(mode+"/"+path+"/"+model, func(b *testing.B) {
					load := buildLoad(series, senders, max(1, (b.N+senders-1)/senders))
					runEndToEnd(b, load, path, model, int32(partitions), mode == "lockstep")
				})
			}
		}
	}
}

// runEndToEnd sends the load through path. saturate: senders send as fast
// as they are answered. lockstep: every sender sends one step, then the
// clock waits until the detector has it and ran inference, so every sample
// is scored in both paths (the production regime, one sample per series per
// scrape interval, compressed in time).
func runEndToEnd(b *testing.B, load *e2eLoad, path, model string, partitions int32, lockstep bool) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	reg := prometheus.NewRegistry()
	d, err := detector.New(detector.DefaultConfig, slog.New(slog.DiscardHandler), reg)
	if err != nil {
		b.Fatal(err)
	}
	d.SetModel(benchModel(b, model))
	wg.Add(1)
	go func() { defer wg.Done(); _ = d.Run(ctx) }()

	var (
		app      detector.Appender = d
		consumed func() float64
	)
	if path == "kafka" {
		cl := newCluster(b, partitions, "samples")
		cfg := testConfig(cl, "samples")
		cfg.Producer.Topic = "samples"
		cfg.State.Topic = "" // handoff off: the figure is the data path
		p, err := NewProducer(cfg, ProducerOptions{})
		if err != nil {
			b.Fatal(err)
		}
		defer p.Close()
		app = p
		m := NewMetrics(nil)
		c, err := NewConsumer(cfg, ConsumerOptions{Target: d, Metrics: m, Ready: d.Ready})
		if err != nil {
			b.Fatal(err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); _ = c.Run(ctx) }()
		waitFor(b, 30*time.Second, "consumer joined", func() bool { return c.ownedCount() == int(partitions) })
		accepted := m.samples.WithLabelValues("accepted")
		consumed = func() float64 { return counterValue(accepted) }
	}
	h, err := remotewrite.NewHandler(remotewrite.DefaultConfig(), app, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	url := srv.URL + "/api/v1/write"
	drain := func(n int) {
		if consumed != nil {
			waitFor(b, 10*time.Minute, "detector consumed every sample", func() bool { return consumed() >= float64(n) })
		}
		if err := d.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	warm := load.samples(0, warmupSteps)
	for step := range warmupSteps { // one step at a time: every warm-up sample is scored
		load.send(b, url, step, step+1)
		drain(load.samples(0, step+1))
	}
	scored0 := metrictest.Value(b, reg, "sentinel_mesh_samples_scored_total")

	total := load.samples(warmupSteps, load.perSender)
	b.ResetTimer()
	cpu0 := processCPU()
	start := time.Now()
	if lockstep {
		for step := warmupSteps; step < load.perSender; step++ {
			load.send(b, url, step, step+1)
			drain(load.samples(0, step+1))
		}
	} else {
		load.send(b, url, warmupSteps, load.perSender)
		drain(warm + total)
	}
	elapsed := time.Since(start)
	cpu := processCPU() - cpu0
	b.StopTimer()

	if n := d.NumSeries(); n != load.series*load.senders {
		b.Fatalf("detector tracks %d series, want %d", n, load.series*load.senders)
	}
	scored := metrictest.Value(b, reg, "sentinel_mesh_samples_scored_total") - scored0
	b.ReportMetric(float64(total)/elapsed.Seconds(), "samples/s")
	b.ReportMetric(float64(elapsed.Nanoseconds())/float64(total), "ns/sample")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(total), "cpu-ns/sample")
	b.ReportMetric(scored/float64(total), "scored/sample")
}
