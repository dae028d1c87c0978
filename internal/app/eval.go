package app

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"golang.org/x/sync/errgroup"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
	"github.com/sentinel-mesh/sentinel-mesh/detector/onnxmodel"
	"github.com/sentinel-mesh/sentinel-mesh/internal/config"
	"github.com/sentinel-mesh/sentinel-mesh/internal/nab"
)

func init() {
	Commands = append(Commands, Command{
		Name:  "eval",
		Help:  "Evaluate the detector on labelled corpora, both inner folds: eval --data <corpus> --out <dir>.",
		Setup: setupEval,
	})
}

// baselineWindow is the window of the windowed-Gaussian baseline: the same
// length as the embedded LSTM's, so both see the same history.
const baselineWindow = 32

type evalFlags struct {
	data       []string
	out        string
	models     []string
	configFile string
	docs       string
	ablation   bool
	noise      float64
	injected   int
	counters   int
	heavyTails int
	thresholds []float64
	churn      time.Duration
	churnTable bool
}

func setupEval(cmd *kingpin.CmdClause) func(ctx context.Context, stdout io.Writer) error {
	f := &evalFlags{}
	cmd.Flag("data", "Labelled corpus folder: data/<category>/<file>.csv and combined_windows.json. Repeatable; required unless --noise, --injected or --counters.").StringsVar(&f.data)
	cmd.Flag("out", "Folder for the NAB results files and scores.json.").Required().StringVar(&f.out)
	cmd.Flag("model", "Model to evaluate: embedded (the default model), baseline (window mean: detector.WindowMeanModel), a model directory, or crossfold:<dir> (<dir>/A, trained on fold A, scores fold B and <dir>/B fold A). Repeatable.").Default("embedded", "baseline").StringsVar(&f.models)
	cmd.Flag("config.file", "sentinel-mesh configuration file whose detector and model sections are used; empty uses the server defaults.").Default("").StringVar(&f.configFile)
	cmd.Flag("docs", "Markdown file whose generated tables (between "+nab.DocBegin+" and "+nab.DocEnd+") are replaced.").Default("").StringVar(&f.docs)
	cmd.Flag("noise", "Instead, count the anomalies each model opens on this many series-days of pure Gaussian noise sampled every 15 s (100 series).").Float64Var(&f.noise)
	cmd.Flag("injected", "Instead, measure detection power: this many series per kind of injected anomaly and base (flat or daily), at 15 s and at 5 minutes (docs: the injected-anomalies table).").IntVar(&f.injected)
	cmd.Flag("counters", "Instead, measure detection on Prometheus counters: this many request counters per kind of traffic anomaly over 5 days, at 15 s and 1 minute, scored on their rate (detector.counter_rate) and on their raw values (docs: the counters table).").IntVar(&f.counters)
	cmd.Flag("heavy-tails", "Instead, count the anomalies each model opens on this many series per kind of heavy-tailed noise (Student's t with 3 degrees of freedom, log-normal, Gaussian), every minute for 7 days, after day 2, each series its own target and as hosts of 5 (docs: the heavy-tails table).").IntVar(&f.heavyTails)
	cmd.Flag("churn", "Feed each --data series as a workload whose pod is replaced every this much sample time (new pod and instance labels: detector.churn_labels); 0 feeds each as one series.").DurationVar(&f.churn)
	cmd.Flag("churn-table", "Instead, the pod churn table: both --data corpora fed with a new pod every 7 days, 2 days and 1 day, started cold (churn_labels: []) and inheriting (the configuration's), for each --model (docs: the churn table).").BoolVar(&f.churnTable)
	cmd.Flag("threshold-sweep", "Instead, evaluate each model at each of these thresholds (detector.scoring.threshold; repeatable) on both folds of every --data corpus: event F1 and precision per fold (docs: the threshold table).").Float64ListVar(&f.thresholds)
	cmd.Flag("ablation", "Instead, evaluate the first model with each scoring term switched off and each constant moved (docs: the ablation table).").BoolVar(&f.ablation)
	return func(ctx context.Context, stdout io.Writer) error { return runEval(ctx, f, stdout) }
}

