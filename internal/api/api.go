// Package api serves sentinel-mesh's JSON HTTP API under /api/v1: recent
// anomalies and incidents from an in-memory store, score history of series,
// label autocomplete, and model and build information. Responses use the
// Prometheus HTTP API envelope so existing clients and Grafana code can read
// them.
package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/version"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
)

// Request limits. A request over any of them is answered with 400.
const (
	MaxQueryBytes     = 16 << 10 // raw query string
	MaxMatchers       = 32       // match[] parameters
	MaxSelectorBytes  = 4 << 10  // one match[] value
	MaxLabelNameBytes = 1 << 10
	MaxTenantBytes    = 150
)

// Source is what the API reads from the detector.
type Source interface {
	Results(fn func(r *detector.Result) bool)
	// Recent gives every scored series, calm ones included (their latest
	// result), so an alert rule over a healthy fleet sees values, not NoData.
	Recent(sel detector.Selector, tenant string, fromMs, toMs int64, fn func(tenant string, lbls detector.Labels, points []detector.HistoryPoint) bool)
	Model() detector.Model
	Threshold() float64
}

// SelectorParser parses PromQL series selectors; the server passes
// config.ParseSelectors (which this package cannot import: config imports it).
type SelectorParser func([]string) (detector.Selection, error)

// Options are the dependencies of a Handler.
type Options struct {
	Config         Config
	Source         Source
	Store          *Store
	ParseSelectors SelectorParser
	// TenantHeader names the request header carrying the tenant ID
	// (remote_write.tenant_header). When a request has it, only that tenant's
	// data is returned.
	TenantHeader string
	Logger       *slog.Logger
	// Now returns the current time; tests may set it. Defaults to time.Now.
	Now func() time.Time
}

// Handler serves the API.
type Handler struct {
	opts Options
	mux  *http.ServeMux
}

// NewHandler returns the API handler. Register it for the prefix "/api/v1/"
// (Routes lists the exact paths).
func NewHandler(o Options) (*Handler, error) {
	if o.Source == nil || o.Store == nil || o.ParseSelectors == nil {
		return nil, errors.New("api: Source, Store and ParseSelectors are required")
	}
	if err := o.Config.Validate(); err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.TenantHeader == "" {
		o.TenantHeader = "X-Scope-OrgID"
	}
	h := &Handler{opts: o, mux: http.NewServeMux()}
	h.mux.HandleFunc("/api/v1/anomalies", h.get(h.anomalies))
	h.mux.HandleFunc("/api/v1/incidents", h.get(h.incidents))
	h.mux.HandleFunc("/api/v1/series", h.get(h.series))
	h.mux.HandleFunc("/api/v1/labels", h.get(h.labels))
	h.mux.HandleFunc("/api/v1/label/{name}/values", h.get(h.labelValues))
	h.mux.HandleFunc("/api/v1/model", h.get(h.model))
	h.mux.HandleFunc("/api/v1/status/buildinfo", h.get(h.buildInfo))
	return h, nil
}

// Routes are the paths the handler serves, for registration on a mux that
// also serves other /api/v1 paths (such as /api/v1/write).
var Routes = []string{
	"/api/v1/anomalies",
	"/api/v1/incidents",
	"/api/v1/series",
	"/api/v1/labels",
	"/api/v1/label/",
	"/api/v1/model",
	"/api/v1/status/buildinfo",
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, pattern := h.mux.Handler(r); pattern == "" {
		writeError(w, http.StatusNotFound, errNotFound, "unknown API endpoint %s", r.URL.Path)
		return
	}
	h.mux.ServeHTTP(w, r)
}

// Error types as in the Prometheus HTTP API.
const (
	errBadData  = "bad_data"
	errNotFound = "not_found"
	errMethod   = "method_not_allowed"
	errInternal = "internal"
)

