package api_test

import (
	"encoding/json"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
	"github.com/sentinel-mesh/sentinel-mesh/internal/api"
	"github.com/sentinel-mesh/sentinel-mesh/internal/config"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const baseMs = int64(1_700_000_000_000)

var (
	webA  = detector.FromStrings("__name__", "http_requests", "job", "api", "namespace", "prod", "workload", "web", "instance", "a")
	webB  = detector.FromStrings("__name__", "http_requests", "job", "api", "namespace", "prod", "workload", "web", "instance", "b")
	queue = detector.FromStrings("__name__", "queue_depth", "job", "worker", "namespace", "batch")
	calm  = detector.FromStrings("__name__", "cpu", "job", "node", "namespace", "infra")
)

type env struct {
	srv   *httptest.Server
	det   *detector.Detector
	store *api.Store
}

// newEnv feeds a real detector (window-mean model, no ONNX) for 200s so that
// webB has a closed upward anomaly (opened at 120s), webA an open upward one
// (190s), queue (tenant t2) an open downward one (195s), and calm none.
// The detector keeps history only for series that had an anomaly.
func newEnv(t *testing.T, mod func(*api.Config)) *env {
	t.Helper()
	cfg := api.DefaultConfig()
	if mod != nil {
		mod(&cfg)
	}
	reg := prometheus.NewRegistry()
	store := api.NewStore(cfg.MaxAnomalies, reg)
	dcfg := detector.DefaultConfig
	dcfg.AnomalyCloseAfter = model.Duration(30 * time.Second)
	// The spikes come early in short series (120 s of 200), where the
	// empirical tails are not settled yet, and webB's anomaly must close
	// within 80 s, before robust updates keep a spike in the level term for
	// longer: the API, not the calibration, is under test.
	dcfg.Scoring.Threshold = 0.5
	dcfg.Scoring.RobustUpdates = false
	dcfg.Scoring.LearningPeriod = 0 // minutes-long series
	det, err := detector.New(dcfg, slog.New(slog.DiscardHandler), reg, store)
	require.NoError(t, err)
	det.SetModel(detector.WindowMeanModel{W: 8})

	rng := rand.New(rand.NewPCG(7, 11))
	feed := func(tenant string, ls detector.Labels, i int, v float64) {
		det.Append(tenant, ls, []detector.Sample{{TimestampMs: baseMs + int64(i)*1000, Value: v}})
		require.NoError(t, det.Flush())
	}
	wave := func(i int, level float64) float64 {
		return level + level/10*math.Sin(float64(i)/5) + rng.NormFloat64()*level/100
	}
	const n = 200
	spike := func(i, at int, v, level float64) float64 {
		if i == at {
			return v
		}
		return wave(i, level)
	}
	for i := range n + 1 {
		feed("t1", webA, i, spike(i, 190, 1000, 100))
		feed("t1", webB, i, spike(i, 120, 1000, 50))
		feed("t2", queue, i, spike(i, 195, 0, 500))
		feed("t1", calm, i, wave(i, 10))
	}

	h, err := api.NewHandler(api.Options{
		Config: cfg, Source: det, Store: store, ParseSelectors: config.ParseSelectors,
		TenantHeader: "X-Scope-OrgID",
		Now:          func() time.Time { return time.UnixMilli(baseMs + 300_000) },
	})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &env{srv: srv, det: det, store: store}
}

type envelope struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Warnings  []string        `json:"warnings"`
}

func (e *env) do(t *testing.T, method, path string, hdr map[string]string) (int, envelope) {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, nil)
	require.NoError(t, err)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := e.srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	var env envelope
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&env))
	return resp.StatusCode, env
}

func q(path string, kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return path + "?" + v.Encode()
}

