package nab

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// timeLayout is NAB's timestamp format; parsing also accepts the fractional
// seconds of combined_windows.json.
const timeLayout = "2006-01-02 15:04:05"

// Series is one data file. Timestamps may repeat or go backwards (a few NAB
// files repeat a timestamp around DST changes, and one steps back): the
// evaluation feeds such rows to the detector, which drops them as the server
// does.
type Series struct {
	Path     string // relative to data/, e.g. realKnownCause/nyc_taxi.csv
	Category string // e.g. realKnownCause
	Name     string // file name without .csv, e.g. nyc_taxi
	Times    []time.Time
	Values   []float64
	Windows  []Window
	// Metric is the __name__ the rows are fed under; nab_value when empty.
	Metric string
}

// Corpus is every data file of a NAB-style folder.
type Corpus struct {
	Dir    string    // the folder it was loaded from
	Series []*Series // sorted by Path
	// Churn, when set, feeds each series as a workload whose pod is
	// replaced every Churn of sample time: its pod and instance labels
	// change, so the detector sees a new series (detector.churn_labels).
	Churn time.Duration
}

// Rows returns the total number of rows.
func (c *Corpus) Rows() int {
	n := 0
	for _, s := range c.Series {
		n += len(s.Values)
	}
	return n
}

// Windows returns the total number of windows.
func (c *Corpus) Windows() int {
	n := 0
	for _, s := range c.Series {
		n += len(s.Windows)
	}
	return n
}

// LoadCorpus reads dir/data/<category>/<file>.csv and dir/combined_windows.json.
func LoadCorpus(dir string) (*Corpus, error) {
	b, err := os.ReadFile(filepath.Join(dir, "combined_windows.json"))
	if err != nil {
		return nil, fmt.Errorf("cannot read the windows: %w", err)
	}
	var windows map[string][][2]string
	if err := json.Unmarshal(b, &windows); err != nil {
		return nil, fmt.Errorf("cannot parse combined_windows.json: %w", err)
	}
	dataDir := filepath.Join(dir, "data")
	c := Corpus{Dir: dir}
	err = filepath.WalkDir(dataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".csv") {
			return err
		}
		rel, err := filepath.Rel(dataDir, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		s, err := readSeries(path)
		if err != nil {
			return fmt.Errorf("cannot read %s: %w", rel, err)
		}
		s.Path = rel
		s.Category = filepath.ToSlash(filepath.Dir(rel))
		s.Name = strings.TrimSuffix(filepath.Base(rel), ".csv")
		if err := s.setWindows(windows[rel]); err != nil {
			return fmt.Errorf("cannot place the windows of %s: %w", rel, err)
		}
		c.Series = append(c.Series, s)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cannot load corpus %s: %w", dir, err)
	}
	if len(c.Series) == 0 {
		return nil, fmt.Errorf("cannot load corpus %s: no CSV files under data/", dir)
	}
	slices.SortFunc(c.Series, func(a, b *Series) int { return strings.Compare(a.Path, b.Path) })
	return &c, nil
}

func parseTime(s string) (time.Time, error) {
	return time.ParseInLocation(timeLayout, strings.TrimSpace(s), time.UTC)
}

func readSeries(path string) (*Series, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = 2
	if _, err := r.Read(); err != nil {
		return nil, fmt.Errorf("cannot read the header: %w", err)
	}
	s := &Series{}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		ts, err := parseTime(rec[0])
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", len(s.Times)+2, err)
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rec[1]), 64)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", len(s.Times)+2, err)
		}
		s.Times = append(s.Times, ts)
		s.Values = append(s.Values, v)
	}
	return s, nil
}

// setWindows maps [start, end] timestamps to row indices; both must match
// rows. A start maps to the first row with its timestamp, an end to the last,
// searched linearly because timestamps need not be sorted.
func (s *Series) setWindows(ws [][2]string) error {
	for _, w := range ws {
		var idx [2]int
		for k, str := range w {
			ts, err := parseTime(str)
			if err != nil {
				return err
			}
			match := func(t time.Time) bool { return t.Equal(ts) }
			i := slices.IndexFunc(s.Times, match)
			if k == 1 {
				i = lastIndexFunc(s.Times, match)
			}
			if i < 0 {
				return fmt.Errorf("window edge %s matches no row", str)
			}
			idx[k] = i
		}
		if idx[1] < idx[0] || (len(s.Windows) > 0 && idx[0] <= s.Windows[len(s.Windows)-1].End) {
			return fmt.Errorf("window %v is reversed or overlaps the previous one", w)
		}
		s.Windows = append(s.Windows, Window{Start: idx[0], End: idx[1]})
	}
	return nil
}

// Label returns 1 for rows inside a window and 0 elsewhere.
func (s *Series) Label() []int {
	l := make([]int, len(s.Values))
	for _, w := range s.Windows {
		for i := w.Start; i <= w.End; i++ {
			l[i] = 1
		}
	}
	return l
}

func lastIndexFunc[T any](s []T, f func(T) bool) int {
	for i := len(s) - 1; i >= 0; i-- {
		if f(s[i]) {
			return i
		}
	}
	return -1
}

// Folds are the inner folds of a corpus: within each category, the files
// sorted by name, alternating, starting with the first in A.
var Folds = []string{"A", "B"}

// OtherFold returns the fold that is not f.
func OtherFold(f string) string {
	if f == "A" {
		return "B"
	}
	return "A"
}

// Fold returns the series of inner fold "A" or "B".
func (c *Corpus) Fold(fold string) (*Corpus, error) {
	var parity int
	switch fold {
	case "A":
	case "B":
		parity = 1
	default:
		return nil, fmt.Errorf("unknown fold %q (want A or B)", fold)
	}
	out := &Corpus{Dir: c.Dir, Churn: c.Churn}
	index := map[string]int{}    // position of the next file within its category
	for _, s := range c.Series { // sorted by path, so by name within a category
		if index[s.Category]%2 == parity {
			out.Series = append(out.Series, s)
		}
		index[s.Category]++
	}
	return out, nil
}