type apiError struct {
	status int
	typ    string
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func badData(format string, args ...any) error {
	return &apiError{status: http.StatusBadRequest, typ: errBadData, msg: fmt.Sprintf(format, args...)}
}

type response struct {
	Status    string   `json:"status"`
	Data      any      `json:"data,omitempty"`
	ErrorType string   `json:"errorType,omitempty"`
	Error     string   `json:"error,omitempty"`
	Warnings  []string `json:"warnings,omitempty"`
}

// result is what an endpoint returns on success.
type result struct {
	data     any
	warnings []string
}

// get wraps an endpoint: only GET and HEAD, bounded query strings, the
// envelope and error mapping.
func (h *Handler) get(f func(r *http.Request, q url.Values, tenant string) (result, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, errMethod, "method %s not allowed", r.Method)
			return
		}
		if len(r.URL.RawQuery) > MaxQueryBytes {
			writeError(w, http.StatusRequestURITooLong, errBadData, "query string is %d bytes, max %d", len(r.URL.RawQuery), MaxQueryBytes)
			return
		}
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			writeError(w, http.StatusBadRequest, errBadData, "invalid query string: %v", err)
			return
		}
		tenant, err := h.tenant(r, q)
		if err != nil {
			writeAPIError(w, err)
			return
		}
		res, err := f(r, q, tenant)
		if err != nil {
			writeAPIError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, response{Status: "success", Data: res.data, Warnings: res.warnings})
	}
}

// tenant returns the tenant a request may see: the tenant header when
// present, else the tenant parameter, else "" (all tenants).
func (h *Handler) tenant(r *http.Request, q url.Values) (string, error) {
	hdr := r.Header.Get(h.opts.TenantHeader)
	param := q.Get("tenant")
	if len(hdr) > MaxTenantBytes || len(param) > MaxTenantBytes {
		return "", badData("tenant ID longer than %d bytes", MaxTenantBytes)
	}
	if hdr != "" && param != "" && param != hdr {
		return "", &apiError{status: http.StatusForbidden, typ: errBadData, msg: fmt.Sprintf("tenant parameter does not match the %s header", h.opts.TenantHeader)}
	}
	if hdr != "" {
		return hdr, nil
	}
	return param, nil
}

func writeAPIError(w http.ResponseWriter, err error) {
	var ae *apiError
	if errors.As(err, &ae) {
		writeError(w, ae.status, ae.typ, "%s", ae.msg)
		return
	}
	writeError(w, http.StatusInternalServerError, errInternal, "%v", err)
}

func writeError(w http.ResponseWriter, status int, typ, format string, args ...any) {
	writeJSON(w, status, response{Status: "error", ErrorType: typ, Error: fmt.Sprintf(format, args...)})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// timeRange parses start and end (RFC 3339 or Unix seconds, as in the
// Prometheus API). Missing values leave the range open on that side.
func (h *Handler) timeRange(q url.Values, defaultLookback time.Duration) (startMs, endMs int64, err error) {
	startMs, endMs = math.MinInt64, math.MaxInt64
	if defaultLookback > 0 {
		now := h.opts.Now()
		endMs = now.UnixMilli()
		startMs = now.Add(-defaultLookback).UnixMilli()
	}
	if s := q.Get("end"); s != "" {
		if endMs, err = parseTime(s); err != nil {
			return 0, 0, badData("invalid parameter \"end\": %v", err)
		}
		if defaultLookback > 0 && q.Get("start") == "" {
			startMs = endMs - defaultLookback.Milliseconds()
		}
	}
	if s := q.Get("start"); s != "" {
		if startMs, err = parseTime(s); err != nil {
			return 0, 0, badData("invalid parameter \"start\": %v", err)
		}
	}
	if endMs < startMs {
		return 0, 0, badData("end timestamp must not be before start time")
	}
	return startMs, endMs, nil
}

func parseTime(s string) (int64, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e13 {
			return 0, fmt.Errorf("cannot parse %q to a valid timestamp", s)
		}
		return int64(math.Round(f * 1000)), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, fmt.Errorf("cannot parse %q to a valid timestamp", s)
	}
	return t.UnixMilli(), nil
}

// selection parses match[]; required says whether at least one is needed.
func (h *Handler) selection(q url.Values, required bool) (detector.Selection, error) {
	ms := q["match[]"]
	if len(ms) == 0 {
		if required {
			return nil, badData("no match[] parameter provided")
		}
		return nil, nil
	}
	if len(ms) > MaxMatchers {
		return nil, badData("%d match[] parameters, max %d", len(ms), MaxMatchers)
	}
	for _, m := range ms {
		if len(m) > MaxSelectorBytes {
			return nil, badData("match[] value is %d bytes, max %d", len(m), MaxSelectorBytes)
		}
	}
	sel, err := h.opts.ParseSelectors(ms)
	if err != nil {
		return nil, badData("invalid parameter \"match[]\": %v", err)
	}
	return sel, nil
}

