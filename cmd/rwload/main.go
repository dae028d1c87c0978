// Command rwload is a Prometheus remote-write load generator for loopback
// benchmarks of sentinel-mesh (or any remote-write receiver).
//
// It prebuilds every payload before the clock starts (marshal + snappy), so
// during the run a sender only does HTTP: the receiver, not the generator,
// should be the bottleneck. Each sender owns a disjoint set of series and its
// payloads carry increasing timestamps, so TSDB receivers (Prometheus) see
// in-order data until a sender wraps around its payload ring; wraps are
// reported because a TSDB rejects the repeated timestamps as out of order.
//
// It refuses non-loopback targets: it is a benchmark tool, not a way to load
// someone else's server.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

type options struct {
	url      string
	senders  int
	series   int
	version  int
	duration time.Duration
	requests int
	payloads int
	step     time.Duration
	timeout  time.Duration
	tenant   string
}

func main() {
	var o options
	flag.StringVar(&o.url, "url", "http://127.0.0.1:9201/api/v1/write", "remote-write endpoint; must be a loopback address")
	flag.IntVar(&o.senders, "senders", 4, "concurrent senders")
	flag.IntVar(&o.series, "series", 2000, "series (one sample each) per request")
	flag.IntVar(&o.version, "version", 1, "remote-write protocol version: 1 or 2")
	flag.DurationVar(&o.duration, "duration", 30*time.Second, "stop after this long (0: only -requests bounds the run)")
	flag.IntVar(&o.requests, "requests", 0, "stop after this many requests in total (0: only -duration bounds the run)")
	flag.IntVar(&o.payloads, "payloads", 0, "distinct prebuilt payloads per sender (0: requests/senders if -requests is set, else 256)")
	flag.DurationVar(&o.step, "step", time.Second, "timestamp step between a sender's consecutive payloads")
	flag.DurationVar(&o.timeout, "timeout", 30*time.Second, "per-request timeout")
	flag.StringVar(&o.tenant, "tenant", "", "X-Scope-OrgID header value (empty: not sent)")
	flag.Parse()

	if err := run(o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "rwload:", err)
		os.Exit(1)
	}
}

func (o *options) validate() error {
	if err := checkLoopback(o.url); err != nil {
		return err
	}
	switch {
	case o.senders <= 0:
		return errors.New("-senders must be > 0")
	case o.series <= 0:
		return errors.New("-series must be > 0")
	case o.version != 1 && o.version != 2:
		return errors.New("-version must be 1 or 2")
	case o.duration <= 0 && o.requests <= 0:
		return errors.New("one of -duration or -requests must be > 0, or the run would never stop")
	case o.duration < 0 || o.requests < 0 || o.payloads < 0:
		return errors.New("-duration, -requests and -payloads must not be negative")
	}
	if o.payloads == 0 {
		o.payloads = 256
		if o.requests > 0 {
			o.payloads = (o.requests + o.senders - 1) / o.senders
		}
	}
	return nil
}

// checkLoopback accepts only literal loopback IPs and "localhost".
// Hostnames are not resolved: a DNS answer could point anywhere.
func checkLoopback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("cannot parse -url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("-url %q: scheme must be http or https", raw)
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("-url %q: refusing non-loopback host %q (rwload only targets 127.0.0.0/8, ::1 or localhost)", raw, host)
}

type payload struct {
	body    []byte
	samples int
}

// buildPayloads prebuilds o.payloads requests per sender, in parallel.
func buildPayloads(o options, t0 time.Time) ([][]payload, int, error) {
	out := make([][]payload, o.senders)
	var (
		wg    sync.WaitGroup
		errMu sync.Mutex
		err   error
	)
	jobs := make(chan [2]int)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for j := range jobs {
				s, k := j[0], j[1]
				ts := t0.Add(time.Duration(k) * o.step).UnixMilli()
				body, e := encode(o, s, ts)
				if e != nil {
					errMu.Lock()
					err = e
					errMu.Unlock()
					continue
				}
				out[s][k] = payload{body: body, samples: o.series}
			}
		})
	}
	for s := range out {
		out[s] = make([]payload, o.payloads)
		for k := range o.payloads {
			jobs <- [2]int{s, k}
		}
	}
	close(jobs)
	wg.Wait()
	total := 0
	for _, ps := range out {
		for _, p := range ps {
			total += len(p.body)
		}
	}
	return out, total, err
}