// runEval scores every model on both inner folds of every corpus: NAB with
// the threshold optimised on the fold itself and on the other fold
// (transfer), and event scoring at the configured threshold.
func runEval(ctx context.Context, f *evalFlags, stdout io.Writer) error {
	cfg, err := config.Load(f.configFile)
	if err != nil {
		return fmt.Errorf("cannot load the configuration: %w", err)
	}
	if err := os.MkdirAll(f.out, 0o755); err != nil {
		return fmt.Errorf("cannot create %s: %w", f.out, err)
	}
	if f.noise > 0 {
		return runNoise(f, cfg, stdout)
	}
	if f.injected > 0 {
		return runInjected(ctx, f, cfg, stdout)
	}
	if f.counters > 0 {
		return runCounters(ctx, f, cfg, stdout)
	}
	if f.heavyTails > 0 {
		return runHeavyTails(ctx, f, cfg, stdout)
	}
	if len(f.data) == 0 {
		return fmt.Errorf("--data is required unless --noise, --injected, --counters or --heavy-tails is given")
	}
	if f.ablation {
		table, err := runAblation(ctx, f.data, f.models[0], cfg, stdout)
		if err != nil {
			return err
		}
		return f.publish(stdout, nab.AblationDocBegin, nab.AblationDocEnd, table)
	}
	if f.churnTable {
		return runChurnTable(ctx, f, cfg, stdout)
	}
	if len(f.thresholds) > 0 {
		table, err := runThresholdSweep(ctx, f.data, f.models, f.thresholds, cfg, stdout)
		if err != nil {
			return err
		}
		return f.publish(stdout, nab.ThresholdDocBegin, nab.ThresholdDocEnd, table)
	}
	if f.churn > 0 && f.docs != "" {
		return fmt.Errorf("--churn does not update --docs: the tables there are without churn")
	}
	reports, err := evalFolds(ctx, f.data, f.models, cfg.Detector, cfg.Model, f.out, f.churn, stdout)
	if err != nil {
		return err
	}
	if err := nab.WriteJSON(filepath.Join(f.out, "scores.json"), reports); err != nil {
		return err
	}
	tables := nab.WorstMarkdown(nab.WorstFolds(reports)) + "\n" + nab.FoldMarkdown(reports) + "\n" + nab.CauseMarkdown(reports)
	margins, err := nab.Margins(reports, baselineName, nab.BootstrapResamples, bootstrapSeed)
	if err != nil {
		return err
	}
	if len(margins) > 0 {
		tables += "\n" + nab.MarginMarkdown(margins)
	}
	tables += "\n" + nab.RuleMarkdown(reports)
	return f.publish(stdout, nab.DocBegin, nab.DocEnd, tables)
}

// publish prints a generated table and, with --docs, replaces the section
// between the markers begin and end of that file with it.
func (f *evalFlags) publish(stdout io.Writer, begin, end, table string) error {
	if f.docs != "" {
		if err := nab.UpdateDocSection(f.docs, begin, end, table); err != nil {
			return err
		}
	}
	fmt.Fprint(stdout, table)
	return nil
}