func TestAnomalies(t *testing.T) {
	e := newEnv(t, nil)
	require.Equal(t, 3, e.store.Len())

	tests := []struct {
		name      string
		path      string
		hdr       map[string]string
		wantIDsOf []detector.Labels // expected anomalies, newest first
		check     func(t *testing.T, as []api.AnomalyJSON)
	}{
		{name: "all", path: "/api/v1/anomalies", wantIDsOf: []detector.Labels{queue, webA, webB}},
		{name: "open", path: q("/api/v1/anomalies", "state", "open"), wantIDsOf: []detector.Labels{queue, webA}},
		{name: "closed", path: q("/api/v1/anomalies", "state", "closed"), wantIDsOf: []detector.Labels{webB},
			check: func(t *testing.T, as []api.AnomalyJSON) {
				require.Equal(t, "closed", as[0].State)
				require.NotNil(t, as[0].ClosedAt)
				require.True(t, as[0].ClosedAt.After(as[0].OpenedAt))
				require.Equal(t, "up", as[0].Direction)
				require.Equal(t, "prediction", as[0].Cause, "a one-sample spike")
				require.GreaterOrEqual(t, float64(as[0].PeakScore), 0.5)
			}},
		{name: "direction down", path: q("/api/v1/anomalies", "direction", "down"), wantIDsOf: []detector.Labels{queue},
			check: func(t *testing.T, as []api.AnomalyJSON) {
				require.Equal(t, "t2", as[0].Tenant)
				require.Equal(t, "queue_depth", as[0].Labels["__name__"])
				require.Equal(t, 0.0, float64(as[0].Value))
				require.Greater(t, float64(as[0].Lower), 0.0)
				require.Equal(t, "window-mean-w8", as[0].ModelVersion)
			}},
		{name: "matcher", path: q("/api/v1/anomalies", "match[]", `{workload="web", instance=~"a|c"}`), wantIDsOf: []detector.Labels{webA}},
		{name: "two matchers are a union", path: q("/api/v1/anomalies", "match[]", `{instance="a"}`, "match[]", `queue_depth`), wantIDsOf: []detector.Labels{queue, webA}},
		{name: "tenant header", path: "/api/v1/anomalies", hdr: map[string]string{"X-Scope-OrgID": "t2"}, wantIDsOf: []detector.Labels{queue}},
		{name: "unknown tenant", path: "/api/v1/anomalies", hdr: map[string]string{"X-Scope-OrgID": "nobody"}},
		{name: "limit", path: q("/api/v1/anomalies", "limit", "1"), wantIDsOf: []detector.Labels{queue}},
		{name: "time range before everything", path: q("/api/v1/anomalies", "end", "1600000000")},
		{name: "time range after closed one", path: q("/api/v1/anomalies", "start", time.UnixMilli(baseMs+185_000).UTC().Format(time.RFC3339Nano)), wantIDsOf: []detector.Labels{queue, webA}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, env := e.do(t, http.MethodGet, tc.path, tc.hdr)
			require.Equal(t, http.StatusOK, code, env.Error)
			require.Equal(t, "success", env.Status)
			var as []api.AnomalyJSON
			require.NoError(t, json.Unmarshal(env.Data, &as))
			got := make([]string, len(as))
			for i, a := range as {
				got[i] = a.Labels["__name__"] + "/" + a.Labels["instance"]
			}
			want := make([]string, len(tc.wantIDsOf))
			for i, ls := range tc.wantIDsOf {
				want[i] = ls.Get("__name__") + "/" + ls.Get("instance")
			}
			require.Equal(t, want, got)
			if tc.name == "limit" {
				require.NotEmpty(t, env.Warnings)
			}
			if tc.check != nil {
				tc.check(t, as)
			}
		})
	}
}

