package plugin

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/grafana/dataplane/sdata/numeric"
	"github.com/grafana/dataplane/sdata/reader"
	"github.com/grafana/dataplane/sdata/timeseries"
	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/stretchr/testify/require"
)

func f64(v float64) *float64 { return &v }

// fleet is n series of one metric; series i has i+1 points (a calm series
// has its latest point only) and a score of i/10 at its newest point.
func fleet(n int) []Series {
	ss := make([]Series, n)
	for i := range ss {
		s := Series{Tenant: "t1", Labels: map[string]string{"__name__": "cpu", "instance": fmt.Sprintf("i%d", i)}}
		for j := range i + 1 {
			s.Timestamps = append(s.Timestamps, int64(1_700_000_000_000+j*1000))
			s.Score = append(s.Score, f64(float64(i)/10))
			s.Value = append(s.Value, f64(float64(100+j)))
			s.Expected = append(s.Expected, f64(100))
			s.Lower = append(s.Lower, f64(90))
			s.Upper = append(s.Upper, f64(110))
		}
		ss[i] = s
	}
	return ss
}

func seriesFrames(ss []Series, q Query) data.Frames {
	var frames data.Frames
	for _, s := range ss {
		frames = append(frames, seriesFrame("A", s, q, len(ss) > 1))
	}
	if len(frames) == 0 {
		frames = append(frames, noSeriesFrame("A", q))
	}
	return frames
}

// The frames are read with grafana/dataplane's sdata readers, the code
// Grafana's server-side expressions (and so alerting) use for typed frames:
// N series must give N series (or numbers), each with its labels and the
// score as the value the rule evaluates.
func TestSeriesFramesAsAlertingReadsThem(t *testing.T) {
	tests := []struct {
		name  string
		n     int
		query Query
	}{
		{"one series, all fields", 1, Query{}},
		{"five series, all fields", 5, Query{}},
		{"five series, score only", 5, Query{Fields: []string{"score"}}},
		{"three series, value and score", 3, Query{Fields: []string{"value", "score"}}},
		{"five series, instant", 5, Query{Instant: true}},
		{"five series, instant score only", 5, Query{Instant: true, Fields: []string{"score"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ss := fleet(tc.n)
			frames := seriesFrames(ss, tc.query)
			require.Len(t, frames, tc.n, "one frame per series")

			wantType, wantKind := data.FrameTypeTimeSeriesMulti, data.KindTimeSeries
			if tc.query.Instant {
				wantType, wantKind = data.FrameTypeNumericMulti, data.KindNumeric
			}
			for i, f := range frames {
				require.Equal(t, wantType, f.Meta.Type)
				require.Equal(t, data.FrameTypeVersion{0, 1}, f.Meta.TypeVersion)
				require.Equal(t, "A", f.RefID)
				for _, fl := range f.Fields {
					if fl.Type().Numeric() {
						require.Equal(t, data.Labels{"__name__": "cpu", "instance": fmt.Sprintf("i%d", i), "tenant": "t1"}, fl.Labels)
					}
				}
			}

			// Grafana checks the type first, then reads by kind.
			typ, err := reader.CanReadBasedOnMeta(frames)
			require.NoError(t, err)
			require.Equal(t, wantKind, typ.Kind())

			got := map[string]float64{} // instance -> value alerting evaluates
			if tc.query.Instant {
				r, err := numeric.CollectionReaderFromFrames(frames)
				require.NoError(t, err)
				c, err := r.GetCollection(false)
				require.NoError(t, err)
				require.False(t, c.NoData())
				for _, ref := range c.Refs {
					v, _, err := ref.NullableFloat64Value()
					require.NoError(t, err)
					require.NotNil(t, v)
					got[ref.GetLabels()["instance"]] = *v
				}
			} else {
				r, err := timeseries.CollectionReaderFromFrames(frames)
				require.NoError(t, err)
				// Stricter than Grafana: sorted times, no duplicate series.
				c, err := r.GetCollection(true)
				require.NoError(t, err)
				require.False(t, c.NoData())
				for _, ref := range c.Refs {
					require.Equal(t, "score", ref.GetMetricName(), "the score is the series' value")
					require.Equal(t, ref.TimeField.Len(), ref.ValueField.Len())
					v, ok := ref.ValueField.ConcreteAt(ref.ValueField.Len() - 1)
					require.True(t, ok)
					got[ref.GetLabels()["instance"]] = v.(float64)
				}
			}
			want := map[string]float64{}
			for i := range tc.n {
				want[fmt.Sprintf("i%d", i)] = float64(i) / 10
			}
			require.Empty(t, cmp.Diff(want, got), "one score per series")
		})
	}
}

func TestSeriesFrameFields(t *testing.T) {
	s := fleet(3)[2]
	tests := []struct {
		name       string
		query      Query
		wantFields []string
		wantRows   int
	}{
		{"all", Query{}, []string{"time", "score", "value", "expected", "lower", "upper"}, 3},
		{"score only", Query{Fields: []string{"score"}}, []string{"time", "score"}, 3},
		{"instant", Query{Instant: true}, []string{"score", "value", "expected", "lower", "upper"}, 1},
		{"instant value", Query{Instant: true, Fields: []string{"value"}}, []string{"value"}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := seriesFrame("A", s, tc.query, false)
			var names []string
			for _, fl := range f.Fields {
				names = append(names, fl.Name)
			}
			require.Equal(t, tc.wantFields, names)
			require.Equal(t, tc.wantRows, f.Rows())
			if tc.query.Instant {
				// The latest result, not the first.
				v, _ := f.Fields[0].ConcreteAt(0)
				want := map[string]float64{"score": 0.2, "value": 102}[tc.wantFields[0]]
				require.Equal(t, want, v)
				return
			}
			require.Equal(t, time.UnixMilli(1_700_000_002_000).UTC(), f.Fields[0].At(2))
			upper, _ := f.FieldByName("upper")
			if upper != nil {
				require.Equal(t, nameLower, upper.Config.Custom["fillBelowTo"])
			}
		})
	}
}

// No matching series is the data-plane "no data" response, which alerting
// reads as NoData (its configurable no-data state), not as an error.
func TestNoSeriesIsTypedNoData(t *testing.T) {
	for _, instant := range []bool{false, true} {
		frames := seriesFrames(nil, Query{Instant: instant})
		require.Len(t, frames, 1)
		require.Empty(t, frames[0].Fields)
		if instant {
			r, err := numeric.CollectionReaderFromFrames(frames)
			require.NoError(t, err)
			c, err := r.GetCollection(false)
			require.NoError(t, err)
			require.True(t, c.NoData())
			continue
		}
		r, err := timeseries.CollectionReaderFromFrames(frames)
		require.NoError(t, err)
		c, err := r.GetCollection(false)
		require.NoError(t, err)
		require.True(t, c.NoData())
	}
}