// seriesLabels are realistic node-exporter-like label sets, 8 labels each,
// disjoint between senders (instance carries the sender number).
func seriesLabels(sender, i int) labels.Labels {
	return labels.FromStrings(
		"__name__", "node_metric_"+strconv.Itoa(i%40)+"_total",
		"cluster", "eu-west-1-prod",
		"container", "node-exporter",
		"env", "production",
		"instance", fmt.Sprintf("10.%d.%d.%d:9100", sender%256, (i/256)%256, i%256),
		"job", "node",
		"namespace", "monitoring",
		"pod", fmt.Sprintf("node-exporter-%05x", (i/40)*7919%0xfffff),
	)
}

func encode(o options, sender int, ts int64) ([]byte, error) {
	var raw []byte
	var err error
	if o.version == 2 {
		st := writev2.NewSymbolTable()
		req := writev2.Request{Timeseries: make([]writev2.TimeSeries, o.series)}
		for i := range o.series {
			req.Timeseries[i] = writev2.TimeSeries{
				LabelsRefs: st.SymbolizeLabels(seriesLabels(sender, i), nil),
				Samples:    []writev2.Sample{{Value: float64(i%100) + float64(ts%60000)/1000, Timestamp: ts}},
				Metadata:   writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_COUNTER},
			}
		}
		req.Symbols = st.Symbols()
		raw, err = req.Marshal()
	} else {
		req := prompb.WriteRequest{Timeseries: make([]prompb.TimeSeries, o.series)}
		for i := range o.series {
			var pl []prompb.Label
			seriesLabels(sender, i).Range(func(l labels.Label) { pl = append(pl, prompb.Label{Name: l.Name, Value: l.Value}) })
			req.Timeseries[i] = prompb.TimeSeries{Labels: pl, Samples: []prompb.Sample{{Value: float64(i%100) + float64(ts%60000)/1000, Timestamp: ts}}}
		}
		raw, err = req.Marshal()
	}
	if err != nil {
		return nil, fmt.Errorf("cannot marshal payload: %w", err)
	}
	return snappy.Encode(nil, raw), nil
}

type senderStats struct {
	requests, ok, accepted, transportErrs, wraps int
	codes                                        map[int]int
	lat                                          []time.Duration
	firstErr                                     string
}