// limit parses the limit parameter; 0 or missing means max.
func limit(q url.Values, maxN int) (int, error) {
	s := q.Get("limit")
	if s == "" {
		return maxN, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, badData("invalid parameter \"limit\": %q is not a non-negative integer", s)
	}
	if n == 0 || n > maxN {
		return maxN, nil
	}
	return n, nil
}

// anomalyFilter selects anomalies from the store.
type anomalyFilter struct {
	tenant         string
	sel            detector.Selection
	startMs, endMs int64
	state          string // open, closed, all
	direction      detector.Direction
}

func (h *Handler) parseAnomalyFilter(q url.Values, tenant string) (anomalyFilter, error) {
	f := anomalyFilter{tenant: tenant}
	var err error
	if f.startMs, f.endMs, err = h.timeRange(q, 0); err != nil {
		return f, err
	}
	if f.sel, err = h.selection(q, false); err != nil {
		return f, err
	}
	switch f.state = q.Get("state"); f.state {
	case "":
		f.state = "all"
	case "open", "closed", "all":
	default:
		return f, badData("invalid parameter \"state\": %q (want open, closed or all)", f.state)
	}
	if f.direction, err = detector.ParseDirection(q.Get("direction")); err != nil {
		return f, badData("invalid parameter \"direction\": %v", err)
	}
	return f, nil
}

func (f *anomalyFilter) matches(a *Anomaly) bool {
	if f.tenant != "" && a.Tenant != f.tenant {
		return false
	}
	switch f.state {
	case "open":
		if !a.Open() {
			return false
		}
	case "closed":
		if a.Open() {
			return false
		}
	}
	if f.direction != detector.DirectionBoth && a.Direction != f.direction {
		return false
	}
	// Overlaps [start, end].
	if a.OpenedAtMs > f.endMs || (!a.Open() && a.ClosedAtMs < f.startMs) {
		return false
	}
	return f.sel.Matches(a.Labels)
}

func (h *Handler) filterAnomalies(f anomalyFilter) []Anomaly {
	var out []Anomaly
	h.opts.Store.Snapshot(func(a Anomaly) bool {
		if f.matches(&a) {
			out = append(out, a)
		}
		return true
	})
	return out
}

// AnomalyJSON is an anomaly in API responses. IDs are strings because they
// exceed JavaScript's safe integers.
type AnomalyJSON struct {
	ID           string            `json:"id"`
	Tenant       string            `json:"tenant"`
	Labels       map[string]string `json:"labels"`
	State        string            `json:"state"`
	Direction    string            `json:"direction"`
	OpenedAt     time.Time         `json:"openedAt"`
	ClosedAt     *time.Time        `json:"closedAt,omitempty"`
	UpdatedAt    time.Time         `json:"updatedAt"`
	Value        Float             `json:"value"`
	Expected     Float             `json:"expected"`
	Lower        Float             `json:"lower"`
	Upper        Float             `json:"upper"`
	Score        Float             `json:"score"`
	PeakScore    Float             `json:"peakScore"`
	ModelVersion string            `json:"modelVersion,omitempty"`
	// Corroborated: the anomaly opened because another series of the same
	// target was as surprising at the same time.
	Corroborated bool `json:"corroborated,omitempty"`
	// Cause: the scoring term that opened the anomaly ("prediction",
	// "level" or "seasonal"); left out when unknown.
	Cause string `json:"cause,omitempty"`
}

func anomalyJSON(a *Anomaly) AnomalyJSON {
	j := AnomalyJSON{
		ID:           strconv.FormatUint(a.ID, 10),
		Tenant:       a.Tenant,
		Labels:       labelMap(a.Labels),
		State:        "open",
		Direction:    a.Direction.String(),
		OpenedAt:     time.UnixMilli(a.OpenedAtMs).UTC(),
		UpdatedAt:    time.UnixMilli(a.UpdatedAtMs).UTC(),
		Value:        Float(a.Value),
		Expected:     Float(a.Expected),
		Lower:        Float(a.Lower),
		Upper:        Float(a.Upper),
		Score:        Float(a.Score),
		PeakScore:    Float(a.PeakScore),
		ModelVersion: a.ModelVersion,
		Corroborated: a.Corroborated,
	}
	if a.Cause != detector.CauseUnknown {
		j.Cause = a.Cause.String()
	}
	if !a.Open() {
		t := time.UnixMilli(a.ClosedAtMs).UTC()
		j.State, j.ClosedAt = "closed", &t
	}
	return j
}

