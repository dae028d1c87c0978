package plugin_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/stretchr/testify/require"

	"github.com/sentinel-mesh/sentinel-mesh/grafana-plugin/pkg/plugin"
)

func instanceSettings(url string, jsonData map[string]any, secure map[string]string) backend.DataSourceInstanceSettings {
	jd, _ := json.Marshal(jsonData)
	return backend.DataSourceInstanceSettings{UID: "sm", Name: "Sentinel Mesh", URL: url, JSONData: jd, DecryptedSecureJSONData: secure}
}

func basicAuth(tenant string) (map[string]any, map[string]string) {
	jd := map[string]any{"authType": "basic", "basicAuthUser": testUser}
	if tenant != "" {
		jd["tenant"] = tenant
	}
	return jd, map[string]string{plugin.SecureBasicAuthPassword: testPassword}
}

func newDS(t *testing.T, s backend.DataSourceInstanceSettings) *plugin.Datasource {
	t.Helper()
	inst, err := plugin.NewDatasource(context.Background(), s)
	require.NoError(t, err)
	ds := inst.(*plugin.Datasource)
	t.Cleanup(ds.Dispose)
	return ds
}

func dataQuery(refID, queryType string, model map[string]any) backend.DataQuery {
	b, _ := json.Marshal(model)
	now := time.Now()
	return backend.DataQuery{RefID: refID, QueryType: queryType, JSON: b, TimeRange: backend.TimeRange{From: now.Add(-time.Hour), To: now.Add(time.Minute)}}
}

