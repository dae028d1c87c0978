package app

import (
	"context"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
	"github.com/sentinel-mesh/sentinel-mesh/internal/config"
	"github.com/sentinel-mesh/sentinel-mesh/internal/nab"
)

// ablation is one change to the detector configuration (or model) whose
// effect the ablation table shows.
type ablation struct {
	name  string
	model string // "" keeps the evaluated model
	apply func(*detector.ScoringConfig)
}

// ablations switches each scoring term off and moves each constant by
// ±50 % (the threshold by ±25 %: 1.5 × 0.7 is past the score's range).
func ablations() []ablation {
	scale := func(name string, get func(*detector.ScoringConfig) *float64) []ablation {
		var out []ablation
		for _, f := range []float64{0.5, 1.5} {
			out = append(out, ablation{name: fmt.Sprintf("%s × %g", name, f), apply: func(c *detector.ScoringConfig) { *get(c) *= f }})
		}
		return out
	}
	scaleInt := func(name string, get func(*detector.ScoringConfig) *int) []ablation {
		var out []ablation
		for _, f := range []float64{0.5, 1.5} {
			out = append(out, ablation{name: fmt.Sprintf("%s × %g", name, f), apply: func(c *detector.ScoringConfig) {
				*get(c) = int(math.Round(float64(*get(c)) * f))
			}})
		}
		return out
	}
	scaleDuration := func(name string, get func(*detector.ScoringConfig) *model.Duration) []ablation {
		var out []ablation
		for _, f := range []float64{0.5, 1.5} {
			out = append(out, ablation{name: fmt.Sprintf("%s × %g", name, f), apply: func(c *detector.ScoringConfig) {
				*get(c) = model.Duration(float64(*get(c)) * f)
			}})
		}
		return out
	}
	as := []ablation{
		{name: "window-mean model instead of the LSTM", model: "baseline"},
		{name: "seasonal forecast on", apply: func(c *detector.ScoringConfig) { c.DailyProfileForecast = true }},
		{name: "seasonal error scale off", apply: func(c *detector.ScoringConfig) { c.SeasonalScale = false }},
		{name: "seasonal point term off", apply: func(c *detector.ScoringConfig) { c.SeasonalPoint = false }},
		{name: "daily profile off (all seasonal parts)", apply: func(c *detector.ScoringConfig) { c.DailyProfileRatio = 0 }},
		{name: "transition tolerance off (seasonal point term from the interpolated profile)", apply: func(c *detector.ScoringConfig) { c.TransitionSpread = 0 }},
		{name: "robust updates off", apply: func(c *detector.ScoringConfig) { c.RobustUpdates = false }},
		{name: "level term off (and range, daily level)", apply: func(c *detector.ScoringConfig) { c.LevelWindow = 0 }},
		{name: "range term off (and the in-range error cap)", apply: func(c *detector.ScoringConfig) { c.RangeSurprise = 0 }},
		{name: "range term also on a record prediction error", apply: func(c *detector.ScoringConfig) { c.RangeWithErrorRecord = true }},
		{name: "in-range error cap off", apply: func(c *detector.ScoringConfig) { c.InRangeErrorCap = false }},
		{name: "in-range error excess off (a hard cap)", apply: func(c *detector.ScoringConfig) { c.InRangeErrorExcess = 0 }},
		{name: "in-range error excess × 0.5", apply: func(c *detector.ScoringConfig) { c.InRangeErrorExcess *= 0.5 }},
		{name: "in-range error excess × 1.5", apply: func(c *detector.ScoringConfig) { c.InRangeErrorExcess *= 1.5 }},
		{name: "empirical tails off", apply: func(c *detector.ScoringConfig) { c.EmpiricalTail = 0 }},
		{name: "variance-drop term on (window 5, margin 4)", apply: func(c *detector.ScoringConfig) { c.VarianceWindow = 5 }},
		{name: "threshold × 0.75", apply: func(c *detector.ScoringConfig) { c.Threshold *= 0.75 }},
		{name: "threshold × 1.25", apply: func(c *detector.ScoringConfig) { c.Threshold = min(c.Threshold*1.25, 1) }},
		{name: "p_floor exponent × 0.5", apply: func(c *detector.ScoringConfig) { c.PFloor = math.Pow(c.PFloor, 0.5) }},
		{name: "p_floor exponent × 1.5", apply: func(c *detector.ScoringConfig) { c.PFloor = math.Pow(c.PFloor, 1.5) }},
		{name: "reference interval off (every series scored per sample)", apply: func(c *detector.ScoringConfig) { c.ReferenceInterval = 0 }},
		{name: "point window off (seasonal point term per sample)", apply: func(c *detector.ScoringConfig) { c.PointWindow = 0 }},
		{name: "corroboration off", apply: func(c *detector.ScoringConfig) { c.CorroborationLift = 0 }},
		{name: "learning period off (scored after warm-up)", apply: func(c *detector.ScoringConfig) { c.LearningPeriod = 0 }},
	}
	as = append(as, scaleInt("long_window", func(c *detector.ScoringConfig) *int { return &c.LongWindow })...)
	as = append(as, scaleInt("level_window", func(c *detector.ScoringConfig) *int { return &c.LevelWindow })...)
	as = append(as, scaleInt("warmup_samples", func(c *detector.ScoringConfig) *int { return &c.WarmupSamples })...)
	as = append(as, scale("empirical_tail", func(c *detector.ScoringConfig) *float64 { return &c.EmpiricalTail })...)
	as = append(as, scale("range_surprise", func(c *detector.ScoringConfig) *float64 { return &c.RangeSurprise })...)
	as = append(as, scale("range_margin", func(c *detector.ScoringConfig) *float64 { return &c.RangeMargin })...)
	as = append(as, scale("corroboration_lift", func(c *detector.ScoringConfig) *float64 { return &c.CorroborationLift })...)
	as = append(as, scale("transition_spread", func(c *detector.ScoringConfig) *float64 { return &c.TransitionSpread })...)
	as = append(as, scale("daily_profile_ratio", func(c *detector.ScoringConfig) *float64 { return &c.DailyProfileRatio })...)
	as = append(as, scaleDuration("reference_interval", func(c *detector.ScoringConfig) *model.Duration { return &c.ReferenceInterval })...)
	as = append(as, scaleDuration("point_window", func(c *detector.ScoringConfig) *model.Duration { return &c.PointWindow })...)
	as = append(as, scaleDuration("learning_period", func(c *detector.ScoringConfig) *model.Duration { return &c.LearningPeriod })...)
	return as
}