func labelMap(ls detector.Labels) map[string]string {
	m := make(map[string]string, len(ls))
	for _, l := range ls {
		m[l.Name] = l.Value
	}
	return m
}

// Float is a float64 that encodes NaN and ±Inf as null, which JSON lacks.
type Float float64

func (f Float) MarshalJSON() ([]byte, error) {
	v := float64(f)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, v, 'g', -1, 64), nil
}

// GET /api/v1/anomalies
func (h *Handler) anomalies(_ *http.Request, q url.Values, tenant string) (result, error) {
	f, err := h.parseAnomalyFilter(q, tenant)
	if err != nil {
		return result{}, err
	}
	n, err := limit(q, h.opts.Config.MaxAnomalies)
	if err != nil {
		return result{}, err
	}
	as := h.filterAnomalies(f)
	// Newest first; open before closed at the same opening time.
	sort.SliceStable(as, func(i, j int) bool {
		if as[i].OpenedAtMs != as[j].OpenedAtMs {
			return as[i].OpenedAtMs > as[j].OpenedAtMs
		}
		return as[i].ID > as[j].ID
	})
	var warnings []string
	if len(as) > n {
		warnings = append(warnings, fmt.Sprintf("%d anomalies matched, returning the newest %d", len(as), n))
		as = as[:n]
	}
	out := make([]AnomalyJSON, len(as))
	for i := range as {
		out[i] = anomalyJSON(&as[i])
	}
	return result{data: out, warnings: warnings}, nil
}

// IncidentJSON is a group of anomalies of one workload that opened close
// together.
type IncidentJSON struct {
	ID        string            `json:"id"` // ID of the first anomaly
	Tenant    string            `json:"tenant"`
	Group     map[string]string `json:"group"`
	State     string            `json:"state"` // open while any anomaly is open
	OpenedAt  time.Time         `json:"openedAt"`
	ClosedAt  *time.Time        `json:"closedAt,omitempty"`
	PeakScore Float             `json:"peakScore"`
	Count     int               `json:"count"`
	Anomalies []AnomalyJSON     `json:"anomalies"`
}

