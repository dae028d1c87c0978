// Command testserver serves sentinel-mesh's remote-write handler on a
// loopback port with a hash-and-route Appender, so rwload can measure the
// input path before the full server exists.
//
// The Appender does the routing work the detector does before scoring:
// hash the label set, pick a shard, lock it, look the series up (creating it
// on first sight, which clones the labels), and check timestamp order. It
// does no inference, so figures are an upper bound for the full server.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
	"github.com/sentinel-mesh/sentinel-mesh/remotewrite"
)

const numShards = 64

type routedSeries struct {
	labels detector.Labels
	lastTs int64
}

type shard struct {
	mu     sync.Mutex
	series map[uint64]*routedSeries
}

// routingAppender hashes and routes like the detector, without a model.
type routingAppender struct {
	shards   [numShards]shard
	accepted atomic.Int64
}

func newRoutingAppender() *routingAppender {
	a := &routingAppender{}
	for i := range a.shards {
		a.shards[i].series = map[uint64]*routedSeries{}
	}
	return a
}

var sep = []byte{0xff}

func (a *routingAppender) Append(_ string, lbls detector.Labels, samples []detector.Sample) detector.AppendStats {
	d := xxhash.New()
	for _, l := range lbls {
		_, _ = d.WriteString(l.Name)
		_, _ = d.Write(sep)
		_, _ = d.WriteString(l.Value)
		_, _ = d.Write(sep)
	}
	h := d.Sum64()
	sh := &a.shards[h%numShards]
	var st detector.AppendStats
	sh.mu.Lock()
	s, ok := sh.series[h]
	if !ok {
		// The handler's labels alias its pooled buffer: clone on creation,
		// as the detector does.
		s = &routedSeries{labels: lbls.Clone(), lastTs: -1 << 63}
		sh.series[h] = s
	}
	for _, smp := range samples {
		if detector.IsStaleNaN(smp.Value) {
			st.Stale++
			continue
		}
		if smp.TimestampMs <= s.lastTs {
			st.OutOfOrder++
			continue
		}
		s.lastTs = smp.TimestampMs
		st.Accepted++
	}
	sh.mu.Unlock()
	a.accepted.Add(int64(st.Accepted))
	return st
}

func main() {
	addr := flag.String("listen", "127.0.0.1:9201", "listen address (loopback)")
	flag.Parse()
	if err := run(*addr); err != nil {
		fmt.Fprintln(os.Stderr, "testserver:", err)
		os.Exit(1)
	}
}

func run(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("cannot parse -listen: %w", err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-listen %q: only loopback IPs are allowed", addr)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	reg := prometheus.NewRegistry()
	app := newRoutingAppender()
	h, err := remotewrite.NewHandler(remotewrite.DefaultConfig(), app, logger, reg)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/api/v1/write", h)
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	logger.Info("listening", "addr", addr)
	select {
	case err := <-errc:
		return fmt.Errorf("cannot serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("cannot shut down: %w", err)
	}
	logger.Info("stopped", "accepted_samples", app.accepted.Load())
	return nil
}