// runAblation evaluates model with the configuration and each ablation on
// both folds of every corpus and renders one row per variant: event F1 per
// fold and the worse fold's precision and NAB transfer (standard) per corpus.
func runAblation(ctx context.Context, dirs []string, model string, cfg *config.Config, stdout io.Writer) (string, error) {
	type variant struct {
		name  string
		model string
		det   detector.Config
	}
	variants := []variant{{"default configuration", model, cfg.Detector}}
	for _, a := range ablations() {
		v := variant{a.name, model, cfg.Detector}
		if a.model != "" {
			v.model = a.model
		}
		if a.apply != nil {
			a.apply(&v.det.Scoring)
		}
		variants = append(variants, v)
	}
	var b strings.Builder
	b.WriteString("| variant |")
	for _, d := range dirs {
		name := nab.CorpusName(d)
		fmt.Fprintf(&b, " %s F1 A / B | %s precision (worse) | %s NAB on scores, transfer standard (worse) | %s NAB on opens, transfer standard (worse) |", name, name, name, name)
	}
	b.WriteString(" noise at 15 s: opens in 200 series-days | daily events at 15 s: opens after day 2 (30 series-days) |")
	b.WriteString("\n|---|")
	b.WriteString(strings.Repeat("---:|---:|---:|---:|", len(dirs)))
	b.WriteString("---:|---:|\n")
	// Fast scrapes: the dev corpora are sampled every 5 minutes or more
	// slowly, so what scoring does to a 15 s series shows only here.
	noise := nab.NoiseCorpus(100, 2, 15*time.Second, 1)
	periodic := nab.PeriodicCorpus(2, 7, 15*time.Second, 7)
	for _, v := range variants {
		if err := v.det.Validate(); err != nil {
			return "", fmt.Errorf("ablation %q: %w", v.name, err)
		}
		reports, err := evalFolds(ctx, dirs, []string{v.model}, v.det, cfg.Model, "", 0, io.Discard)
		if err != nil {
			return "", fmt.Errorf("ablation %q: %w", v.name, err)
		}
		fmt.Fprintf(&b, "| %s |", v.name)
		for i := 0; i+1 < len(reports); i += 2 {
			a, bb := reports[i], reports[i+1]
			fmt.Fprintf(&b, " %.2f / %.2f | %.2f | %.1f | %.1f |", a.Events.F1, bb.Events.F1,
				min(a.Events.Precision, bb.Events.Precision),
				min(a.ScoresTransfer[0].Normalised, bb.ScoresTransfer[0].Normalised),
				min(a.Transfer[0].Normalised, bb.Transfer[0].Normalised))
		}
		_, noiseOpens, err := countOpens(noise, v.model, v.det, cfg.Model, 0)
		if err != nil {
			return "", fmt.Errorf("ablation %q: %w", v.name, err)
		}
		_, periodicOpens, err := countOpens(periodic, v.model, v.det, cfg.Model, 48*time.Hour)
		if err != nil {
			return "", fmt.Errorf("ablation %q: %w", v.name, err)
		}
		fmt.Fprintf(&b, " %d | %d |", noiseOpens, periodicOpens)
		b.WriteString("\n")
		fmt.Fprintf(stdout, "ablation %q done\n", v.name)
	}
	return b.String(), nil
}

