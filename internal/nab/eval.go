package nab

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
)

// Mode says which detector output becomes a row's NAB anomaly score.
type Mode string

const (
	// ModeEvents scores a row with the detector's score when an anomaly
	// opens on it (an EventOpen, what alerting acts on) and 0 elsewhere.
	ModeEvents Mode = "events"
	// ModeScores scores every row with the detector's anomaly_score.
	ModeScores Mode = "scores"
)

// ParseMode parses "events" or "scores".
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case ModeEvents, ModeScores:
		return m, nil
	}
	return "", fmt.Errorf("unknown mode %q (want events or scores)", s)
}

// Detector is one detector configuration to evaluate.
type Detector struct {
	Name   string // results folder and file prefix, e.g. sentinel-mesh-lstm
	Config detector.Config
	Model  detector.Model
	Mode   Mode
}

// Output is what one detector produced over a corpus.
type Output struct {
	Detector     string
	ModelVersion string
	Mode         Mode
	Scores       [][]float64 // per series, per row; 0 while unscored
}

// seriesLabel names the label that carries a series' path.
const seriesLabel = "nab_file"

// eventSink records the score of every EventOpen of the current step.
type eventSink struct {
	mu     sync.Mutex
	byPath map[string]int
	opened []float64 // per series: score of the open in this step, or -1
}

func (s *eventSink) HandleEvents(evs []detector.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ev := range evs {
		if ev.Kind != detector.EventOpen {
			continue
		}
		if i, ok := s.byPath[ev.Labels.Get(seriesLabel)]; ok {
			s.opened[i] = ev.Score
		}
	}
}

// Run feeds every series through a fresh detector.Detector, one row per
// series per step in lockstep (append one row to every series, then Flush),
// and records each row's score. The model is not closed.
func Run(c *Corpus, d Detector) (*Output, error) {
	sink := &eventSink{byPath: map[string]int{}, opened: make([]float64, len(c.Series))}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	det, err := detector.New(d.Config, logger, prometheus.NewRegistry(), sink)
	if err != nil {
		return nil, fmt.Errorf("cannot create detector %s: %w", d.Name, err)
	}
	det.SetModel(d.Model)

	labels := make([]detector.Labels, len(c.Series))
	out := &Output{Detector: d.Name, ModelVersion: d.Model.Version(), Mode: d.Mode, Scores: make([][]float64, len(c.Series))}
	steps := 0
	for i, s := range c.Series {
		labels[i] = detector.FromStrings(detector.MetricNameLabel, "nab_value", seriesLabel, s.Path)
		sink.byPath[s.Path] = i
		out.Scores[i] = make([]float64, len(s.Values))
		steps = max(steps, len(s.Values))
	}
	// The detector drops a sample whose timestamp is not after the previous
	// one; NAB scores rows, so a repeated timestamp is fed 1 ms later.
	lastMs := make([]int64, len(c.Series))
	sample := make([]detector.Sample, 1)
	rowMs := make([]int64, len(c.Series)) // timestamp fed for the current step
	for step := 0; step < steps; step++ {
		for i := range sink.opened {
			sink.opened[i] = -1
		}
		for i, s := range c.Series {
			if step >= len(s.Values) {
				continue
			}
			ts := max(s.Times[step].UnixMilli(), lastMs[i]+1)
			lastMs[i], rowMs[i] = ts, ts
			sample[0] = detector.Sample{TimestampMs: ts, Value: s.Values[step]}
			if st := det.Append("nab", labels[i], sample); st.Accepted != 1 {
				return nil, fmt.Errorf("cannot append row %d of %s: %+v", step, s.Path, st)
			}
		}
		if err := det.Flush(); err != nil {
			return nil, fmt.Errorf("cannot score step %d: %w", step, err)
		}
		switch d.Mode {
		case ModeEvents:
			for i, sc := range sink.opened {
				if sc >= 0 && step < len(out.Scores[i]) {
					out.Scores[i][step] = sc
				}
			}
		default:
			det.Results(func(r *detector.Result) bool {
				i, ok := sink.byPath[r.Labels.Get(seriesLabel)]
				if ok && step < len(c.Series[i].Times) && r.TimestampMs == rowMs[i] && !math.IsNaN(r.Score) {
					out.Scores[i][step] = r.Score
				}
				return true
			})
		}
	}
	return out, nil
}

// Delay summarises how many rows after a window's start its first detection came.
type Delay struct {
	Detected int     `json:"windows_detected"`
	Windows  int     `json:"windows"`
	Mean     float64 `json:"mean_rows"`
	Median   float64 `json:"median_rows"`
}

// Report is the evaluation of one detector.
type Report struct {
	Detector     string  `json:"detector"`
	ModelVersion string  `json:"model_version"`
	Mode         Mode    `json:"mode"`
	Scores       []Score `json:"scores"`
	// At the standard profile's threshold:
	Delay                     Delay   `json:"detection_delay"`
	FalseAlarms               int     `json:"false_alarms"`
	FalseAlarmsPerSeriesDay   float64 `json:"false_alarms_per_series_day"`
	FalseAlarmThresholdSource string  `json:"false_alarm_threshold_profile"`
}