func TestBadRequests(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		name, method, path string
		hdr                map[string]string
		wantCode           int
		wantType, wantErr  string
	}{
		{"bad selector", "GET", q("/api/v1/anomalies", "match[]", `{job=`), nil, 400, "bad_data", "match[]"},
		{"bad state", "GET", q("/api/v1/anomalies", "state", "maybe"), nil, 400, "bad_data", "state"},
		{"bad direction", "GET", q("/api/v1/anomalies", "direction", "sideways"), nil, 400, "bad_data", "direction"},
		{"bad limit", "GET", q("/api/v1/anomalies", "limit", "-1"), nil, 400, "bad_data", "limit"},
		{"bad start", "GET", q("/api/v1/anomalies", "start", "yesterday"), nil, 400, "bad_data", "start"},
		{"end before start", "GET", q("/api/v1/series", "match[]", "cpu", "start", "200", "end", "100"), nil, 400, "bad_data", "before"},
		{"series without match", "GET", "/api/v1/series", nil, 400, "bad_data", "match[]"},
		{"too many matchers", "GET", "/api/v1/series?" + strings.Repeat("match[]=up&", api.MaxMatchers+1), nil, 400, "bad_data", "max"},
		{"selector too long", "GET", q("/api/v1/series", "match[]", `{job="`+strings.Repeat("x", api.MaxSelectorBytes)+`"}`), nil, 400, "bad_data", "bytes"},
		{"query too long", "GET", "/api/v1/labels?x=" + strings.Repeat("y", api.MaxQueryBytes), nil, 414, "bad_data", "query string"},
		{"bad window", "GET", q("/api/v1/incidents", "window", "-5m"), nil, 400, "bad_data", "window"},
		{"bad group_by", "GET", q("/api/v1/incidents", "group_by", "a-b"), nil, 400, "bad_data", "group_by"},
		{"tenant mismatch", "GET", q("/api/v1/series", "match[]", "cpu", "tenant", "t1"), map[string]string{"X-Scope-OrgID": "t2"}, 403, "bad_data", "tenant"},
		{"post", "POST", "/api/v1/anomalies", nil, 405, "method_not_allowed", "POST"},
		{"delete", "DELETE", "/api/v1/model", nil, 405, "method_not_allowed", "DELETE"},
		{"unknown", "GET", "/api/v1/nope", nil, 404, "not_found", "/api/v1/nope"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, env := e.do(t, tc.method, tc.path, tc.hdr)
			require.Equal(t, tc.wantCode, code)
			require.Equal(t, "error", env.Status)
			require.Equal(t, tc.wantType, env.ErrorType)
			require.Contains(t, env.Error, tc.wantErr)
		})
	}
}

func TestIncidents(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		name      string
		path      string
		wantCount []int // anomalies per incident, newest incident first
		check     func(t *testing.T, in []api.IncidentJSON)
	}{
		{name: "default grouping", path: "/api/v1/incidents", wantCount: []int{1, 2},
			check: func(t *testing.T, in []api.IncidentJSON) {
				require.Equal(t, map[string]string{"namespace": "batch", "job": "worker"}, in[0].Group)
				require.Equal(t, "t2", in[0].Tenant)
				web := in[1]
				require.Equal(t, map[string]string{"namespace": "prod", "workload": "web", "job": "api"}, web.Group)
				require.Equal(t, "open", web.State, "open while one anomaly is open")
				require.Nil(t, web.ClosedAt)
				require.Equal(t, "t1", web.Tenant)
				require.Equal(t, web.Anomalies[0].ID, web.ID, "incident ID is its first anomaly's")
				require.Equal(t, "b", web.Anomalies[0].Labels["instance"])
				require.Equal(t, time.UnixMilli(baseMs+120_000).UTC(), web.OpenedAt)
			}},
		{name: "window shorter than the gap splits", path: q("/api/v1/incidents", "window", "1s"), wantCount: []int{1, 1, 1}},
		{name: "group by instance", path: q("/api/v1/incidents", "group_by", "instance"), wantCount: []int{1, 1, 1}},
		{name: "closed only", path: q("/api/v1/incidents", "state", "closed"), wantCount: []int{1},
			check: func(t *testing.T, in []api.IncidentJSON) {
				require.Equal(t, "closed", in[0].State)
				require.NotNil(t, in[0].ClosedAt)
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, env := e.do(t, http.MethodGet, tc.path, nil)
			require.Equal(t, http.StatusOK, code, env.Error)
			var in []api.IncidentJSON
			require.NoError(t, json.Unmarshal(env.Data, &in))
			got := make([]int, len(in))
			for i := range in {
				got[i] = in[i].Count
				require.Len(t, in[i].Anomalies, in[i].Count)
			}
			require.Equal(t, tc.wantCount, got)
			if tc.check != nil {
				tc.check(t, in)
			}
		})
	}
}

