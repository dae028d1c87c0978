package app

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/common/version"

	"github.com/sentinel-mesh/sentinel-mesh/internal/config"
)

// Command is a subcommand besides the default "serve"; packages register
// theirs in init-free code by appending to Commands before Main runs.
type Command struct {
	Name, Help string
	// Setup registers the command's flags and returns the function that runs it.
	Setup func(cmd *kingpin.CmdClause) func(ctx context.Context, stdout io.Writer) error
}

// Commands are the extra subcommands (e.g. eval).
var Commands []Command

// Main parses args and runs the chosen command; it returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	a := kingpin.New("sentinel-mesh", "Anomaly detection for Prometheus remote-write: scores every series with an LSTM and publishes anomaly_score.")
	a.Version(version.Print("sentinel-mesh"))
	a.HelpFlag.Short('h')
	a.UsageWriter(stderr)
	a.ErrorWriter(stderr)

	serve := a.Command("serve", "Run the server (default).").Default()
	configFile := serve.Flag("config.file", "sentinel-mesh configuration file; empty runs on the embedded defaults.").Default("").String()
	var opts Options
	serve.Flag("web.listen-address", "Address to listen on for remote-write, the API and /metrics.").Default(":9464").StringVar(&opts.ListenAddress)
	serve.Flag("web.config.file", "exporter-toolkit web configuration file (TLS, basic auth).").Default("").StringVar(&opts.WebConfigFile)
	serve.Flag("storage.path", "Directory for local state (checkpoints of series state and anomalies, see docs/operations.md); empty disables persistence.").Default("data/").StringVar(&opts.StoragePath)
	serve.Flag("storage.checkpoint-interval", "Time between checkpoints, the most state a crash can lose.").Default("5m").DurationVar(&opts.CheckpointInterval)
	serve.Flag("target", "Which part to run: all (in one process, Kafka optional), receiver (remote-write to Kafka) or detector (Kafka to scores). See docs/kafka.md.").Default(TargetAll).EnumVar(&opts.Target, TargetAll, TargetReceiver, TargetDetector)
	modelDir := serve.Flag("model.dir", "Model directory (model.onnx + model.json), watched for new versions; overrides model.dir in the config file. Empty uses the embedded model.").Default("").String()

	logCfg := &promslog.Config{}
	promslogflag.AddFlags(a, logCfg)

	runners := map[string]func(ctx context.Context, stdout io.Writer) error{}
	for _, c := range Commands {
		cmd := a.Command(c.Name, c.Help)
		runners[cmd.FullCommand()] = c.Setup(cmd)
	}

	chosen, err := a.Parse(args)
	if err != nil {
		fmt.Fprintf(stderr, "sentinel-mesh: %v\n", err)
		return 2
	}
	logger := promslog.New(logCfg)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if r, ok := runners[chosen]; ok {
		if err := r(ctx, stdout); err != nil {
			logger.Error("command failed", "command", chosen, "err", err)
			return 1
		}
		return 0
	}

	cfg, err := config.Load(*configFile)
	if err != nil {
		logger.Error("invalid configuration", "err", err)
		return 1
	}
	if *modelDir != "" {
		cfg.Model.Dir = *modelDir
	}
	logger.Info("starting sentinel-mesh", "version", version.Info(), "build_context", version.BuildContext())
	app, err := New(cfg, opts, logger)
	if err != nil {
		logger.Error("cannot start", "err", err)
		return 1
	}
	if err := app.Run(ctx); err != nil {
		logger.Error("stopped with error", "err", err)
		return 1
	}
	logger.Info("stopped")
	return 0
}
