package detector

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

func TestLabelString(t *testing.T) {
	long := strings.Repeat("v", 300) // a two-byte length
	cases := []struct {
		name string
		ls   Labels
	}{
		{"empty", nil},
		{"one", FromStrings("__name__", "up")},
		{"typical", FromStrings("__name__", "http_requests_total", "instance", "10.0.0.1:9100", "job", "api", "pod", "api-7")},
		{"empty value", FromStrings("a", "", "b", "x")},
		{"long value", FromStrings("__name__", "x", "payload", long)},
		{"unicode", FromStrings("__name__", "x", "ñame", "välue")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			enc := encodeLabels(tc.ls)
			if diff := cmp.Diff(tc.ls, enc.labels()); diff != "" {
				t.Fatalf("labels() (-want +got):\n%s", diff)
			}
			require.Equal(t, append(Labels{}, tc.ls...), enc.appendTo(Labels{}), "appendTo")
			require.True(t, enc.equal(tc.ls))
			for _, l := range tc.ls {
				require.Equal(t, l.Value, enc.Get(l.Name))
			}
			require.Empty(t, enc.Get("absent"))
		})
	}
}

func TestLabelStringEqual(t *testing.T) {
	enc := encodeLabels(FromStrings("__name__", "up", "job", "api"))
	for _, tc := range []struct {
		name string
		ls   Labels
		want bool
	}{
		{"same", FromStrings("__name__", "up", "job", "api"), true},
		{"prefix", FromStrings("__name__", "up"), false},
		{"extra", FromStrings("__name__", "up", "job", "api", "z", "1"), false},
		{"other value", FromStrings("__name__", "up", "job", "apj"), false},
		{"other name", FromStrings("__name__", "up", "jab", "api"), false},
		// The same bytes split differently must not match.
		{"shifted", Labels{{Name: "__name__", Value: "upjob"}, {Name: "", Value: "api"}}, false},
		{"empty", nil, false},
	} {
		require.Equal(t, tc.want, enc.equal(tc.ls), tc.name)
	}
	require.True(t, labelString("").equal(nil))

	// Names or values of 128 bytes or more take the slow path.
	long := strings.Repeat("x", 200)
	enc = encodeLabels(FromStrings("__name__", "up", "payload", long))
	require.True(t, enc.equal(FromStrings("__name__", "up", "payload", long)))
	require.False(t, enc.equal(FromStrings("__name__", "up", "payload", long[:199]+"y")))
	require.False(t, enc.equal(FromStrings("__name__", "up", "payload", long[:199])))
	require.False(t, enc.equal(FromStrings("__name__", "up")))
}

// Results hands out every series' own labels although it decodes them into
// one reused slice.
func TestResultsLabelsPerSeries(t *testing.T) {
	d, _ := newTestDetector(t, nil)
	want := map[string]bool{}
	for _, job := range []string{"a", "bb", "c"} {
		ls := FromStrings("__name__", "x", "job", job)
		want[ls.String()] = true
		for i := range 20 {
			feed(t, d, ls, int64(i+1)*15_000, float64(i%3))
		}
	}
	got := map[string]bool{}
	d.Results(func(r *Result) bool {
		got[r.Labels.String()] = true
		return true
	})
	require.Equal(t, want, got)
}
