// Package plugin implements the Sentinel Mesh data source backend: queries
// of anomalies, incidents and score history, annotations, health checks and
// label autocomplete, all read from the Sentinel Mesh HTTP API.
package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/backend/instancemgmt"
	"github.com/grafana/grafana-plugin-sdk-go/backend/log"
)

// The handlers Grafana calls, checked at compile time.
var (
	_ backend.QueryDataHandler      = (*Datasource)(nil)
	_ backend.CheckHealthHandler    = (*Datasource)(nil)
	_ backend.CallResourceHandler   = (*Datasource)(nil)
	_ instancemgmt.InstanceDisposer = (*Datasource)(nil)
)

// Query types.
const (
	QueryTypeSeries      = "series"
	QueryTypeAnomalies   = "anomalies"
	QueryTypeIncidents   = "incidents"
	QueryTypeAnnotations = "annotations"
)

// Limits of what a query or resource call may ask for.
const (
	MaxMatchersBytes  = 4 << 10
	MaxResourceQuery  = 16 << 10
	MaxQueriesPerCall = 100
)

// Datasource is one configured Sentinel Mesh data source.
type Datasource struct {
	uid         string
	name        string
	settings    Settings
	settingsErr error // reported by every call instead of failing instance creation
	client      *Client
	logger      log.Logger
	now         func() time.Time
}

// NewDatasource creates an instance for the settings. Invalid settings do not
// fail here: health checks and queries report them so users see why.
func NewDatasource(_ context.Context, is backend.DataSourceInstanceSettings) (instancemgmt.Instance, error) {
	ds := &Datasource{uid: is.UID, name: is.Name, logger: log.DefaultLogger.With("datasource", is.UID), now: time.Now}
	s, err := LoadSettings(is)
	if err != nil {
		ds.settingsErr = err
		ds.logger.Warn("invalid data source settings", "error", err.Error())
		return ds, nil
	}
	ds.settings = s
	ds.client = NewClient(s)
	ds.logger.Debug("data source created", "settings", s.String())
	return ds, nil
}

// Dispose closes idle connections when Grafana replaces the instance after a
// settings change.
func (d *Datasource) Dispose() {
	if d.client != nil {
		d.client.Close()
	}
}

// Query is the JSON model of one query, written by the query editor.
type Query struct {
	// Matchers is one PromQL series selector, e.g. {job="api"}.
	Matchers string `json:"matchers"`
	// State filters anomalies and incidents: open, closed or all.
	State string `json:"state"`
	// Direction filters anomalies: up, down or both.
	Direction string `json:"direction"`
	// Limit bounds anomalies, incidents or series (0: server default).
	Limit int `json:"limit"`
	// Fields restricts series frames to some of value, score, expected,
	// lower and upper (empty: all); alert rules usually want score only.
	Fields []string `json:"fields"`
	// GroupBy overrides the incident grouping labels (comma-separated).
	GroupBy string `json:"groupBy"`
	// Unit is the Grafana unit of the observed value, expected and bounds.
	Unit string `json:"unit"`
	// Instant returns each series' latest result as numbers (numeric-multi)
	// instead of a time series: what an alert rule compares directly.
	Instant bool `json:"instant"`
	// QueryType is also sent inside the model by some Grafana versions.
	QueryType string `json:"queryType"`
}

// QueryData answers each query independently: one failing query does not
// fail the others.
func (d *Datasource) QueryData(ctx context.Context, req *backend.QueryDataRequest) (*backend.QueryDataResponse, error) {
	resp := backend.NewQueryDataResponse()
	for i, q := range req.Queries {
		if i >= MaxQueriesPerCall {
			resp.Responses[q.RefID] = backend.ErrDataResponse(backend.StatusBadRequest, fmt.Sprintf("too many queries in one request (max %d)", MaxQueriesPerCall))
			continue
		}
		resp.Responses[q.RefID] = d.query(ctx, q)
	}
	return resp, nil
}

