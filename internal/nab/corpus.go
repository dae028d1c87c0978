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

// Series is one NAB data file. Timestamps never decrease but may repeat (a
// few NAB files repeat a timestamp around DST changes).
type Series struct {
	Path     string // relative to data/, e.g. realKnownCause/nyc_taxi.csv
	Category string // e.g. realKnownCause
	Name     string // file name without .csv, e.g. nyc_taxi
	Times    []time.Time
	Values   []float64
	Windows  []Window
}

// Corpus is every data file of a NAB-style folder.
type Corpus struct {
	Series []*Series // sorted by Path
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
	var c Corpus
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
		if n := len(s.Times); n > 0 && ts.Before(s.Times[n-1]) {
			return nil, fmt.Errorf("line %d: timestamp %s is before the previous row", n+2, rec[0])
		}
		s.Times = append(s.Times, ts)
		s.Values = append(s.Values, v)
	}
	return s, nil
}

// setWindows maps [start, end] timestamps to row indices; both must match rows.
func (s *Series) setWindows(ws [][2]string) error {
	for _, w := range ws {
		var idx [2]int
		for k, str := range w {
			ts, err := parseTime(str)
			if err != nil {
				return err
			}
			i, ok := slices.BinarySearchFunc(s.Times, ts, func(a, b time.Time) int { return a.Compare(b) })
			if !ok {
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