// Files returns the scorer's view of an output.
func (c *Corpus) Files(o *Output) []File {
	files := make([]File, len(c.Series))
	for i, s := range c.Series {
		files[i] = File{Name: s.Path, Scores: o.Scores[i], Windows: s.Windows}
	}
	return files
}

// Evaluate scores an output with every profile and measures detection delay
// and false alarms at the standard profile's threshold.
func Evaluate(c *Corpus, o *Output) Report {
	files := c.Files(o)
	r := Report{Detector: o.Detector, ModelVersion: o.ModelVersion, Mode: o.Mode, FalseAlarmThresholdSource: Standard.Name}
	for _, p := range Profiles {
		r.Scores = append(r.Scores, Optimise(files, p))
	}
	thr := r.Scores[0].Threshold
	var delays []float64
	var days float64
	for i, s := range c.Series {
		prob := ProbationLength(len(s.Values))
		if prob < len(s.Times) {
			days += s.Times[len(s.Times)-1].Sub(s.Times[prob]).Hours() / 24
		}
		label := s.Label()
		for j := prob; j < len(s.Values); j++ {
			if label[j] == 0 && o.Scores[i][j] >= thr {
				r.FalseAlarms++
			}
		}
		for _, w := range s.Windows {
			if w.End < prob {
				continue
			}
			r.Delay.Windows++
			for j := max(w.Start, prob); j <= w.End; j++ {
				if o.Scores[i][j] >= thr {
					delays = append(delays, float64(j-w.Start))
					break
				}
			}
		}
	}
	r.Delay.Detected = len(delays)
	if len(delays) > 0 {
		var sum float64
		for _, d := range delays {
			sum += d
		}
		r.Delay.Mean = sum / float64(len(delays))
		slices.Sort(delays)
		m := len(delays) / 2
		r.Delay.Median = delays[m]
		if len(delays)%2 == 0 {
			r.Delay.Median = (delays[m-1] + delays[m]) / 2
		}
	}
	if days > 0 {
		r.FalseAlarmsPerSeriesDay = float64(r.FalseAlarms) / days
	}
	return r
}

// WriteResults writes NAB results files:
// <dir>/<detector>/<category>/<detector>_<file>.csv with columns
// timestamp,value,anomaly_score,label.
func WriteResults(dir string, c *Corpus, o *Output) error {
	for i, s := range c.Series {
		d := filepath.Join(dir, o.Detector, filepath.FromSlash(s.Category))
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("cannot create results folder: %w", err)
		}
		path := filepath.Join(d, o.Detector+"_"+s.Name+".csv")
		if err := writeResultsFile(path, s, o.Scores[i]); err != nil {
			return fmt.Errorf("cannot write %s: %w", path, err)
		}
	}
	return nil
}

func writeResultsFile(path string, s *Series, scores []float64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	_ = w.Write([]string{"timestamp", "value", "anomaly_score", "label"})
	label := s.Label()
	for i := range s.Values {
		_ = w.Write([]string{
			s.Times[i].Format(timeLayout),
			strconv.FormatFloat(s.Values[i], 'g', -1, 64),
			strconv.FormatFloat(scores[i], 'g', 6, 64),
			strconv.Itoa(label[i]),
		})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// WriteJSON writes the reports as indented JSON.
func WriteJSON(path string, reports []Report) error {
	b, err := json.MarshalIndent(reports, "", "  ")
	if err != nil {
		return fmt.Errorf("cannot encode the scores: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("cannot write the scores: %w", err)
	}
	return nil
}

// Markdown renders the reports as a table.
func Markdown(reports []Report) string {
	var b strings.Builder
	b.WriteString("| detector | model | mode | standard | reward_low_FP_rate | reward_low_FN_rate | threshold (standard) | windows detected | delay mean / median (rows) | false alarms per series-day |\n")
	b.WriteString("|---|---|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range reports {
		fmt.Fprintf(&b, "| %s | %s | %s |", r.Detector, r.ModelVersion, r.Mode)
		for _, s := range r.Scores {
			fmt.Fprintf(&b, " %.1f |", s.Normalised)
		}
		fmt.Fprintf(&b, " %.3g | %d / %d | %.1f / %.1f | %.3f |\n",
			r.Scores[0].Threshold, r.Delay.Detected, r.Delay.Windows, r.Delay.Mean, r.Delay.Median, r.FalseAlarmsPerSeriesDay)
	}
	return b.String()
}

// Doc markers delimit the generated table in docs/detection.md.
const (
	DocBegin = "<!-- nab-eval:begin -->"
	DocEnd   = "<!-- nab-eval:end -->"
)

// UpdateDoc replaces the text between DocBegin and DocEnd in the file at path.
func UpdateDoc(path, table string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("cannot read %s: %w", path, err)
	}
	s := string(b)
	i, j := strings.Index(s, DocBegin), strings.Index(s, DocEnd)
	if i < 0 || j < i {
		return fmt.Errorf("cannot update %s: markers %s and %s not found", path, DocBegin, DocEnd)
	}
	s = s[:i+len(DocBegin)] + "\n" + table + s[j:]
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	return nil
}
