// Command detector-load measures the detector at scale: N active series each
// receiving one sample per interval, scored by the embedded LSTM through ONNX
// Runtime. It reports windows scored per second, the p99 time from a sample's
// arrival to the prediction its successor is scored against, and heap bytes
// per active series. It stops by itself after -duration.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"os"
	"runtime"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	commonmodel "github.com/prometheus/common/model"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
	"github.com/sentinel-mesh/sentinel-mesh/detector/onnxmodel"
)

func main() { os.Exit(run()) }

func run() int {
	var (
		numSeries = flag.Int("series", 100_000, "active series")
		interval  = flag.Duration("interval", 15*time.Second, "sample interval per series")
		duration  = flag.Duration("duration", 2*time.Minute, "measurement time after warm-up")
		modelName = flag.String("model", "embedded", "embedded (the LSTM) or baseline (window mean, no ONNX)")
		threads   = flag.Int("threads", 1, "ONNX Runtime intra-op threads (0: one per core); the server's default is 1")
		batch     = flag.Int("batch-size", 4096, "detector.batch_size")
	)
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	var model detector.Model = detector.WindowMeanModel{W: 32}
	if *modelName == "embedded" {
		m, err := onnxmodel.LoadDefault(onnxmodel.Options{IntraOpThreads: *threads, DisableSpinning: true})
		if err != nil {
			fmt.Fprintln(os.Stderr, "cannot load model:", err)
			return 1
		}
		defer m.Close()
		model = m
	}
	w := model.Window()

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	reg := prometheus.NewRegistry()
	cfg := detector.DefaultConfig
	cfg.MaxSeries = *numSeries + 1
	cfg.BatchSize = *batch
	cfg.SeriesIdleTimeout = commonmodel.Duration(time.Hour)
	d, err := detector.New(cfg, logger, reg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	d.SetModel(model)

	// Labels are rebuilt from the index each time, so the tool holds no copy.
	lbls := make(detector.Labels, 5)
	buf := make([]byte, 0, 64)
	labelsOf := func(i int) detector.Labels {
		buf = strconv.AppendInt(buf[:0], int64(i), 10)
		id := string(buf) // one small allocation; the detector clones what it keeps
		lbls[0] = detector.Label{Name: "__name__", Value: "http_requests_per_second"}
		lbls[1] = detector.Label{Name: "instance", Value: "10.0.0.1:9100"}
		lbls[2] = detector.Label{Name: "job", Value: "api"}
		lbls[3] = detector.Label{Name: "namespace", Value: "prod"}
		lbls[4] = detector.Label{Name: "pod", Value: "api-" + id}
		return lbls
	}
	value := func(i int, step int64) float64 {
		return 100 + 10*math.Sin(float64(step)/20+float64(i%97)) + float64((step*7919+int64(i))%13)/13
	}
	ms := interval.Milliseconds()
	samples := make([]detector.Sample, 1)

	// Fill every window (sample time runs ahead of wall time here).
	start := time.Now()
	for step := int64(0); step < int64(w); step++ {
		for i := range *numSeries {
			samples[0] = detector.Sample{TimestampMs: step * ms, Value: value(i, step)}
			d.Append("", labelsOf(i), samples)
		}
	}
	if err := d.Flush(); err != nil {
		fmt.Fprintln(os.Stderr, "cannot score:", err)
		return 1
	}
	runtime.GC()
	var filled runtime.MemStats
	runtime.ReadMemStats(&filled)
	perSeries := float64(filled.HeapAlloc-before.HeapAlloc) / float64(*numSeries)
	fmt.Printf("filled %d series x %d samples in %s; heap %.0f bytes/series\n", *numSeries, w, time.Since(start).Round(time.Millisecond), perSeries)

	// Steady state: every series gets one sample per interval, spread evenly.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = d.Run(ctx); close(done) }()
	const tick = 100 * time.Millisecond
	perTick := float64(*numSeries) * float64(tick) / float64(*interval)
	next, carry := 0, 0.0
	step := int64(w)
	t := time.NewTicker(tick)
	measureStart := time.Now()
	batchesBefore := histSum(reg, "sentinel_mesh_inference_batch_size")
	lagBefore := counter(reg, "sentinel_mesh_samples_unscored_total", "inference_lag")
	behind := 0
	for time.Since(measureStart) < *duration {
		<-t.C
		carry += perTick
		n := int(carry)
		carry -= float64(n)
		tickStart := time.Now()
		for range n {
			samples[0] = detector.Sample{TimestampMs: step * ms, Value: value(next, step)}
			d.Append("", labelsOf(next), samples)
			next++
			if next == *numSeries {
				next, step = 0, step+1
			}
		}
		if time.Since(tickStart) > tick {
			behind++
		}
	}
	t.Stop()
	elapsed := time.Since(measureStart)
	cancel()
	<-done
	windows := histSum(reg, "sentinel_mesh_inference_batch_size") - batchesBefore
	p99 := quantile(reg, "sentinel_mesh_prediction_latency_seconds", 0.99)
	fmt.Printf("model=%s series=%d interval=%s: offered %.0f samples/s, scored %.0f windows/s, p99 sample->prediction %s, inference-lag samples %.0f, ticks behind %d, heap %.0f bytes/series\n",
		model.Version(), *numSeries, *interval, float64(*numSeries)/interval.Seconds(), windows/elapsed.Seconds(),
		time.Duration(p99*float64(time.Second)).Round(time.Millisecond),
		counter(reg, "sentinel_mesh_samples_unscored_total", "inference_lag")-lagBefore, behind, perSeries)
	return 0
}

func family(reg *prometheus.Registry, name string) *dto.MetricFamily {
	mfs, err := reg.Gather()
	if err != nil {
		return nil
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf
		}
	}
	return nil
}

func histSum(reg *prometheus.Registry, name string) float64 {
	if mf := family(reg, name); mf != nil {
		return mf.Metric[0].GetHistogram().GetSampleSum()
	}
	return 0
}

func counter(reg *prometheus.Registry, name, reason string) float64 {
	if mf := family(reg, name); mf != nil {
		for _, m := range mf.Metric {
			for _, l := range m.Label {
				if l.GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// quantile returns the upper bound of the bucket holding quantile q.
func quantile(reg *prometheus.Registry, name string, q float64) float64 {
	mf := family(reg, name)
	if mf == nil {
		return math.NaN()
	}
	h := mf.Metric[0].GetHistogram()
	total := float64(h.GetSampleCount())
	for _, b := range h.Bucket {
		if float64(b.GetCumulativeCount()) >= q*total {
			return b.GetUpperBound()
		}
	}
	return math.Inf(1)
}