// evalFolds runs each model on both folds of each corpus, the two folds
// concurrently. With out set, NAB results files go to out/<corpus>/.
func evalFolds(ctx context.Context, dirs, models []string, dcfg detector.Config, mcfg config.ModelConfig, out string, churn time.Duration, stdout io.Writer) ([]*nab.FoldReport, error) {
	var reports []*nab.FoldReport
	for _, dir := range dirs {
		corpus, err := nab.LoadCorpus(dir)
		if err != nil {
			return nil, err
		}
		corpus.Churn = churn
		name := nab.CorpusName(dir)
		fmt.Fprintf(stdout, "corpus %s: %d files, %d rows, %d labelled windows\n", name, len(corpus.Series), corpus.Rows(), corpus.Windows())
		for _, spec := range models {
			var pair [2]*nab.FoldReport
			var g errgroup.Group
			for i, fold := range nab.Folds {
				g.Go(func() error {
					if err := ctx.Err(); err != nil {
						return err
					}
					c, err := corpus.Fold(fold)
					if err != nil {
						return err
					}
					o, err := runModel(c, spec, fold, dcfg, mcfg)
					if err != nil {
						return err
					}
					if out != "" {
						if err := nab.WriteResults(filepath.Join(out, name), c, o); err != nil {
							return err
						}
						// Which incidents were found and which pages were wrong.
						report := filepath.Join(out, name, o.Detector+"_events_fold"+fold+".csv")
						if err := nab.WriteEventRecords(report, nab.EventRecords(c, o)); err != nil {
							return err
						}
					}
					pair[i] = nab.EvaluateFold(name, fold, c, o)
					return nil
				})
			}
			if err := g.Wait(); err != nil {
				return nil, err
			}
			nab.SetTransfer(pair[0], pair[1])
			for _, r := range pair {
				fmt.Fprintf(stdout, "%s fold %s %s: NAB on scores transfer %.1f / %.1f / %.1f, NAB on opens transfer %.1f / %.1f / %.1f, events P %.2f R %.2f F1 %.2f, %d rows dropped\n",
					name, r.Fold, r.Detector, r.ScoresTransfer[0].Normalised, r.ScoresTransfer[1].Normalised, r.ScoresTransfer[2].Normalised,
					r.Transfer[0].Normalised, r.Transfer[1].Normalised, r.Transfer[2].Normalised,
					r.Events.Precision, r.Events.Recall, r.Events.F1, r.Dropped)
			}
			reports = append(reports, pair[:]...)
		}
	}
	return reports, nil
}

// baselineName is the window-mean baseline's detector name in reports.
const baselineName = "window-mean-baseline"

// bootstrapSeed fixes the margins' resamples, so `make eval` is reproducible.
const bootstrapSeed = 12

// crossfoldPrefix names a pair of models trained on the inner folds:
// crossfold:<dir> scores fold A with <dir>/B and fold B with <dir>/A, so no
// series is scored by a model that learned it.
const crossfoldPrefix = "crossfold:"

// evalDetector builds the detector named on the command line for a fold
// with the server's detector configuration.
func evalDetector(spec, fold string, dcfg detector.Config, mcfg config.ModelConfig) (nab.Detector, error) {
	opts := onnxmodel.Options{LibraryPath: mcfg.RuntimeLibrary, IntraOpThreads: mcfg.IntraOpThreads}
	d := nab.Detector{Config: dcfg}
	switch {
	case spec == "embedded":
		m, err := onnxmodel.LoadDefault(opts)
		if err != nil {
			return d, err
		}
		d.Name, d.Model = "sentinel-mesh-default", m
	case spec == "baseline":
		d.Name, d.Model = baselineName, detector.WindowMeanModel{W: baselineWindow}
	default:
		dir, crossfold := strings.CutPrefix(spec, crossfoldPrefix)
		name := strings.ReplaceAll(filepath.Base(filepath.Clean(dir)), "_", "-")
		if crossfold {
			dir = filepath.Join(dir, nab.OtherFold(fold))
			name += "-crossfold"
		}
		m, err := onnxmodel.Load(dir, opts)
		if err != nil {
			return d, err
		}
		d.Name, d.Model = name, m
	}
	return d, nil
}

// runNoise counts the anomalies opened on pure noise: 100 series of
// f.noise/100 days each, every 15 s.
func runNoise(f *evalFlags, cfg *config.Config, stdout io.Writer) error {
	const series = 100
	c := nab.NoiseCorpus(series, f.noise/series, 15*time.Second, 1)
	for _, spec := range f.models {
		name, opens, err := countOpens(c, spec, cfg.Detector, cfg.Model, 0)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "noise: %s opened %d anomalies in %g series-days (Gaussian noise 100 ± 3, every 15 s, %d series, each its own target)\n", name, opens, f.noise, series)
	}
	return nil
}

