package remotewrite

import (
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/golang/snappy"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
)

const benchSeries = 2000

// nopAppender is the benchmark's Appender: it accepts everything and does
// nothing, so the figures are decoder and handler cost only.
type nopAppender struct{}

func (nopAppender) Append(_ string, _ detector.Labels, s []detector.Sample) detector.AppendStats {
	return detector.AppendStats{Accepted: len(s)}
}

// reportPerSample reports wall ns/sample, samples/s, and CPU ns/sample
// (process user+sys time since cpu0, GC included).
func reportPerSample(b *testing.B, samples int, cpu0 time.Duration) {
	n := float64(b.N * samples)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/sample")
	b.ReportMetric(n/b.Elapsed().Seconds(), "samples/s")
	if cpu := processCPU() - cpu0; cpu > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/n, "cpu-ns/sample")
	}
}

// BenchmarkDecodeV1 decodes a 2,000-series prometheus.WriteRequest (8
// labels, 1 sample each) into a reused WriteRequest, validation included.
// Steady state must be 0 allocs/op.
func BenchmarkDecodeV1(b *testing.B) {
	buf, err := genV1(benchSeries, 1700000000000).Marshal()
	if err != nil {
		b.Fatal(err)
	}
	lim := DefaultConfig().limits()
	var wr WriteRequest
	if err := wr.DecodeV1(buf, lim); err != nil { // warm-up: grow the pools
		b.Fatal(err)
	}
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	cpu0 := processCPU()
	for b.Loop() {
		if err := wr.DecodeV1(buf, lim); err != nil {
			b.Fatal(err)
		}
	}
	reportPerSample(b, benchSeries, cpu0)
}

// BenchmarkDecodeV2 is BenchmarkDecodeV1 for io.prometheus.write.v2.Request.
func BenchmarkDecodeV2(b *testing.B) {
	buf, err := genV2(benchSeries, 1700000000000).Marshal()
	if err != nil {
		b.Fatal(err)
	}
	lim := DefaultConfig().limits()
	var wr WriteRequest
	if err := wr.DecodeV2(buf, lim); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	cpu0 := processCPU()
	for b.Loop() {
		if err := wr.DecodeV2(buf, lim); err != nil {
			b.Fatal(err)
		}
	}
	reportPerSample(b, benchSeries, cpu0)
}

// discardWriter is a minimal http.ResponseWriter so the benchmark measures
// the handler, not httptest.ResponseRecorder.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }

// BenchmarkHandler is the in-process end-to-end path: body read, snappy
// decode, protobuf decode, validation, Append to a no-op Appender, response
// headers and metrics. Per-request allocations (http.Header values,
// metric label lookups) remain; none scale with the number of samples.
func BenchmarkHandler(b *testing.B) {
	for _, tc := range []struct {
		name, ct string
		raw      func() ([]byte, error)
	}{
		{"v1", ctV1, func() ([]byte, error) { return genV1(benchSeries, 1700000000000).Marshal() }},
		{"v2", ctV2, func() ([]byte, error) { return genV2(benchSeries, 1700000000000).Marshal() }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			raw, err := tc.raw()
			if err != nil {
				b.Fatal(err)
			}
			body := snappy.Encode(nil, raw)
			h, _ := newTestHandler(b, DefaultConfig(), nopAppender{})
			rd := bytes.NewReader(body)
			req, err := http.NewRequest(http.MethodPost, "/api/v1/write", nil)
			if err != nil {
				b.Fatal(err)
			}
			req.Header.Set("Content-Type", tc.ct)
			req.Header.Set("Content-Encoding", "snappy")
			req.ContentLength = int64(len(body))
			req.Body = io.NopCloser(rd)
			w := &discardWriter{h: http.Header{}}
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			cpu0 := processCPU()
			for b.Loop() {
				rd.Reset(body)
				clear(w.h)
				h.ServeHTTP(w, req)
				if w.code != http.StatusNoContent {
					b.Fatalf("status %d", w.code)
				}
			}
			reportPerSample(b, benchSeries, cpu0)
		})
	}
}