func TestQueryData(t *testing.T) {
	requireServer(t)
	jd, sec := basicAuth("")
	ds := newDS(t, instanceSettings(serverURL, jd, sec))

	tests := []struct {
		name    string
		tenant  string
		query   backend.DataQuery
		wantErr string
		check   func(t *testing.T, frames data.Frames)
	}{
		{
			name:  "series with band and score",
			query: dataQuery("A", plugin.QueryTypeSeries, map[string]any{"matchers": `{instance="a"}`, "unit": "reqps"}),
			check: func(t *testing.T, frames data.Frames) {
				require.Len(t, frames, 1)
				f := frames[0]
				require.Equal(t, "A", f.RefID)
				names := []string{}
				for _, fl := range f.Fields {
					names = append(names, fl.Name)
				}
				// The score first: alerting evaluates a frame's first number.
				require.Equal(t, []string{"time", "score", "value", "expected", "lower", "upper"}, names)
				require.Positive(t, f.Rows())
				score := f.Fields[1]
				require.Equal(t, "anomaly score", score.Config.DisplayNameFromDS)
				require.Equal(t, 0.0, float64(*score.Config.Min))
				require.Equal(t, 1.0, float64(*score.Config.Max))
				require.Equal(t, "reqps", f.Fields[2].Config.Unit)
				require.Equal(t, "lower bound", f.Fields[5].Config.Custom["fillBelowTo"])
				require.Equal(t, "web", f.Fields[2].Labels["workload"])
				require.Equal(t, tenantA, f.Fields[2].Labels["tenant"])
				require.Equal(t, data.FrameTypeTimeSeriesMulti, f.Meta.Type)
				for i := range score.Len() {
					if v, ok := score.ConcreteAt(i); ok {
						// The detector's scores are in [0,1] up to rounding.
						require.GreaterOrEqual(t, v.(float64), -1e-6)
						require.LessOrEqual(t, v.(float64), 1+1e-6)
					}
				}
			},
		},
		{
			name:  "score only for alerting",
			query: dataQuery("B", plugin.QueryTypeSeries, map[string]any{"matchers": `http_requests_rate`, "fields": []string{"score"}}),
			check: func(t *testing.T, frames data.Frames) {
				require.Len(t, frames, 2, "one frame per series: one alert instance each")
				for _, f := range frames {
					require.Equal(t, data.FrameTypeTimeSeriesMulti, f.Meta.Type)
					require.Len(t, f.Fields, 2)
					require.Contains(t, f.Fields[1].Config.DisplayNameFromDS, "anomaly score")
					require.Contains(t, f.Fields[1].Config.DisplayNameFromDS, `instance=`)
				}
			},
		},
		{
			name:  "calm fleet has a score per series",
			query: dataQuery("M", plugin.QueryTypeSeries, map[string]any{"matchers": `{job="node"}`, "fields": []string{"score"}}),
			check: func(t *testing.T, frames data.Frames) {
				requireCalmFleet(t, frames, data.FrameTypeTimeSeriesMulti)
			},
		},
		{
			name:  "calm fleet instant",
			query: dataQuery("N", plugin.QueryTypeSeries, map[string]any{"matchers": `node_load`, "instant": true}),
			check: func(t *testing.T, frames data.Frames) {
				requireCalmFleet(t, frames, data.FrameTypeNumericMulti)
				for _, f := range frames {
					require.Equal(t, 1, f.Rows())
					require.Equal(t, "score", f.Fields[0].Name)
				}
			},
		},
		{
			name:  "no series is typed no data",
			query: dataQuery("O", plugin.QueryTypeSeries, map[string]any{"matchers": `nothing_here`}),
			check: func(t *testing.T, frames data.Frames) {
				require.Len(t, frames, 1)
				require.Empty(t, frames[0].Fields)
				require.Equal(t, data.FrameTypeTimeSeriesMulti, frames[0].Meta.Type)
			},
		},
		{
			name:   "tenant setting filters",
			tenant: tenantB,
			query:  dataQuery("C", plugin.QueryTypeSeries, map[string]any{"matchers": `{job=~".+"}`}),
			check: func(t *testing.T, frames data.Frames) {
				require.Len(t, frames, 1)
				require.Equal(t, "queue_depth", frames[0].Fields[1].Labels["__name__"])
			},
		},
		{
			name:  "anomalies table",
			query: dataQuery("D", plugin.QueryTypeAnomalies, map[string]any{"state": "open", "direction": "up"}),
			check: func(t *testing.T, frames data.Frames) {
				require.Len(t, frames, 1)
				f := frames[0]
				require.Equal(t, 3, f.Rows())
				sel, _ := f.FieldByName("series")
				require.NotNil(t, sel)
				require.Len(t, sel.Config.Links, 1)
				require.Equal(t, "sm", sel.Config.Links[0].Internal.DatasourceUID)
				state, _ := f.FieldByName("state")
				require.Equal(t, "open", state.At(0))
				corroborated, _ := f.FieldByName("corroborated")
				require.NotNil(t, corroborated)
				require.Equal(t, false, corroborated.At(0))
				cause, _ := f.FieldByName("cause")
				require.NotNil(t, cause)
				require.Equal(t, "prediction", cause.At(0), "the test server's anomalies are spikes")
			},
		},
		{
			name:  "anomalies down only",
			query: dataQuery("E", plugin.QueryTypeAnomalies, map[string]any{"direction": "down"}),
			check: func(t *testing.T, frames data.Frames) { require.Equal(t, 0, frames[0].Rows()) },
		},
		{
			name:  "annotations",
			query: dataQuery("F", plugin.QueryTypeAnnotations, map[string]any{"matchers": `{workload="web"}`}),
			check: func(t *testing.T, frames data.Frames) {
				f := frames[0]
				require.Equal(t, 2, f.Rows())
				title, _ := f.FieldByName("title")
				require.Contains(t, title.At(0), "Anomaly open (up) on http_requests_rate")
				tags, _ := f.FieldByName("tags")
				require.Contains(t, tags.At(0), "anomaly,open,up")
			},
		},
		{
			name:  "incidents group one workload",
			query: dataQuery("G", plugin.QueryTypeIncidents, map[string]any{}),
			check: func(t *testing.T, frames data.Frames) {
				f := frames[0]
				require.Equal(t, 2, f.Rows())
				count, _ := f.FieldByName("count")
				group, _ := f.FieldByName("group")
				got := map[string]int64{}
				for i := range f.Rows() {
					got[group.At(i).(string)] = count.At(i).(int64)
				}
				require.Equal(t, map[string]int64{`{job="api", namespace="prod", workload="web"}`: 2, `{job="worker", namespace="batch"}`: 1}, got)
			},
		},
		{name: "series needs matchers", query: dataQuery("H", plugin.QueryTypeSeries, map[string]any{}), wantErr: "need label matchers"},
		{name: "bad selector from server", query: dataQuery("I", plugin.QueryTypeSeries, map[string]any{"matchers": `{job=`}), wantErr: "bad_data"},
		{name: "bad direction", query: dataQuery("J", plugin.QueryTypeAnomalies, map[string]any{"direction": "left"}), wantErr: "invalid direction"},
		{name: "unknown query type", query: dataQuery("K", "bogus", map[string]any{}), wantErr: "unknown query type"},
		{name: "unknown field", query: dataQuery("L", plugin.QueryTypeSeries, map[string]any{"matchers": "up", "fields": []string{"x"}}), wantErr: "unknown field"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := ds
			if tc.tenant != "" {
				jd, sec := basicAuth(tc.tenant)
				d = newDS(t, instanceSettings(serverURL, jd, sec))
			}
			resp, err := d.QueryData(context.Background(), &backend.QueryDataRequest{Queries: []backend.DataQuery{tc.query}})
			require.NoError(t, err)
			r := resp.Responses[tc.query.RefID]
			if tc.wantErr != "" {
				require.Error(t, r.Error)
				require.Contains(t, r.Error.Error(), tc.wantErr)
				return
			}
			require.NoError(t, r.Error)
			tc.check(t, r.Frames)
		})
	}

	t.Run("one failing query does not fail the others", func(t *testing.T) {
		resp, err := ds.QueryData(context.Background(), &backend.QueryDataRequest{Queries: []backend.DataQuery{
			dataQuery("ok", plugin.QueryTypeAnomalies, map[string]any{}),
			dataQuery("bad", plugin.QueryTypeSeries, map[string]any{"matchers": "{"}),
		}})
		require.NoError(t, err)
		require.NoError(t, resp.Responses["ok"].Error)
		require.Error(t, resp.Responses["bad"].Error)
		require.Equal(t, backend.StatusBadRequest, resp.Responses["bad"].Status)
	})
}