// injectedSteps are the scrape intervals of the injected-anomalies table:
// Prometheus' default, and the dev corpora's.
var injectedSteps = []time.Duration{15 * time.Second, 5 * time.Minute}

// runInjected scores every model on series with injected anomalies at
// each of injectedSteps, the runs concurrently.
func runInjected(ctx context.Context, f *evalFlags, cfg *config.Config, stdout io.Writer) error {
	type run struct {
		spec string
		step time.Duration
	}
	var runs []run
	for _, spec := range f.models {
		for _, step := range injectedSteps {
			runs = append(runs, run{spec, step})
		}
	}
	cols := make([]string, len(runs))
	results := make([][]nab.InjectedResult, len(runs))
	falseAlarms := make([][]float64, len(runs))
	var g errgroup.Group
	for i, r := range runs {
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				return err
			}
			c := nab.InjectedCorpus(f.injected, r.step, 1)
			o, err := runModel(c, r.spec, "A", cfg.Detector, cfg.Model)
			if err != nil {
				return err
			}
			cols[i] = fmt.Sprintf("%s, every %s", o.Detector, nab.DurationText(r.step))
			results[i] = nab.ScoreInjected(c, o, r.step)
			falseAlarms[i] = nab.InjectedFalseAlarms(c, o, r.step)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	table := nab.InjectedMarkdown(cols, results, falseAlarms) + "\n" + nab.InjectedCauseMarkdown(cols, results)
	return f.publish(stdout, nab.InjectedDocBegin, nab.InjectedDocEnd, table)
}

// The heavy-tails table: a minute is where server metrics are often
// scraped and where these tails showed (docs/detection.md, known
// weaknesses); the first two days are the learning period and the tails'
// first day.
const (
	heavyTailStep = time.Minute
	heavyTailDays = 7
	heavyTailSkip = 48 * time.Hour
	heavyTailHost = 5
)

// runHeavyTails counts, for each kind of noise and model, the anomalies
// opened after heavyTailSkip, each series its own target and grouped into
// hosts; the runs go concurrently.
func runHeavyTails(ctx context.Context, f *evalFlags, cfg *config.Config, stdout io.Writer) error {
	results := make([]nab.HeavyTailResult, len(nab.HeavyTailKinds)*len(f.models))
	var g errgroup.Group
	g.SetLimit(runtime.GOMAXPROCS(0))
	for k, kind := range nab.HeavyTailKinds {
		for m, spec := range f.models {
			r := &results[k*len(f.models)+m]
			r.Kind = kind
			r.SeriesDays = float64(f.heavyTails) * (heavyTailDays - heavyTailSkip.Hours()/24)
			for _, hostSize := range []int{0, heavyTailHost} {
				g.Go(func() error {
					if err := ctx.Err(); err != nil {
						return err
					}
					c, err := nab.HeavyTailCorpus(kind, f.heavyTails, heavyTailDays, heavyTailStep, hostSize, 3)
					if err != nil {
						return err
					}
					name, opens, err := countOpens(c, spec, cfg.Detector, cfg.Model, heavyTailSkip)
					if err != nil {
						return err
					}
					if hostSize == 0 {
						r.Detector, r.Opens = name, opens
					} else {
						r.HostOpens = opens
					}
					return nil
				})
			}
		}
	}
	if err := g.Wait(); err != nil {
		return err
	}
	table := nab.HeavyTailMarkdown(heavyTailStep, heavyTailHost, results)
	return f.publish(stdout, nab.HeavyDocBegin, nab.HeavyDocEnd, table)
}

// counterSteps are the scrape intervals of the counters table.
var counterSteps = []time.Duration{15 * time.Second, time.Minute}