func TestSeries(t *testing.T) {
	e := newEnv(t, func(c *api.Config) { c.MaxSeriesPerQuery = 2 })
	tests := []struct {
		name       string
		path       string
		hdr        map[string]string
		wantSeries int
		wantWarn   bool
		check      func(t *testing.T, s []api.SeriesJSON)
	}{
		{name: "one series", path: q("/api/v1/series", "match[]", `{instance="a"}`), wantSeries: 1,
			check: func(t *testing.T, s []api.SeriesJSON) {
				sj := s[0]
				// History starts with the sample that opened the anomaly at 190s.
				require.Len(t, sj.Timestamps, 11)
				require.Equal(t, baseMs+190_000, sj.Timestamps[0])
				require.GreaterOrEqual(t, float64(sj.Score[0]), 0.5, "the opening sample is anomalous")
				n := len(sj.Timestamps)
				for _, col := range [][]api.Float{sj.Value, sj.Score, sj.Expected, sj.Lower, sj.Upper} {
					require.Len(t, col, n)
				}
				require.Equal(t, baseMs+200_000, sj.Timestamps[n-1])
				require.Greater(t, float64(sj.Value[n-1]), 50.0)
				for _, sc := range sj.Score {
					require.GreaterOrEqual(t, float64(sc), -1e-6, "scores are in [0,1] up to rounding")
					require.LessOrEqual(t, float64(sc), 1+1e-6)
				}
				for i := range n {
					require.LessOrEqual(t, float64(sj.Lower[i]), float64(sj.Expected[i]))
					require.GreaterOrEqual(t, float64(sj.Upper[i]), float64(sj.Expected[i]))
				}
			}},
		{name: "time range", path: q("/api/v1/series", "match[]", `{instance="a"}`, "start", "1700000190", "end", "1700000195.5"), wantSeries: 1,
			check: func(t *testing.T, s []api.SeriesJSON) {
				require.Equal(t, []int64{baseMs + 190_000, baseMs + 191_000, baseMs + 192_000, baseMs + 193_000, baseMs + 194_000, baseMs + 195_000}, s[0].Timestamps)
			}},
		{name: "overlapping selectors deduplicated", path: q("/api/v1/series", "match[]", `{instance="a"}`, "match[]", `http_requests`), wantSeries: 2},
		{name: "tenant parameter", path: q("/api/v1/series", "match[]", `{job=~".+"}`, "tenant", "t2"), wantSeries: 1},
		{name: "tenant header", path: q("/api/v1/series", "match[]", `{namespace=~"prod|batch"}`), hdr: map[string]string{"X-Scope-OrgID": "t1"}, wantSeries: 2},
		{name: "calm series has its latest result", path: q("/api/v1/series", "match[]", `cpu`), wantSeries: 1,
			check: func(t *testing.T, s []api.SeriesJSON) {
				// cpu never had an anomaly, so it keeps no history: the
				// latest result, at full precision, is what it has.
				sj := s[0]
				require.Equal(t, []int64{baseMs + 200_000}, sj.Timestamps)
				require.InDelta(t, 10, float64(sj.Value[0]), 2)
				require.Less(t, float64(sj.Score[0]), 0.5)
				require.LessOrEqual(t, float64(sj.Lower[0]), float64(sj.Expected[0]))
				require.GreaterOrEqual(t, float64(sj.Upper[0]), float64(sj.Expected[0]))
			}},
		{name: "calm series outside the range", path: q("/api/v1/series", "match[]", `cpu`, "end", "1700000199"), wantSeries: 0},
		{name: "truncated", path: q("/api/v1/series", "match[]", `{job=~".+"}`), wantSeries: 2, wantWarn: true},
		{name: "no match", path: q("/api/v1/series", "match[]", `nothing`), wantSeries: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, env := e.do(t, http.MethodGet, tc.path, tc.hdr)
			require.Equal(t, http.StatusOK, code, env.Error)
			var s []api.SeriesJSON
			require.NoError(t, json.Unmarshal(env.Data, &s))
			require.Len(t, s, tc.wantSeries)
			require.Equal(t, tc.wantWarn, len(env.Warnings) > 0, env.Warnings)
			if tc.check != nil {
				tc.check(t, s)
			}
		})
	}
}