// GET /api/v1/incidents
func (h *Handler) incidents(_ *http.Request, q url.Values, tenant string) (result, error) {
	f, err := h.parseAnomalyFilter(q, tenant)
	if err != nil {
		return result{}, err
	}
	n, err := limit(q, h.opts.Config.MaxAnomalies)
	if err != nil {
		return result{}, err
	}
	groupBy := h.opts.Config.IncidentGroupBy
	if s := q.Get("group_by"); s != "" {
		groupBy = strings.Split(s, ",")
		if len(groupBy) > MaxMatchers {
			return result{}, badData("group_by names %d labels, max %d", len(groupBy), MaxMatchers)
		}
		for _, g := range groupBy {
			if !labelNameRE.MatchString(g) {
				return result{}, badData("invalid parameter \"group_by\": invalid label name %q", g)
			}
		}
	}
	window := time.Duration(h.opts.Config.IncidentWindow)
	if s := q.Get("window"); s != "" {
		d, err := parseDuration(s)
		if err != nil || d <= 0 {
			return result{}, badData("invalid parameter \"window\": %q is not a positive duration", s)
		}
		window = d
	}

	// Group key: tenant and the group-by label values.
	type group struct {
		tenant string
		labels map[string]string
		as     []Anomaly
	}
	groups := map[string]*group{}
	var keys []string
	for _, a := range h.filterAnomalies(f) {
		var kb strings.Builder
		kb.WriteString(a.Tenant)
		gl := make(map[string]string, len(groupBy))
		for _, g := range groupBy {
			v := a.Labels.Get(g)
			kb.WriteByte(0xff)
			kb.WriteString(v)
			if v != "" {
				gl[g] = v
			}
		}
		k := kb.String()
		gr, ok := groups[k]
		if !ok {
			gr = &group{tenant: a.Tenant, labels: gl}
			groups[k] = gr
			keys = append(keys, k)
		}
		gr.as = append(gr.as, a)
	}

	var out []IncidentJSON
	for _, k := range keys {
		gr := groups[k]
		slices.SortFunc(gr.as, func(a, b Anomaly) int {
			if a.OpenedAtMs != b.OpenedAtMs {
				return cmpInt(a.OpenedAtMs, b.OpenedAtMs)
			}
			return cmpInt(int64(a.ID), int64(b.ID))
		})
		var cur *IncidentJSON
		var lastOpen int64
		for i := range gr.as {
			a := &gr.as[i]
			if cur == nil || a.OpenedAtMs-lastOpen > window.Milliseconds() {
				out = append(out, IncidentJSON{
					ID: strconv.FormatUint(a.ID, 10), Tenant: gr.tenant, Group: gr.labels,
					State: "closed", OpenedAt: time.UnixMilli(a.OpenedAtMs).UTC(),
				})
				cur = &out[len(out)-1]
			}
			lastOpen = a.OpenedAtMs
			cur.Count++
			cur.PeakScore = max(cur.PeakScore, Float(a.PeakScore))
			cur.Anomalies = append(cur.Anomalies, anomalyJSON(a))
			if a.Open() {
				cur.State, cur.ClosedAt = "open", nil
			} else if cur.State == "closed" {
				t := time.UnixMilli(a.ClosedAtMs).UTC()
				if cur.ClosedAt == nil || t.After(*cur.ClosedAt) {
					cur.ClosedAt = &t
				}
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].OpenedAt.After(out[j].OpenedAt) })
	var warnings []string
	if len(out) > n {
		warnings = append(warnings, fmt.Sprintf("%d incidents matched, returning the newest %d", len(out), n))
		out = out[:n]
	}
	if out == nil {
		out = []IncidentJSON{}
	}
	return result{data: out, warnings: warnings}, nil
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// parseDuration accepts Go and Prometheus durations ("90s", "5m", "1h30m").
func parseDuration(s string) (time.Duration, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return d, nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && f < math.MaxInt64/float64(time.Second) {
		return time.Duration(f * float64(time.Second)), nil
	}
	return 0, fmt.Errorf("invalid duration %q", s)
}

// SeriesJSON is the recent results of one series, column by column;
// timestamps are Unix milliseconds. A series that never had an anomaly has
// its latest result only; one that had an anomaly has its history ring.
type SeriesJSON struct {
	Tenant     string            `json:"tenant"`
	Labels     map[string]string `json:"labels"`
	Timestamps []int64           `json:"timestamps"`
	Value      []Float           `json:"value"`
	Score      []Float           `json:"score"`
	Expected   []Float           `json:"expected"`
	Lower      []Float           `json:"lower"`
	Upper      []Float           `json:"upper"`
}

// GET /api/v1/series
func (h *Handler) series(_ *http.Request, q url.Values, tenant string) (result, error) {
	sel, err := h.selection(q, true)
	if err != nil {
		return result{}, err
	}
	startMs, endMs, err := h.timeRange(q, 0)
	if err != nil {
		return result{}, err
	}
	n, err := limit(q, h.opts.Config.MaxSeriesPerQuery)
	if err != nil {
		return result{}, err
	}
	seen := map[string]bool{}
	out := []SeriesJSON{}
	truncated := false
	for _, s := range sel {
		h.opts.Source.Recent(s, tenant, startMs, endMs, func(t string, lbls detector.Labels, pts []detector.HistoryPoint) bool {
			key := t + "\xff" + lbls.String()
			if seen[key] || len(pts) == 0 {
				return true
			}
			if len(out) >= n {
				truncated = true
				return false
			}
			seen[key] = true
			sj := SeriesJSON{
				Tenant: t, Labels: labelMap(lbls),
				Timestamps: make([]int64, len(pts)),
				Value:      make([]Float, len(pts)), Score: make([]Float, len(pts)),
				Expected: make([]Float, len(pts)), Lower: make([]Float, len(pts)), Upper: make([]Float, len(pts)),
			}
			for i, p := range pts {
				sj.Timestamps[i] = p.TimestampMs
				sj.Value[i], sj.Score[i] = Float(p.Value), Float(p.Score)
				sj.Expected[i], sj.Lower[i], sj.Upper[i] = Float(p.Expected), Float(p.Lower), Float(p.Upper)
			}
			out = append(out, sj)
			return true
		})
	}
	// Deterministic order: by tenant, then label set.
	sort.Slice(out, func(i, j int) bool {
		if out[i].Tenant != out[j].Tenant {
			return out[i].Tenant < out[j].Tenant
		}
		return labelsKey(out[i].Labels) < labelsKey(out[j].Labels)
	})
	var warnings []string
	if truncated {
		warnings = append(warnings, fmt.Sprintf("more than %d series matched; the result is truncated", n))
	}
	return result{data: out, warnings: warnings}, nil
}

func labelsKey(m map[string]string) string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, k := range names {
		b.WriteString(k)
		b.WriteByte(0xfe)
		b.WriteString(m[k])
		b.WriteByte(0xff)
	}
	return b.String()
}