// runCounters scores the first model on CounterCorpus at each of
// counterSteps, on counters' rates and on their raw values, the runs
// concurrently.
func runCounters(ctx context.Context, f *evalFlags, cfg *config.Config, stdout io.Writer) error {
	type run struct {
		step time.Duration
		rate bool
	}
	var runs []run
	for _, step := range counterSteps {
		runs = append(runs, run{step, true}, run{step, false})
	}
	cols := make([]string, len(runs))
	results := make([]nab.CounterResult, len(runs))
	var g errgroup.Group
	for i, r := range runs {
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				return err
			}
			c := nab.CounterCorpus(f.counters, 5, r.step, 9)
			dcfg := cfg.Detector
			dcfg.CounterRate = r.rate
			o, err := runModel(c, f.models[0], "A", dcfg, cfg.Model)
			if err != nil {
				return err
			}
			scored := "raw values (`counter_rate: false`)"
			if r.rate {
				scored = "the rate (`counter_rate: true`)"
			}
			cols[i] = fmt.Sprintf("every %s, %s, %s", nab.DurationText(r.step), o.Detector, scored)
			results[i] = nab.ScoreCounters(c, o, r.step)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	table := nab.CounterMarkdown(cols, results)
	return f.publish(stdout, nab.CountersDocBegin, nab.CountersDocEnd, table)
}

// runModel scores corpus c in event mode with the detector named by spec
// for fold (evalDetector) and closes its model.
func runModel(c *nab.Corpus, spec, fold string, dcfg detector.Config, mcfg config.ModelConfig) (*nab.Output, error) {
	det, err := evalDetector(spec, fold, dcfg, mcfg)
	if err != nil {
		return nil, err
	}
	det.Mode = nab.ModeEvents
	o, err := nab.Run(c, det)
	if closeErr := det.Model.Close(); err == nil && closeErr != nil {
		err = fmt.Errorf("cannot close model %s: %w", spec, closeErr)
	}
	return o, err
}

// countOpens runs model spec on an unlabelled corpus c and counts the
// anomalies it opens after each series' first skip of time.
func countOpens(c *nab.Corpus, spec string, dcfg detector.Config, mcfg config.ModelConfig, skip time.Duration) (name string, opens int, err error) {
	o, err := runModel(c, spec, "A", dcfg, mcfg)
	if err != nil {
		return "", 0, err
	}
	for k, s := range c.Series {
		opens += nab.OpensAfter(s, o.Scores[k], skip)
	}
	return o.Detector, opens, nil
}

// churnPeriods are the pod lifetimes of the churn table.
var churnPeriods = []time.Duration{7 * 24 * time.Hour, 48 * time.Hour, 24 * time.Hour}

// runChurnTable scores the --data corpora fed as workloads whose pods are
// replaced (nab.Corpus.Churn) at each of churnPeriods, with every series
// started cold and inheriting its predecessor's calibration (the
// configuration's detector.churn_labels), for every model.
func runChurnTable(ctx context.Context, f *evalFlags, cfg *config.Config, stdout io.Writer) error {
	if len(cfg.Detector.ChurnLabels) == 0 {
		return fmt.Errorf("--churn-table compares inheriting with cold starts: detector.churn_labels is empty")
	}
	var rows []nab.ChurnRow
	for _, period := range churnPeriods {
		for _, inherit := range []bool{false, true} {
			dcfg := cfg.Detector
			if !inherit {
				dcfg.ChurnLabels = nil
			}
			reports, err := evalFolds(ctx, f.data, f.models, dcfg, cfg.Model, "", period, io.Discard)
			if err != nil {
				return err
			}
			rows = append(rows, nab.ChurnRows(period, inherit, reports)...)
			fmt.Fprintf(stdout, "churn %s, inherit %t: done\n", period, inherit)
		}
	}
	table := nab.ChurnMarkdown(rows)
	return f.publish(stdout, nab.ChurnDocBegin, nab.ChurnDocEnd, table)
}
