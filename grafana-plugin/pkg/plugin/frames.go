package plugin

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/data"
)

var validSeriesField = map[string]bool{"value": true, "score": true, "expected": true, "lower": true, "upper": true}

// Display names of the series fields.
const (
	nameObserved = "observed"
	nameScore    = "anomaly score"
	nameExpected = "expected"
	nameLower    = "lower bound"
	nameUpper    = "upper bound"
)

// Selector renders labels as a PromQL series selector, sorted by name.
func Selector(ls map[string]string) string {
	names := make([]string, 0, len(ls))
	for k := range ls {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(ls[k]))
	}
	b.WriteByte('}')
	return b.String()
}

func conf(v float64) *data.ConfFloat64 { c := data.ConfFloat64(v); return &c }

// Frame type versions of the data-plane contract (grafana/dataplane sdata
// reads 0.1 of both).
var (
	timeSeriesMultiVersion = data.FrameTypeVersion{0, 1}
	numericMultiVersion    = data.FrameTypeVersion{0, 1}
)

// seriesFrame is one series' recent results as one frame of a
// timeseries-multi response: time, then the score, observed value,
// expected value and band, each field carrying the series labels. Grafana
// alerting reads one series per frame, from the first numeric field, so
// one frame per series gives one alert instance per series, and the score
// comes first so that is what a rule evaluates whatever fields are shown.
// The upper bound fills down to the lower bound so panels draw the band.
//
// With q.Instant the frame is of a numeric-multi response instead: no time
// field and the latest result only, a number per field that an alert rule
// can compare with a threshold without a Reduce expression.
func seriesFrame(refID string, s Series, q Query, multi bool) *data.Frame {
	want := func(f string) bool { return len(q.Fields) == 0 || slices.Contains(q.Fields, f) }
	name := Selector(s.Labels)
	display := func(kind string) string {
		if multi {
			return name + " " + kind
		}
		return kind
	}
	labels := data.Labels{}
	for k, v := range s.Labels {
		labels[k] = v
	}
	if s.Tenant != "" {
		labels["tenant"] = s.Tenant
	}
	n := len(s.Timestamps)
	frame := data.NewFrame(name)
	frame.RefID = refID
	first := 0 // index of the first point taken
	if q.Instant {
		first = max(n-1, 0)
		frame.Meta = &data.FrameMeta{Type: data.FrameTypeNumericMulti, TypeVersion: numericMultiVersion}
	} else {
		times := make([]time.Time, n)
		for i, ts := range s.Timestamps {
			times[i] = time.UnixMilli(ts).UTC()
		}
		frame.Fields = append(frame.Fields, data.NewField("time", nil, times))
		frame.Meta = &data.FrameMeta{Type: data.FrameTypeTimeSeriesMulti, TypeVersion: timeSeriesMultiVersion}
	}
	add := func(key, kind string, vals []*float64, cfg data.FieldConfig) {
		if !want(key) {
			return
		}
		vs := make([]*float64, n-first)
		if first < len(vals) {
			copy(vs, vals[first:])
		}
		f := data.NewField(key, labels, vs)
		cfg.DisplayNameFromDS = display(kind)
		f.Config = &cfg
		frame.Fields = append(frame.Fields, f)
	}
	band := map[string]any{"lineWidth": 0, "fillOpacity": 0, "hideFrom": map[string]bool{"legend": false, "tooltip": false, "viz": false}}
	upper := map[string]any{"lineWidth": 0, "fillOpacity": 20, "fillBelowTo": display(nameLower)}
	add("score", nameScore, s.Score, data.FieldConfig{Min: conf(0), Max: conf(1), Unit: "percentunit", Decimals: decimals(0)})
	add("value", nameObserved, s.Value, data.FieldConfig{Unit: q.Unit})
	add("expected", nameExpected, s.Expected, data.FieldConfig{Unit: q.Unit, Custom: map[string]any{"lineStyle": map[string]any{"fill": "dash", "dash": []int{10, 10}}}})
	add("lower", nameLower, s.Lower, data.FieldConfig{Unit: q.Unit, Custom: band})
	add("upper", nameUpper, s.Upper, data.FieldConfig{Unit: q.Unit, Custom: upper})
	return frame
}