func run(o options, stdout io.Writer) error {
	if err := o.validate(); err != nil {
		return err
	}
	// Start the data 30 minutes in the past so that, at the default step and
	// payload count, every timestamp is inside a fresh TSDB head's window.
	t0 := time.Now().Add(-30 * time.Minute)
	buildStart := time.Now()
	payloads, totalBytes, err := buildPayloads(o, t0)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "prebuilt %d payloads (%d senders x %d) of %d series, v%d: %.1f MiB compressed, %.1f KiB/request, in %v\n",
		o.senders*o.payloads, o.senders, o.payloads, o.series, o.version,
		float64(totalBytes)/(1<<20), float64(totalBytes)/float64(o.senders*o.payloads)/1024, time.Since(buildStart).Round(time.Millisecond))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if o.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.duration)
		defer cancel()
	}
	client := &http.Client{
		Timeout: o.timeout,
		Transport: &http.Transport{
			MaxIdleConnsPerHost: o.senders,
			DisableCompression:  true,
			ForceAttemptHTTP2:   false,
		},
	}
	defer client.CloseIdleConnections()

	ct := "application/x-protobuf;proto=prometheus.WriteRequest"
	version := "0.1.0"
	if o.version == 2 {
		ct = "application/x-protobuf;proto=io.prometheus.write.v2.Request"
		version = "2.0.0"
	}

	// -requests is split into fixed per-sender quotas (not a shared
	// budget) so that no sender sends more than its payload ring holds.
	quota := func(s int) int {
		q := o.requests / o.senders
		if s < o.requests%o.senders {
			q++
		}
		return q
	}
	stats := make([]senderStats, o.senders)
	start := time.Now()
	var wg sync.WaitGroup
	for s := range o.senders {
		wg.Go(func() {
			st := &stats[s]
			st.codes = map[int]int{}
			for k := 0; ctx.Err() == nil; k++ {
				if o.requests > 0 && k >= quota(s) {
					return
				}
				if k > 0 && k%len(payloads[s]) == 0 {
					st.wraps++
				}
				p := payloads[s][k%len(payloads[s])]
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.url, bytes.NewReader(p.body))
				if err != nil {
					st.transportErrs++
					return
				}
				req.Header.Set("Content-Type", ct)
				req.Header.Set("Content-Encoding", "snappy")
				req.Header.Set("X-Prometheus-Remote-Write-Version", version)
				req.Header.Set("User-Agent", "sentinel-mesh-rwload")
				if o.tenant != "" {
					req.Header.Set("X-Scope-OrgID", o.tenant)
				}
				t := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() != nil {
						return // the run ended mid-request: not an error
					}
					st.requests++
					st.transportErrs++
					if st.firstErr == "" {
						st.firstErr = err.Error()
					}
					continue
				}
				body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
				resp.Body.Close()
				st.lat = append(st.lat, time.Since(t))
				st.requests++
				st.codes[resp.StatusCode]++
				// Prefer the 2.0 written header: it is what the receiver says
				// it kept. Without it (1.0 receivers), count 2xx as all.
				if w := resp.Header.Get("X-Prometheus-Remote-Write-Samples-Written"); w != "" {
					if n, err := strconv.Atoi(w); err == nil {
						st.accepted += n
					}
				} else if resp.StatusCode/100 == 2 {
					st.accepted += p.samples
				}
				if resp.StatusCode/100 == 2 {
					st.ok++
				} else if st.firstErr == "" {
					st.firstErr = fmt.Sprintf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(body))
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)

	var total senderStats
	total.codes = map[int]int{}
	for _, st := range stats {
		total.requests += st.requests
		total.ok += st.ok
		total.accepted += st.accepted
		total.transportErrs += st.transportErrs
		total.wraps += st.wraps
		total.lat = append(total.lat, st.lat...)
		for c, n := range st.codes {
			total.codes[c] += n
		}
		if total.firstErr == "" {
			total.firstErr = st.firstErr
		}
	}
	slices.Sort(total.lat)
	q := func(p float64) time.Duration {
		if len(total.lat) == 0 {
			return 0
		}
		return total.lat[min(len(total.lat)-1, int(p*float64(len(total.lat))))]
	}
	fmt.Fprintf(stdout, "elapsed %v, requests %d (%.1f/s), ok %d, transport errors %d, codes %v\n",
		elapsed.Round(time.Millisecond), total.requests, float64(total.requests)/elapsed.Seconds(), total.ok, total.transportErrs, total.codes)
	fmt.Fprintf(stdout, "accepted samples %d: %.0f samples/s; latency p50 %v p90 %v p99 %v max %v\n",
		total.accepted, float64(total.accepted)/elapsed.Seconds(),
		q(0.5).Round(time.Microsecond), q(0.9).Round(time.Microsecond), q(0.99).Round(time.Microsecond), q(1).Round(time.Microsecond))
	if total.wraps > 0 {
		fmt.Fprintf(stdout, "warning: senders wrapped their payload rings %d times; TSDB receivers reject repeated timestamps (raise -payloads or bound with -requests)\n", total.wraps)
	}
	if total.firstErr != "" {
		fmt.Fprintf(stdout, "first error: %s\n", total.firstErr)
	}
	if total.ok == 0 {
		return errors.New("no request succeeded")
	}
	return nil
}