func (d *Datasource) query(ctx context.Context, dq backend.DataQuery) backend.DataResponse {
	if d.settingsErr != nil {
		return backend.ErrDataResponseWithSource(backend.StatusBadRequest, backend.ErrorSourceDownstream, "invalid data source settings: "+d.settingsErr.Error())
	}
	var q Query
	if len(dq.JSON) > 0 {
		if err := json.Unmarshal(dq.JSON, &q); err != nil {
			return backend.ErrDataResponse(backend.StatusBadRequest, "invalid query: "+err.Error())
		}
	}
	qt := dq.QueryType
	if qt == "" {
		qt = q.QueryType
	}
	if qt == "" {
		qt = QueryTypeSeries
	}
	if len(q.Matchers) > MaxMatchersBytes {
		return backend.ErrDataResponse(backend.StatusBadRequest, fmt.Sprintf("label matchers longer than %d bytes", MaxMatchersBytes))
	}
	params := url.Values{}
	params.Set("start", formatTime(dq.TimeRange.From))
	params.Set("end", formatTime(dq.TimeRange.To))
	if m := strings.TrimSpace(q.Matchers); m != "" {
		params.Set("match[]", m)
	}
	if q.Limit > 0 {
		params.Set("limit", strconv.Itoa(q.Limit))
	}

	var (
		res backend.DataResponse
		err error
	)
	switch qt {
	case QueryTypeSeries:
		if params.Get("match[]") == "" {
			return backend.ErrDataResponse(backend.StatusBadRequest, "series queries need label matchers, e.g. {job=\"api\"}")
		}
		res, err = d.querySeries(ctx, dq.RefID, q, params)
	case QueryTypeAnomalies, QueryTypeAnnotations:
		if err := setFilters(params, q); err != nil {
			return backend.ErrDataResponse(backend.StatusBadRequest, err.Error())
		}
		var as []Anomaly
		var warnings []string
		if warnings, err = d.client.Get(ctx, "anomalies", params, &as); err == nil {
			if qt == QueryTypeAnnotations {
				res.Frames = append(res.Frames, annotationsFrame(dq.RefID, as))
			} else {
				res.Frames = append(res.Frames, anomaliesFrame(dq.RefID, d.uid, d.name, as))
			}
			addWarnings(res.Frames, warnings)
		}
	case QueryTypeIncidents:
		if err := setFilters(params, q); err != nil {
			return backend.ErrDataResponse(backend.StatusBadRequest, err.Error())
		}
		if q.GroupBy != "" {
			params.Set("group_by", q.GroupBy)
		}
		var in []Incident
		var warnings []string
		if warnings, err = d.client.Get(ctx, "incidents", params, &in); err == nil {
			res.Frames = append(res.Frames, incidentsFrame(dq.RefID, in))
			addWarnings(res.Frames, warnings)
		}
	default:
		return backend.ErrDataResponse(backend.StatusBadRequest, fmt.Sprintf("unknown query type %q", qt))
	}
	if err != nil {
		return errorResponse(err)
	}
	return res
}

func setFilters(params url.Values, q Query) error {
	switch q.State {
	case "", "all", "open", "closed":
		if q.State != "" {
			params.Set("state", q.State)
		}
	default:
		return fmt.Errorf("invalid state %q (want open, closed or all)", q.State)
	}
	switch q.Direction {
	case "", "both", "up", "down":
		if q.Direction != "" {
			params.Set("direction", q.Direction)
		}
	default:
		return fmt.Errorf("invalid direction %q (want up, down or both)", q.Direction)
	}
	return nil
}

func (d *Datasource) querySeries(ctx context.Context, refID string, q Query, params url.Values) (backend.DataResponse, error) {
	for _, f := range q.Fields {
		if !validSeriesField[f] {
			return backend.ErrDataResponse(backend.StatusBadRequest, fmt.Sprintf("unknown field %q (want value, score, expected, lower or upper)", f)), nil
		}
	}
	var ss []Series
	warnings, err := d.client.Get(ctx, "series", params, &ss)
	if err != nil {
		return backend.DataResponse{}, err
	}
	var res backend.DataResponse
	for _, s := range ss {
		if len(s.Timestamps) == 0 {
			continue
		}
		res.Frames = append(res.Frames, seriesFrame(refID, s, q, len(ss) > 1))
	}
	if len(res.Frames) == 0 {
		res.Frames = append(res.Frames, noSeriesFrame(refID, q))
	}
	addWarnings(res.Frames, warnings)
	return res, nil
}

// errorResponse maps API and transport errors to a per-query error; the
// server's message is shown to the user.
func errorResponse(err error) backend.DataResponse {
	var ae *APIError
	if errors.As(err, &ae) {
		switch {
		case ae.Status == 0:
			return backend.ErrDataResponseWithSource(backend.StatusBadGateway, backend.ErrorSourceDownstream, ae.Error())
		case ae.Status == http.StatusBadRequest:
			return backend.ErrDataResponseWithSource(backend.StatusBadRequest, backend.ErrorSourceDownstream, ae.Error())
		case ae.Status == http.StatusUnauthorized:
			return backend.ErrDataResponseWithSource(backend.StatusUnauthorized, backend.ErrorSourceDownstream, ae.Error())
		case ae.Status == http.StatusForbidden:
			return backend.ErrDataResponseWithSource(backend.StatusForbidden, backend.ErrorSourceDownstream, ae.Error())
		}
		return backend.ErrDataResponseWithSource(backend.StatusBadGateway, backend.ErrorSourceDownstream, ae.Error())
	}
	return backend.ErrDataResponse(backend.StatusInternal, err.Error())
}

