package app

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/alecthomas/kingpin/v2"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
	"github.com/sentinel-mesh/sentinel-mesh/detector/onnxmodel"
	"github.com/sentinel-mesh/sentinel-mesh/internal/config"
	"github.com/sentinel-mesh/sentinel-mesh/internal/nab"
)

func init() {
	Commands = append(Commands, Command{
		Name:  "eval",
		Help:  "Evaluate the detector on a benchmark: eval nab --data <NAB folder> --out <dir>.",
		Setup: setupEval,
	})
}

// baselineWindow is the window of the windowed-Gaussian baseline: the same
// length as the embedded LSTM's, so both see the same history.
const baselineWindow = 32

type evalFlags struct {
	benchmark  string
	data, out  string
	models     []string
	mode       string
	configFile string
	docs       string
}

func setupEval(cmd *kingpin.CmdClause) func(ctx context.Context, stdout io.Writer) error {
	f := &evalFlags{}
	cmd.Arg("benchmark", "Benchmark to run; only nab is known.").Required().EnumVar(&f.benchmark, "nab")
	cmd.Flag("data", "NAB-style folder: data/<category>/<file>.csv and combined_windows.json.").Required().StringVar(&f.data)
	cmd.Flag("out", "Folder for the results files, scores.json and scores.md.").Required().StringVar(&f.out)
	cmd.Flag("model", "Model to evaluate: embedded (the default LSTM), baseline (windowed Gaussian: detector.WindowMeanModel) or a model directory. Repeatable.").Default("embedded", "baseline").StringsVar(&f.models)
	cmd.Flag("mode", "Row score given to NAB: events (the score of the row where an anomaly opens, 0 elsewhere: what alerts see) or scores (every row's anomaly_score).").Default(string(nab.ModeEvents)).EnumVar(&f.mode, string(nab.ModeEvents), string(nab.ModeScores))
	cmd.Flag("config.file", "sentinel-mesh configuration file whose detector and model sections are used; empty uses the server defaults.").Default("").StringVar(&f.configFile)
	cmd.Flag("docs", "Markdown file whose generated table (between "+nab.DocBegin+" and "+nab.DocEnd+") is replaced with the scores.").Default("").StringVar(&f.docs)
	return func(ctx context.Context, stdout io.Writer) error { return runEval(ctx, f, stdout) }
}

func runEval(ctx context.Context, f *evalFlags, stdout io.Writer) error {
	cfg, err := config.Load(f.configFile)
	if err != nil {
		return fmt.Errorf("cannot load the configuration: %w", err)
	}
	corpus, err := nab.LoadCorpus(f.data)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "corpus %s: %d files, %d rows, %d windows\n", f.data, len(corpus.Series), corpus.Rows(), corpus.Windows())
	mode, err := nab.ParseMode(f.mode)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(f.out, 0o755); err != nil {
		return fmt.Errorf("cannot create %s: %w", f.out, err)
	}
	var reports []nab.Report
	for _, name := range f.models {
		if err := ctx.Err(); err != nil {
			return err
		}
		det, err := evalDetector(name, cfg)
		if err != nil {
			return err
		}
		det.Mode = mode
		out, err := nab.Run(corpus, det)
		closeErr := det.Model.Close()
		if err != nil {
			return err
		}
		if closeErr != nil {
			return fmt.Errorf("cannot close model %s: %w", name, closeErr)
		}
		if err := nab.WriteResults(f.out, corpus, out); err != nil {
			return err
		}
		r := nab.Evaluate(corpus, out)
		reports = append(reports, r)
		fmt.Fprintf(stdout, "%s (%s): standard %.1f, reward_low_FP_rate %.1f, reward_low_FN_rate %.1f\n",
			r.Detector, r.ModelVersion, r.Scores[0].Normalised, r.Scores[1].Normalised, r.Scores[2].Normalised)
	}
	if err := nab.WriteJSON(filepath.Join(f.out, "scores.json"), reports); err != nil {
		return err
	}
	table := nab.Markdown(reports)
	if err := os.WriteFile(filepath.Join(f.out, "scores.md"), []byte(table), 0o644); err != nil {
		return fmt.Errorf("cannot write scores.md: %w", err)
	}
	if f.docs != "" {
		if err := nab.UpdateDoc(f.docs, table); err != nil {
			return err
		}
	}
	fmt.Fprint(stdout, table)
	return nil
}

// evalDetector builds the detector named on the command line with the
// server's detector configuration.
func evalDetector(name string, cfg *config.Config) (nab.Detector, error) {
	opts := onnxmodel.Options{LibraryPath: cfg.Model.RuntimeLibrary, IntraOpThreads: cfg.Model.IntraOpThreads}
	d := nab.Detector{Config: cfg.Detector}
	switch name {
	case "embedded":
		m, err := onnxmodel.LoadDefault(opts)
		if err != nil {
			return d, err
		}
		d.Name, d.Model = "sentinel-mesh-lstm", m
	case "baseline":
		d.Name, d.Model = "sentinel-mesh-baseline", detector.WindowMeanModel{W: baselineWindow}
	default:
		m, err := onnxmodel.Load(name, opts)
		if err != nil {
			return d, err
		}
		d.Name, d.Model = "sentinel-mesh-"+strings.ReplaceAll(filepath.Base(filepath.Clean(name)), "_", "-"), m
	}
	return d, nil
}
