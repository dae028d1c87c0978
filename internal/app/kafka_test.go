package app

import (
	"bytes"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
	"github.com/sentinel-mesh/sentinel-mesh/internal/config"
	"github.com/sentinel-mesh/sentinel-mesh/kafka"
)

func kafkaTestConfig(t *testing.T, cl *kfake.Cluster) *config.Config {
	t.Helper()
	cfg, err := config.Load("")
	require.NoError(t, err)
	k := &cfg.Kafka
	k.Brokers = cl.ListenAddrs()
	k.Consumer.Topics = []string{k.Producer.Topic}
	require.NoError(t, k.Consumer.SessionTimeout.Set("1s"))
	require.NoError(t, k.Consumer.RebalanceTimeout.Set("5s"))
	k.State.Partitions = 4
	k.State.ReplicationFactor = 1
	require.NoError(t, k.Validate())
	return cfg
}

func postRemoteWrite(t *testing.T, url, tenant string, ls detector.Labels, samples []detector.Sample) int {
	t.Helper()
	body, _ := kafka.EncodeSeriesV1(ls, samples, nil)
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	req.Header.Set("X-Scope-OrgID", tenant)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

func resultOf(d *detector.Detector, tenant string, ls detector.Labels) (detector.Result, bool) {
	var out detector.Result
	found := false
	want := ls.String()
	d.Results(func(r *detector.Result) bool {
		if r.Tenant == tenant && r.Labels.String() == want {
			out, found = *r, true
			return false
		}
		return true
	})
	return out, found
}

// --target=receiver and --target=detector joined by one Kafka topic: a
// remote-write request to the receiver is scored by the detector.
func TestReceiverAndDetectorTargetsOverKafka(t *testing.T) {
	cl, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, kafka.DefaultConfig().Producer.Topic),
		kfake.GroupMinSessionTimeout(100*time.Millisecond))
	require.NoError(t, err)
	defer cl.Close()

	recv, stopRecv := startApp(t, kafkaTestConfig(t, cl), Options{Target: TargetReceiver})
	defer stopRecv()
	det, stopDet := startApp(t, kafkaTestConfig(t, cl), Options{Target: TargetDetector})
	defer stopDet()
	require.Eventually(t, func() bool { return det.Detector().Ready() }, 30*time.Second, 50*time.Millisecond)
	window := det.Detector().Model().Window()

	url := "http://" + recv.Addr() + "/api/v1/write"
	ls := detector.FromStrings("__name__", "kafka_e2e_requests", "instance", "a:9100", "job", "e2e")
	t0 := time.Now().Add(-10 * time.Minute).Truncate(time.Second).UnixMilli()
	sample := func(i int) detector.Sample {
		return detector.Sample{TimestampMs: t0 + int64(i)*15_000, Value: 100 + float64(i%5)}
	}
	// One request fills the detector's window.
	first := make([]detector.Sample, window+2)
	for i := range first {
		first[i] = sample(i)
	}
	require.Equal(t, http.StatusNoContent, postRemoteWrite(t, url, "team-a", ls, first))
	require.Eventually(t, func() bool { return det.Detector().NumSeries() == 1 }, 20*time.Second, 50*time.Millisecond,
		"the detector app never tracked the series sent to the receiver")
	require.Zero(t, recv.Detector().NumSeries(), "the receiver must forward, not track")
	require.False(t, recv.Detector().Ready(), "a receiver loads no model")
	code, _ := get(t, "http://"+recv.Addr()+"/-/ready", nil)
	require.Equal(t, http.StatusOK, code, "a receiver is ready without a model")
	_, metrics := get(t, "http://"+recv.Addr()+"/metrics", nil)
	require.NotContains(t, metrics, "sentinel_mesh_model_last_load_success_timestamp_seconds", "model alerts must not fire on receivers")

	// Following samples, one per request, are scored once the detector
	// predicted from the full window.
	next := len(first)
	var last detector.Sample
	require.Eventually(t, func() bool {
		last = sample(next)
		next++
		if code := postRemoteWrite(t, url, "team-a", ls, []detector.Sample{last}); code != http.StatusNoContent {
			t.Logf("remote write answered %d", code)
			return false
		}
		time.Sleep(100 * time.Millisecond)
		r, ok := resultOf(det.Detector(), "team-a", ls)
		return ok && r.TimestampMs >= first[len(first)-1].TimestampMs
	}, 30*time.Second, 10*time.Millisecond, "the detector app never scored the series")
	r, _ := resultOf(det.Detector(), "team-a", ls)
	require.Equal(t, "team-a", r.Tenant)
	require.Equal(t, "e2e", r.Labels.Get("job"))

	code, body := get(t, "http://"+det.Addr()+"/metrics", nil)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `sentinel_mesh_kafka_consumer_samples_total{outcome="accepted"}`)
	code, body = get(t, "http://"+recv.Addr()+"/metrics", nil)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "sentinel_mesh_kafka_producer_samples_total")
}

// --target=detector without consumer topics is a configuration error.
func TestDetectorTargetNeedsKafka(t *testing.T) {
	cfg, err := config.Load("")
	require.NoError(t, err)
	_, err = New(cfg, Options{ListenAddress: "127.0.0.1:0", Target: TargetDetector}, slog.New(slog.DiscardHandler))
	require.Error(t, err)
}