// noSeriesFrame is the data-plane "no data" response: one typed frame
// without fields, which Grafana reads as NoData rather than as an error.
func noSeriesFrame(refID string, q Query) *data.Frame {
	f := data.NewFrame("")
	f.RefID = refID
	f.Meta = &data.FrameMeta{Type: data.FrameTypeTimeSeriesMulti, TypeVersion: timeSeriesMultiVersion}
	if q.Instant {
		f.Meta = &data.FrameMeta{Type: data.FrameTypeNumericMulti, TypeVersion: numericMultiVersion}
	}
	return f
}

func decimals(n uint16) *uint16 { return &n }

// anomaliesFrame is a table of anomalies, newest first, with a link from
// each series to its history in Explore.
func anomaliesFrame(refID, dsUID, dsName string, as []Anomaly) *data.Frame {
	n := len(as)
	var (
		opened   = make([]time.Time, n)
		closed   = make([]*time.Time, n)
		ids      = make([]string, n)
		states   = make([]string, n)
		dirs     = make([]string, n)
		metrics  = make([]string, n)
		sels     = make([]string, n)
		tenants  = make([]string, n)
		scores   = make([]*float64, n)
		peaks    = make([]*float64, n)
		values   = make([]*float64, n)
		expected = make([]*float64, n)
		lower    = make([]*float64, n)
		upper    = make([]*float64, n)
		models   = make([]string, n)
		corrob   = make([]bool, n)
		causes   = make([]string, n)
	)
	for i, a := range as {
		opened[i], closed[i], ids[i], states[i], dirs[i] = a.OpenedAt, a.ClosedAt, a.ID, a.State, a.Direction
		metrics[i], sels[i], tenants[i] = a.Labels["__name__"], Selector(a.Labels), a.Tenant
		scores[i], peaks[i], values[i], expected[i], lower[i], upper[i] = a.Score, a.PeakScore, a.Value, a.Expected, a.Lower, a.Upper
		models[i], corrob[i], causes[i] = a.ModelVersion, a.Corroborated, a.Cause
	}
	scoreCfg := &data.FieldConfig{Min: conf(0), Max: conf(1), Unit: "percentunit", Decimals: decimals(0)}
	series := data.NewField("series", nil, sels)
	series.Config = &data.FieldConfig{DisplayNameFromDS: "Series", Links: []data.DataLink{{
		Title: "Show in Explore",
		Internal: &data.InternalDataLink{
			DatasourceUID:  dsUID,
			DatasourceName: dsName,
			Query:          map[string]any{"refId": "A", "queryType": QueryTypeSeries, "matchers": "${__value.raw}"},
		},
	}}}
	withName := func(f *data.Field, display string, cfg *data.FieldConfig) *data.Field {
		if cfg == nil {
			cfg = &data.FieldConfig{}
		}
		c := *cfg
		c.DisplayNameFromDS = display
		f.Config = &c
		return f
	}
	frame := data.NewFrame("anomalies",
		withName(data.NewField("time", nil, opened), "Opened", nil),
		withName(data.NewField("timeEnd", nil, closed), "Closed", nil),
		withName(data.NewField("state", nil, states), "State", nil),
		withName(data.NewField("direction", nil, dirs), "Direction", nil),
		withName(data.NewField("cause", nil, causes), "Cause", &data.FieldConfig{
			Description: "What opened it: prediction (far from the model's prediction), level (the recent level left the usual one), seasonal (unusual for the time of day)",
		}),
		withName(data.NewField("metric", nil, metrics), "Metric", nil),
		series,
		withName(data.NewField("peakScore", nil, peaks), "Peak score", scoreCfg),
		withName(data.NewField("score", nil, scores), "Score", scoreCfg),
		withName(data.NewField("corroborated", nil, corrob), "Corroborated", &data.FieldConfig{
			Description: "Opened because another series of the same target was as surprising at the same time",
		}),
		withName(data.NewField("value", nil, values), "Value", nil),
		withName(data.NewField("expected", nil, expected), "Expected", nil),
		withName(data.NewField("lower", nil, lower), "Lower bound", nil),
		withName(data.NewField("upper", nil, upper), "Upper bound", nil),
		withName(data.NewField("tenant", nil, tenants), "Tenant", nil),
		withName(data.NewField("id", nil, ids), "ID", nil),
		withName(data.NewField("model", nil, models), "Model", nil),
	)
	frame.RefID = refID
	frame.Meta = &data.FrameMeta{PreferredVisualization: data.VisTypeTable}
	return frame
}