// labelSet collects a sorted, bounded set of strings from current results.
func (h *Handler) collect(q url.Values, tenant string, add func(r *detector.Result, set map[string]struct{})) ([]string, []string, error) {
	sel, err := h.selection(q, false)
	if err != nil {
		return nil, nil, err
	}
	n, err := limit(q, maxLabelResults)
	if err != nil {
		return nil, nil, err
	}
	set := map[string]struct{}{}
	h.opts.Source.Results(func(r *detector.Result) bool {
		if (tenant != "" && r.Tenant != tenant) || !sel.Matches(r.Labels) {
			return true
		}
		add(r, set)
		return true
	})
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	var warnings []string
	if len(out) > n {
		warnings = append(warnings, fmt.Sprintf("%d results, returning the first %d", len(out), n))
		out = out[:n]
	}
	return out, warnings, nil
}

// maxLabelResults bounds label name and value lists.
const maxLabelResults = 10_000

// GET /api/v1/labels
func (h *Handler) labels(_ *http.Request, q url.Values, tenant string) (result, error) {
	out, warnings, err := h.collect(q, tenant, func(r *detector.Result, set map[string]struct{}) {
		for _, l := range r.Labels {
			set[l.Name] = struct{}{}
		}
	})
	return result{data: out, warnings: warnings}, err
}

// GET /api/v1/label/{name}/values
func (h *Handler) labelValues(r *http.Request, q url.Values, tenant string) (result, error) {
	name := r.PathValue("name")
	if name == "" || len(name) > MaxLabelNameBytes {
		return result{}, badData("invalid label name %q", name)
	}
	out, warnings, err := h.collect(q, tenant, func(r *detector.Result, set map[string]struct{}) {
		if v := r.Labels.Get(name); v != "" {
			set[v] = struct{}{}
		}
	})
	return result{data: out, warnings: warnings}, err
}

// ModelJSON describes the loaded model.
type ModelJSON struct {
	Loaded    bool    `json:"loaded"`
	Version   string  `json:"version,omitempty"`
	Window    int     `json:"window,omitempty"`
	Threshold float64 `json:"threshold"`
}

// GET /api/v1/model
func (h *Handler) model(*http.Request, url.Values, string) (result, error) {
	m := ModelJSON{Threshold: h.opts.Source.Threshold()}
	if mdl := h.opts.Source.Model(); mdl != nil {
		m.Loaded, m.Version, m.Window = true, mdl.Version(), mdl.Window()
	}
	return result{data: m}, nil
}

// BuildInfoJSON matches Prometheus' /api/v1/status/buildinfo.
type BuildInfoJSON struct {
	Version   string `json:"version"`
	Revision  string `json:"revision"`
	Branch    string `json:"branch"`
	BuildUser string `json:"buildUser"`
	BuildDate string `json:"buildDate"`
	GoVersion string `json:"goVersion"`
}

// GET /api/v1/status/buildinfo
func (h *Handler) buildInfo(*http.Request, url.Values, string) (result, error) {
	return result{data: BuildInfoJSON{
		Version: version.Version, Revision: version.Revision, Branch: version.Branch,
		BuildUser: version.BuildUser, BuildDate: version.BuildDate, GoVersion: version.GoVersion,
	}}, nil
}