// requireCalmFleet checks that each member of the calm fleet, which never
// had an anomaly, has its own frame with a low score: an alert rule over it
// gets one normal value per series, never NoData.
func requireCalmFleet(t *testing.T, frames data.Frames, typ data.FrameType) {
	t.Helper()
	require.Len(t, frames, len(calmFleet))
	seen := map[string]bool{}
	for _, f := range frames {
		require.Equal(t, typ, f.Meta.Type)
		score, _ := f.FieldByName("score")
		require.NotNil(t, score)
		require.Positive(t, score.Len())
		v, ok := score.ConcreteAt(score.Len() - 1)
		require.True(t, ok, "a value, not a null")
		require.Less(t, v.(float64), 0.5)
		seen[score.Labels["instance"]] = true
	}
	require.Equal(t, map[string]bool{"n1": true, "n2": true, "n3": true}, seen)
}

func TestCheckHealth(t *testing.T) {
	requireServer(t)
	down, err := freePort()
	require.NoError(t, err)
	jd, sec := basicAuth("")
	tests := []struct {
		name       string
		settings   backend.DataSourceInstanceSettings
		wantStatus backend.HealthStatus
		wantMsg    string
	}{
		{"ok", instanceSettings(serverURL, jd, sec), backend.HealthStatusOk, "Connected to Sentinel Mesh"},
		{"model reported", instanceSettings(serverURL, jd, sec), backend.HealthStatusOk, "model lstm-"},
		{"tenant reported", instanceSettings(serverURL, map[string]any{"authType": "basic", "basicAuthUser": testUser, "tenant": tenantA}, sec), backend.HealthStatusOk, `tenant "team-a"`},
		{"wrong password", instanceSettings(serverURL, jd, map[string]string{plugin.SecureBasicAuthPassword: "wrong"}), backend.HealthStatusError, "Authentication failed"},
		{"no auth", instanceSettings(serverURL, nil, nil), backend.HealthStatusError, "Authentication failed"},
		{"server down", instanceSettings("http://"+down, jd, sec), backend.HealthStatusError, "cannot reach Sentinel Mesh"},
		{"no URL", instanceSettings("", jd, sec), backend.HealthStatusError, "URL of Sentinel Mesh is not set"},
		{"bad auth type", instanceSettings(serverURL, map[string]any{"authType": "magic"}, nil), backend.HealthStatusError, "unknown authType"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ds := newDS(t, tc.settings)
			res, err := ds.CheckHealth(context.Background(), &backend.CheckHealthRequest{})
			require.NoError(t, err, "a failing server is a result, not an error")
			require.Equal(t, tc.wantStatus, res.Status, res.Message)
			require.Contains(t, res.Message, tc.wantMsg)
			require.NotContains(t, res.Message, testPassword)
		})
	}
}

type sender struct {
	mu   sync.Mutex
	resp *backend.CallResourceResponse
}

func (s *sender) Send(r *backend.CallResourceResponse) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resp = r
	return nil
}