// runThresholdSweep evaluates each model at each threshold on both folds of
// every corpus and renders one row per threshold: event F1 and precision per
// fold, per model and corpus. The configured threshold's row is in bold.
func runThresholdSweep(ctx context.Context, dirs, models []string, thresholds []float64, cfg *config.Config, stdout io.Writer) (string, error) {
	var rows strings.Builder
	var columns []string
	for _, th := range thresholds {
		det := cfg.Detector
		det.Scoring.Threshold = th
		if err := det.Validate(); err != nil {
			return "", fmt.Errorf("threshold %g: %w", th, err)
		}
		bold := ""
		if th == cfg.Detector.Scoring.Threshold {
			bold = "**"
		}
		fmt.Fprintf(&rows, "| %s%g%s |", bold, th, bold)
		first := columns == nil
		for _, m := range models {
			reports, err := evalFolds(ctx, dirs, []string{m}, det, cfg.Model, "", 0, io.Discard)
			if err != nil {
				return "", fmt.Errorf("threshold %g: %w", th, err)
			}
			for i := 0; i+1 < len(reports); i += 2 {
				a, b := reports[i], reports[i+1]
				if first {
					columns = append(columns, fmt.Sprintf("%s, %s: F1 A / B (precision A / B)", a.Detector, a.Corpus))
				}
				fmt.Fprintf(&rows, " %s%.2f / %.2f (%.2f / %.2f)%s |", bold, a.Events.F1, b.Events.F1, a.Events.Precision, b.Events.Precision, bold)
			}
		}
		rows.WriteString("\n")
		fmt.Fprintf(stdout, "threshold %g done\n", th)
	}
	var b strings.Builder
	b.WriteString("| threshold |")
	for _, c := range columns {
		b.WriteString(" " + c + " |")
	}
	b.WriteString("\n|---|" + strings.Repeat("---:|", len(columns)) + "\n")
	b.WriteString(rows.String())
	return b.String(), nil
}
