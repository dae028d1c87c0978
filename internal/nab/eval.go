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
	// Raw is every row's anomaly_score whatever the mode (0 while
	// unscored): what NAB's own run.py thresholds.
	Raw [][]float64
	// Causes is, per series and row, the cause of the anomaly that opened
	// on the row (detector.CauseUnknown elsewhere).
	Causes  [][]detector.Cause
	Dropped int // rows dropped for a timestamp not after the previous row's
}

// seriesLabel names the label that carries a series' path.
const seriesLabel = "nab_file"

// seriesLabels returns the labels a corpus file is fed with: its metric
// name (nab_value unless the series says), its path, and for a file named
// <category>/<instance>__<metric>.csv (the operations corpora's server
// metrics) job=<category> and instance=<instance>, the labels a scrape gives
// every metric of one target, so the detector sees which series belong to
// one entity (detector.entity_labels).
func seriesLabels(s *Series) detector.Labels {
	name := s.Metric
	if name == "" {
		name = "nab_value"
	}
	category, file := filepath.Split(s.Path)
	category = filepath.Base(filepath.Clean(category))
	if instance, _, ok := strings.Cut(strings.TrimSuffix(file, ".csv"), "__"); ok && instance != "" {
		return detector.FromStrings(detector.MetricNameLabel, name, seriesLabel, s.Path, "job", category, "instance", instance)
	}
	return detector.FromStrings(detector.MetricNameLabel, name, seriesLabel, s.Path)
}

// withPod gives a series' labels the pod and instance labels of its pod
// number pod, as a Kubernetes scrape gives a replaced pod's series; the
// series of one instance (a server's metrics) stay one entity per pod.
func withPod(ls detector.Labels, pod int64) detector.Labels {
	kv := make([]string, 0, 2*len(ls)+4)
	instance := "workload"
	for _, l := range ls {
		if l.Name == "instance" {
			instance = l.Value
		} else {
			kv = append(kv, l.Name, l.Value)
		}
	}
	id := strconv.FormatInt(pod, 10)
	kv = append(kv, "pod", instance+"-"+id, "instance", instance+"-"+id+":9100")
	return detector.FromStrings(kv...)
}

// eventSink records the score and cause of every EventOpen of the current
// step.
type eventSink struct {
	mu     sync.Mutex
	byPath map[string]int
	opened []float64 // per series: score of the open in this step, or -1
	causes []detector.Cause
}

func (s *eventSink) HandleEvents(evs []detector.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ev := range evs {
		if ev.Kind != detector.EventOpen {
			continue
		}
		if i, ok := s.byPath[ev.Labels.Get(seriesLabel)]; ok {
			s.opened[i], s.causes[i] = ev.Score, ev.Cause
		}
	}
}

// Run feeds every series through a fresh detector.Detector, one row per
// series per step in lockstep (append one row to every series, then Flush),
// and records each row's score. The model is not closed.
func Run(c *Corpus, d Detector) (*Output, error) {
	sink := &eventSink{byPath: map[string]int{}, opened: make([]float64, len(c.Series)), causes: make([]detector.Cause, len(c.Series))}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	det, err := detector.New(d.Config, logger, prometheus.NewRegistry(), sink)
	if err != nil {
		return nil, fmt.Errorf("cannot create detector %s: %w", d.Name, err)
	}
	det.SetModel(d.Model)

	labels := make([]detector.Labels, len(c.Series))
	out := &Output{Detector: d.Name, ModelVersion: d.Model.Version(), Mode: d.Mode, Scores: make([][]float64, len(c.Series)), Raw: make([][]float64, len(c.Series)), Causes: make([][]detector.Cause, len(c.Series))}
	steps := 0
	for i, s := range c.Series {
		labels[i] = seriesLabels(s)
		sink.byPath[s.Path] = i
		out.Scores[i] = make([]float64, len(s.Values))
		out.Raw[i] = make([]float64, len(s.Values))
		out.Causes[i] = make([]detector.Cause, len(s.Values))
		steps = max(steps, len(s.Values))
	}
	// A row whose timestamp is not after the series' previous one is dropped
	// by the detector, as the server drops it: scored 0 and counted.
	sample := make([]detector.Sample, 1)
	rowMs := make([]int64, len(c.Series)) // timestamp fed for the current step
	pods := make([]int64, len(c.Series))  // the current pod of each series (Churn)
	for step := 0; step < steps; step++ {
		for i := range sink.opened {
			sink.opened[i] = -1
		}
		for i, s := range c.Series {
			if step >= len(s.Values) {
				continue
			}
			rowMs[i] = s.Times[step].UnixMilli()
			if c.Churn > 0 {
				if pod := int64(s.Times[step].Sub(s.Times[0]) / c.Churn); step == 0 || pod != pods[i] {
					pods[i] = pod
					labels[i] = withPod(seriesLabels(s), pod)
				}
			}
			sample[0] = detector.Sample{TimestampMs: rowMs[i], Value: s.Values[step]}
			st := det.Append("nab", labels[i], sample)
			switch {
			case st.OutOfOrder == 1:
				out.Dropped++
				rowMs[i] = math.MinInt64 // matches no result
			case st.Accepted != 1:
				return nil, fmt.Errorf("cannot append row %d of %s: %+v", step, s.Path, st)
			}
		}
		if err := det.Flush(); err != nil {
			return nil, fmt.Errorf("cannot score step %d: %w", step, err)
		}
		det.Results(func(r *detector.Result) bool {
			i, ok := sink.byPath[r.Labels.Get(seriesLabel)]
			if ok && step < len(c.Series[i].Times) && r.TimestampMs == rowMs[i] && !math.IsNaN(r.Score) {
				out.Raw[i][step] = r.Score
			}
			return true
		})
		for i := range out.Scores {
			if step >= len(out.Scores[i]) {
				continue
			}
			switch {
			case d.Mode != ModeEvents:
				out.Scores[i][step] = out.Raw[i][step]
			case sink.opened[i] >= 0:
				out.Scores[i][step] = sink.opened[i]
			}
			if sink.opened[i] >= 0 {
				out.Causes[i][step] = sink.causes[i]
			}
		}
	}
	return out, nil
}