// A fleet that never had an anomaly gives one series per member with its
// latest value, so an alert rule over it gets values and never NoData.
func TestSeriesCalmFleet(t *testing.T) {
	reg := prometheus.NewRegistry()
	store := api.NewStore(10, reg)
	det, err := detector.New(detector.DefaultConfig, slog.New(slog.DiscardHandler), reg, store)
	require.NoError(t, err)
	det.SetModel(detector.WindowMeanModel{W: 8})
	const members, n = 20, 120
	last := map[string]float64{}
	for i := range n {
		for m := range members {
			inst := string(rune('a'+m%26)) + strings.Repeat("x", m/26)
			v := 100 + float64(m) + 5*math.Sin(float64(i)/6+float64(m))
			det.Append("t1", detector.FromStrings("__name__", "cpu", "job", "node", "instance", inst), []detector.Sample{{TimestampMs: baseMs + int64(i)*1000, Value: v}})
			last[inst] = v
		}
		require.NoError(t, det.Flush())
	}
	require.Zero(t, store.Len(), "the fleet is calm: no anomaly at all")

	h, err := api.NewHandler(api.Options{
		Config: api.DefaultConfig(), Source: det, Store: store, ParseSelectors: config.ParseSelectors,
		Now: func() time.Time { return time.UnixMilli(baseMs + n*1000) },
	})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	defer srv.Close()
	e := &env{srv: srv}
	code, env := e.do(t, http.MethodGet, q("/api/v1/series", "match[]", `{job="node"}`, "start", "1700000060", "end", "1700000200"), nil)
	require.Equal(t, http.StatusOK, code, env.Error)
	var s []api.SeriesJSON
	require.NoError(t, json.Unmarshal(env.Data, &s))
	require.Len(t, s, members)
	for _, sj := range s {
		require.Equal(t, []int64{baseMs + (n-1)*1000}, sj.Timestamps, sj.Labels)
		require.Equal(t, last[sj.Labels["instance"]], float64(sj.Value[0]), "the latest value at full precision")
		require.GreaterOrEqual(t, float64(sj.Score[0]), 0.0)
		require.Less(t, float64(sj.Score[0]), detector.DefaultConfig.Scoring.Threshold)
	}
}