// annotationsFrame turns anomalies into Grafana annotations: a region from
// opening to closing, or a point at the opening while still open.
func annotationsFrame(refID string, as []Anomaly) *data.Frame {
	n := len(as)
	times := make([]time.Time, n)
	ends := make([]*time.Time, n)
	titles := make([]string, n)
	texts := make([]string, n)
	tags := make([]string, n)
	for i, a := range as {
		times[i], ends[i] = a.OpenedAt, a.ClosedAt
		metric := a.Labels["__name__"]
		titles[i] = fmt.Sprintf("Anomaly %s (%s) on %s", a.State, a.Direction, metric)
		var b strings.Builder
		fmt.Fprintf(&b, "%s\npeak score %s", Selector(a.Labels), fmtFloat(a.PeakScore))
		if a.Value != nil && a.Expected != nil {
			fmt.Fprintf(&b, ", value %s, expected %s [%s, %s]", fmtFloat(a.Value), fmtFloat(a.Expected), fmtFloat(a.Lower), fmtFloat(a.Upper))
		}
		texts[i] = b.String()
		t := []string{"anomaly", a.State, a.Direction}
		if metric != "" {
			t = append(t, metric)
		}
		tags[i] = strings.Join(t, ",")
	}
	frame := data.NewFrame("anomalies",
		data.NewField("time", nil, times),
		data.NewField("timeEnd", nil, ends),
		data.NewField("title", nil, titles),
		data.NewField("text", nil, texts),
		data.NewField("tags", nil, tags),
	)
	frame.RefID = refID
	return frame
}

func fmtFloat(v *float64) string {
	if v == nil {
		return "n/a"
	}
	return strconv.FormatFloat(*v, 'g', 4, 64)
}

// incidentsFrame is a table of incidents, newest first.
func incidentsFrame(refID string, in []Incident) *data.Frame {
	n := len(in)
	opened := make([]time.Time, n)
	closed := make([]*time.Time, n)
	ids, states, groups, tenants, series := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	counts := make([]int64, n)
	peaks := make([]*float64, n)
	for i, x := range in {
		opened[i], closed[i], ids[i], states[i], tenants[i] = x.OpenedAt, x.ClosedAt, x.ID, x.State, x.Tenant
		groups[i], counts[i], peaks[i] = Selector(x.Group), int64(x.Count), x.PeakScore
		sels := make([]string, len(x.Anomalies))
		for j, a := range x.Anomalies {
			sels[j] = Selector(a.Labels)
		}
		series[i] = strings.Join(sels, "\n")
	}
	named := func(f *data.Field, display string) *data.Field {
		f.Config = &data.FieldConfig{DisplayNameFromDS: display}
		return f
	}
	peak := named(data.NewField("peakScore", nil, peaks), "Peak score")
	peak.Config.Min, peak.Config.Max, peak.Config.Unit = conf(0), conf(1), "percentunit"
	frame := data.NewFrame("incidents",
		named(data.NewField("time", nil, opened), "Opened"),
		named(data.NewField("timeEnd", nil, closed), "Closed"),
		named(data.NewField("state", nil, states), "State"),
		named(data.NewField("group", nil, groups), "Group"),
		named(data.NewField("count", nil, counts), "Anomalies"),
		peak,
		named(data.NewField("series", nil, series), "Series"),
		named(data.NewField("tenant", nil, tenants), "Tenant"),
		named(data.NewField("id", nil, ids), "ID"),
	)
	frame.RefID = refID
	frame.Meta = &data.FrameMeta{PreferredVisualization: data.VisTypeTable}
	return frame
}

// addWarnings attaches the server's warnings to the first frame as notices.
func addWarnings(frames data.Frames, warnings []string) {
	if len(warnings) == 0 || len(frames) == 0 {
		return
	}
	f := frames[0]
	if f.Meta == nil {
		f.Meta = &data.FrameMeta{}
	}
	for _, w := range warnings {
		f.Meta.Notices = append(f.Meta.Notices, data.Notice{Severity: data.NoticeSeverityWarning, Text: w})
	}
}