// WriteResults writes NAB results files:
// <dir>/<detector>/<category>/<detector>_<file>.csv with columns
// timestamp,value,anomaly_score,label, where anomaly_score is o.Scores (the
// mode's output), and the same under <detector>-scores/ with every row's
// anomaly_score (o.Raw): the files NAB's own run.py thresholds.
func WriteResults(dir string, c *Corpus, o *Output) error {
	for _, set := range []struct {
		name   string
		scores [][]float64
	}{{o.Detector, o.Scores}, {o.Detector + "-scores", o.Raw}} {
		for i, s := range c.Series {
			d := filepath.Join(dir, set.name, filepath.FromSlash(s.Category))
			if err := os.MkdirAll(d, 0o755); err != nil {
				return fmt.Errorf("cannot create results folder: %w", err)
			}
			path := filepath.Join(d, set.name+"_"+s.Name+".csv")
			if err := writeResultsFile(path, s, set.scores[i]); err != nil {
				return fmt.Errorf("cannot write %s: %w", path, err)
			}
		}
	}
	return nil
}

func writeResultsFile(path string, s *Series, scores []float64) error {
	return writeCSV(path, func(w *csv.Writer) {
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
	})
}

// writeCSV creates path and writes it with write; csv.Writer keeps its
// first error, which comes back here.
func writeCSV(path string, write func(*csv.Writer)) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	write(w)
	w.Flush()
	if err := w.Error(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// WriteJSON writes the reports as indented JSON.
func WriteJSON(path string, reports []*FoldReport) error {
	b, err := json.MarshalIndent(reports, "", "  ")
	if err != nil {
		return fmt.Errorf("cannot encode the scores: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("cannot write the scores: %w", err)
	}
	return nil
}

// Doc markers delimit the generated tables in docs/detection.md.
const (
	DocBegin          = "<!-- eval:begin -->"
	DocEnd            = "<!-- eval:end -->"
	AblationDocBegin  = "<!-- ablation:begin -->"
	AblationDocEnd    = "<!-- ablation:end -->"
	InjectedDocBegin  = "<!-- injected:begin -->"
	InjectedDocEnd    = "<!-- injected:end -->"
	CountersDocBegin  = "<!-- counters:begin -->"
	CountersDocEnd    = "<!-- counters:end -->"
	ChurnDocBegin     = "<!-- churn:begin -->"
	ChurnDocEnd       = "<!-- churn:end -->"
	HeavyDocBegin     = "<!-- heavy:begin -->"
	HeavyDocEnd       = "<!-- heavy:end -->"
	ThresholdDocBegin = "<!-- threshold:begin -->"
	ThresholdDocEnd   = "<!-- threshold:end -->"
)

// UpdateDocSection replaces the text between the markers begin and end in
// the file at path.
func UpdateDocSection(path, begin, end, text string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("cannot read %s: %w", path, err)
	}
	s := string(b)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		return fmt.Errorf("cannot update %s: markers %s and %s not found", path, begin, end)
	}
	s = s[:i+len(begin)] + "\n" + text + s[j:]
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	return nil
}