func TestLabelsModelBuildInfo(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		name string
		path string
		hdr  map[string]string
		want string // JSON of data
	}{
		{"labels", "/api/v1/labels", nil, `["__name__","instance","job","namespace","workload"]`},
		{"labels of tenant", "/api/v1/labels", map[string]string{"X-Scope-OrgID": "t2"}, `["__name__","job","namespace"]`},
		{"labels matching", q("/api/v1/labels", "match[]", "cpu"), nil, `["__name__","job","namespace"]`},
		{"metric names", "/api/v1/label/__name__/values", nil, `["cpu","http_requests","queue_depth"]`},
		{"values matching", q("/api/v1/label/instance/values", "match[]", `{job="api"}`), nil, `["a","b"]`},
		{"values limited", q("/api/v1/label/job/values", "limit", "2"), nil, `["api","node"]`},
		{"unknown label", "/api/v1/label/nope/values", nil, `[]`},
		{"model", "/api/v1/model", nil, `{"loaded":true,"version":"window-mean-w8","window":8,"threshold":0.5}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, env := e.do(t, http.MethodGet, tc.path, tc.hdr)
			require.Equal(t, http.StatusOK, code, env.Error)
			require.JSONEq(t, tc.want, string(env.Data))
		})
	}
	t.Run("buildinfo", func(t *testing.T) {
		code, env := e.do(t, http.MethodGet, "/api/v1/status/buildinfo", nil)
		require.Equal(t, http.StatusOK, code)
		var bi api.BuildInfoJSON
		require.NoError(t, json.Unmarshal(env.Data, &bi))
		require.NotEmpty(t, bi.GoVersion)
	})
}

func TestStoreEvictsOldestAndMergesByID(t *testing.T) {
	s := api.NewStore(2, nil)
	ls := detector.FromStrings("__name__", "x")
	open := func(id uint64, ts int64) detector.Event {
		return detector.Event{Kind: detector.EventOpen, ID: id, Labels: ls, OpenedAtMs: ts, TimestampMs: ts, Score: 0.95, PeakScore: 0.95, Direction: detector.DirectionUp}
	}
	s.HandleEvents([]detector.Event{open(1, 1000), open(2, 2000)})
	s.HandleEvents([]detector.Event{{Kind: detector.EventClose, ID: 1, Labels: ls, OpenedAtMs: 1000, ClosedAtMs: 3000, TimestampMs: 3000, Score: 0.1, PeakScore: 0.99, Direction: detector.DirectionDown}})
	var got []api.Anomaly
	s.Snapshot(func(a api.Anomaly) bool { got = append(got, a); return true })
	require.Len(t, got, 2)
	require.Equal(t, uint64(2), got[0].ID)
	require.Equal(t, uint64(1), got[1].ID)
	require.Equal(t, int64(3000), got[1].ClosedAtMs)
	require.Equal(t, 0.99, got[1].PeakScore)
	require.Equal(t, detector.DirectionUp, got[1].Direction, "direction comes from the opening")

	// A third anomaly evicts the oldest; a close of an unknown (evicted) ID is kept as closed.
	s.HandleEvents([]detector.Event{open(3, 4000)})
	s.HandleEvents([]detector.Event{{Kind: detector.EventClose, ID: 9, Labels: ls, OpenedAtMs: 500, ClosedAtMs: 4500, TimestampMs: 4500}})
	got = got[:0]
	s.Snapshot(func(a api.Anomaly) bool { got = append(got, a); return true })
	require.Equal(t, 2, s.Len())
	require.Equal(t, []uint64{9, 3}, []uint64{got[0].ID, got[1].ID})
	require.False(t, got[0].Open())
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		mod     func(*api.Config)
		wantErr string
	}{
		{"default", func(*api.Config) {}, ""},
		{"max_anomalies", func(c *api.Config) { c.MaxAnomalies = 0 }, "api.max_anomalies"},
		{"group_by empty", func(c *api.Config) { c.IncidentGroupBy = nil }, "api.incident_group_by"},
		{"group_by invalid", func(c *api.Config) { c.IncidentGroupBy = []string{"a.b"} }, "invalid label name"},
		{"window", func(c *api.Config) { c.IncidentWindow = 0 }, "api.incident_window"},
		{"series", func(c *api.Config) { c.MaxSeriesPerQuery = -1 }, "api.max_series_per_query"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := api.DefaultConfig()
			tc.mod(&c)
			err := c.Validate()
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}

func TestConfigFileSection(t *testing.T) {
	cfg, err := config.Parse([]byte("api:\n  max_anomalies: 5\n"))
	require.NoError(t, err)
	require.Equal(t, 5, cfg.API.MaxAnomalies)
	require.Equal(t, api.DefaultIncidentGroupBy, cfg.API.IncidentGroupBy)
	_, err = config.Parse([]byte("api:\n  max_anomalies: -1\n"))
	require.ErrorContains(t, err, "api.max_anomalies")
}