func formatTime(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', 3, 64)
}

// CheckHealth checks that Sentinel Mesh answers, that the credentials are
// accepted, and reports its version and model. A failing server is a
// result with status error, never a Go error.
func (d *Datasource) CheckHealth(ctx context.Context, _ *backend.CheckHealthRequest) (*backend.CheckHealthResult, error) {
	if d.settingsErr != nil {
		return &backend.CheckHealthResult{Status: backend.HealthStatusError, Message: "Invalid settings: " + d.settingsErr.Error()}, nil
	}
	var bi BuildInfo
	if _, err := d.client.Get(ctx, "status/buildinfo", nil, &bi); err != nil {
		msg := err.Error()
		if IsAuthError(err) {
			msg = "Authentication failed: check the basic auth user and password or the bearer token (" + msg + ")"
		}
		return &backend.CheckHealthResult{Status: backend.HealthStatusError, Message: msg}, nil
	}
	if bi.Version == "" {
		bi.Version = "(unknown version)"
	}
	var mi ModelInfo
	if _, err := d.client.Get(ctx, "model", nil, &mi); err != nil {
		return &backend.CheckHealthResult{Status: backend.HealthStatusError, Message: "Sentinel Mesh " + bi.Version + " answers, but the model API failed: " + err.Error()}, nil
	}
	details, _ := json.Marshal(map[string]any{"version": bi.Version, "revision": bi.Revision, "model": mi})
	msg := fmt.Sprintf("Connected to Sentinel Mesh %s; model %s (window %d, threshold %g)", bi.Version, mi.Version, mi.Window, mi.Threshold)
	if !mi.Loaded {
		msg = fmt.Sprintf("Connected to Sentinel Mesh %s; no model loaded yet, scores appear once it is", bi.Version)
	}
	if d.settings.JSONData.Tenant != "" {
		msg += fmt.Sprintf("; tenant %q", d.settings.JSONData.Tenant)
	}
	return &backend.CheckHealthResult{Status: backend.HealthStatusOk, Message: msg, JSONDetails: details}, nil
}

// resourcePaths are the API paths the frontend may read through the backend
// (autocomplete and the app pages).
var resourcePaths = map[string]bool{
	"labels": true, "anomalies": true, "incidents": true, "series": true,
	"model": true, "status/buildinfo": true,
}

// CallResource proxies GET requests for autocomplete and the app page to
// the Sentinel Mesh API, adding authentication and the tenant.
func (d *Datasource) CallResource(ctx context.Context, req *backend.CallResourceRequest, sender backend.CallResourceResponseSender) error {
	send := func(status int, body []byte) error {
		return sender.Send(&backend.CallResourceResponse{
			Status:  status,
			Headers: map[string][]string{"Content-Type": {"application/json"}},
			Body:    body,
		})
	}
	sendErr := func(status int, typ, msg string) error {
		b, _ := json.Marshal(map[string]string{"status": "error", "errorType": typ, "error": msg})
		return send(status, b)
	}
	if req.Method != http.MethodGet {
		return sendErr(http.StatusMethodNotAllowed, "method_not_allowed", "only GET is allowed")
	}
	if d.settingsErr != nil {
		return sendErr(http.StatusBadRequest, "bad_data", "invalid data source settings: "+d.settingsErr.Error())
	}
	path := strings.Trim(req.Path, "/")
	if !resourcePaths[path] && !isLabelValuesPath(path) {
		return sendErr(http.StatusNotFound, "not_found", "unknown resource "+strconv.Quote(path))
	}
	rawQuery := ""
	if u, err := url.Parse(req.URL); err == nil {
		rawQuery = u.RawQuery
	}
	if len(rawQuery) > MaxResourceQuery {
		return sendErr(http.StatusRequestURITooLong, "bad_data", "query string too long")
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return sendErr(http.StatusBadRequest, "bad_data", "invalid query string")
	}
	body, status, err := d.client.Raw(ctx, path, q)
	if err != nil {
		return sendErr(http.StatusBadGateway, "unavailable", err.Error())
	}
	return send(status, body)
}

// isLabelValuesPath accepts label/<name>/values with a plain label name.
func isLabelValuesPath(p string) bool {
	name, ok := strings.CutPrefix(p, "label/")
	if !ok {
		return false
	}
	name, ok = strings.CutSuffix(name, "/values")
	if !ok || name == "" || len(name) > 1024 {
		return false
	}
	for i, c := range name {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