func TestCallResource(t *testing.T) {
	requireServer(t)
	jd, sec := basicAuth(tenantA)
	ds := newDS(t, instanceSettings(serverURL, jd, sec))
	tests := []struct {
		name, method, path, url string
		wantStatus              int
		wantBody                string
	}{
		{"labels", "GET", "labels", "labels", 200, `"instance"`},
		{"label values", "GET", "label/__name__/values", "label/__name__/values", 200, `["http_requests_rate","node_load"]`},
		{"values with matcher", "GET", "label/instance/values", `label/instance/values?match[]={workload="web"}`, 200, `["a","b"]`},
		{"anomalies for the app page", "GET", "anomalies", "anomalies?state=open", 200, `"state":"open"`},
		{"model", "GET", "model", "model", 200, `"loaded":true`},
		{"not allowed path", "GET", "write", "write", 404, "unknown resource"},
		{"path traversal", "GET", "label/../../write/values", "x", 404, "unknown resource"},
		{"post", "POST", "labels", "labels", 405, "only GET"},
		{"query too long", "GET", "labels", "labels?x=" + strings.Repeat("y", plugin.MaxResourceQuery), 414, "too long"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var s sender
			err := ds.CallResource(context.Background(), &backend.CallResourceRequest{Method: tc.method, Path: tc.path, URL: tc.url}, &s)
			require.NoError(t, err)
			require.Equal(t, tc.wantStatus, s.resp.Status, string(s.resp.Body))
			require.Contains(t, string(s.resp.Body), tc.wantBody)
		})
	}
}

// The auth header and tenant reach the server exactly as configured, and the
// settings never print secrets.
func TestAuthHeaders(t *testing.T) {
	var got http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"success","data":{"version":"1.2.3","loaded":true,"version":"m1","window":32}}`))
	}))
	defer srv.Close()
	tests := []struct {
		name     string
		jsonData map[string]any
		secure   map[string]string
		wantAuth string
	}{
		{"bearer", map[string]any{"authType": "bearer", "tenant": "t1"}, map[string]string{plugin.SecureBearerToken: "tok3n"}, "Bearer tok3n"},
		{"basic", map[string]any{"authType": "basic", "basicAuthUser": "u", "tenant": "t1"}, map[string]string{plugin.SecureBasicAuthPassword: "pa55word-x"}, "Basic dTpwYTU1d29yZC14"},
		{"none", map[string]any{"tenant": "t1"}, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := instanceSettings(srv.URL+"/", tc.jsonData, tc.secure)
			ds := newDS(t, is)
			res, err := ds.CheckHealth(context.Background(), &backend.CheckHealthRequest{})
			require.NoError(t, err)
			require.Equal(t, backend.HealthStatusOk, res.Status, res.Message)
			require.Equal(t, tc.wantAuth, got.Get("Authorization"))
			require.Equal(t, "t1", got.Get("X-Scope-OrgID"))
			s, err := plugin.LoadSettings(is)
			require.NoError(t, err)
			for _, secret := range tc.secure {
				require.NotContains(t, s.String(), secret)
				require.NotContains(t, res.Message, secret)
			}
		})
	}
}

func TestLoadSettings(t *testing.T) {
	tests := []struct {
		name     string
		url      string
		jsonData map[string]any
		secure   map[string]string
		wantErr  string
	}{
		{"defaults", "http://sm:9464", nil, nil, ""},
		{"https with path", "https://sm.example.com/prefix/", nil, nil, ""},
		{"no scheme", "sm:9464", nil, nil, "invalid URL"},
		{"credentials in URL", "http://u:p@sm:9464", nil, nil, "must not contain credentials"},
		{"basic without user", "http://sm", map[string]any{"authType": "basic"}, nil, "needs a user"},
		{"bearer without token", "http://sm", map[string]any{"authType": "bearer"}, nil, "needs a token"},
		{"tenant too long", "http://sm", map[string]any{"tenant": strings.Repeat("t", 151)}, nil, "tenant"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := plugin.LoadSettings(instanceSettings(tc.url, tc.jsonData, tc.secure))
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				require.NotContains(t, err.Error(), ":p@")
				return
			}
			require.NoError(t, err)
			require.Equal(t, plugin.AuthNone, s.JSONData.AuthType)
			require.Equal(t, 30*time.Second, s.Timeout)
			require.False(t, strings.HasSuffix(s.URL.Path, "/"))
		})
	}
}
