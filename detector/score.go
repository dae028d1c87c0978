package detector

import (
	"math"
	"time"

	"github.com/prometheus/common/model"
)

// ScoringConfig turns prediction errors into calibrated scores.
//
// A sample's score combines surprises, each -ln of a tail probability:
// the model's prediction error (a Gaussian tail of the error against the
// series' long-term error distribution) and the level of the values (the
// short-term mean of the values before the sample against their long-term
// mean and standard deviation). Each is bounded by how often the series
// itself has produced that much surprise before (an empirical tail from a
// small histogram per term), so a deviation a series shows every day does not
// look rare however heavy-tailed its errors are. A third surprise scores a
// sudden drop of the short-term variance of the values below its lowest level
// so far (a series going flat). The score is the summed surprise divided by
// -ln(PFloor), clamped to [0,1]. See docs/detection.md.
type ScoringConfig struct {
	// WarmupSamples is how many prediction errors a series needs before it is
	// scored at all; until then its score is 0. Counted after the first full window.
	WarmupSamples int `yaml:"warmup_samples"`
	// LearningPeriod is how long a series must have been seen before it is
	// scored: until then its score is 0 and its samples count as unscored
	// (reason "learning"), while its statistics, tails and daily profile
	// learn. A series' first day is its first pass through its daily
	// pattern, which nothing yet tells from an anomaly: on the dev corpora
	// the rows before the evaluation's warm-up held 2 to 20 times the false
	// alarms per day of the rest (docs/detection.md). Time counts from the
	// series' first sample compared with a prediction (after its first
	// window), live or read by backfill, or from its predecessor's
	// (churn_labels), and survives restarts through checkpoints. 0 scores a
	// series after WarmupSamples.
	LearningPeriod model.Duration `yaml:"learning_period"`
	// LongWindow is the effective length (in samples) of the long-term
	// distributions: exponentially weighted means and variances of the errors
	// and values, and the empirical tails.
	LongWindow int `yaml:"long_window"`
	// ShortWindow is the effective length of the short-term mean error that is
	// compared with the long-term distribution.
	ShortWindow int `yaml:"short_window"`
	// LevelWindow is the effective length (in samples) of the short-term mean
	// of the values that the level term compares with their long-term mean;
	// 0 turns the level term off.
	LevelWindow int `yaml:"level_window"`
	// EmpiricalTail bounds each term's tail probability from below by the
	// share of past samples at least as surprising (at the resolution of a
	// histogram with bins of a factor sqrt(2)); beyond the largest surprise
	// seen that share falls by a factor e per EmpiricalTail (in log2 units of
	// the surprise). 0 turns the bound off: plain Gaussian tails.
	EmpiricalTail float64 `yaml:"empirical_tail"`
	// PFloor is the tail probability that maps to score 1: the score is
	// log(p)/log(PFloor), clamped to [0,1], so 0.5 means p = sqrt(PFloor).
	PFloor float64 `yaml:"p_floor"`
	// Threshold is the score at which an anomaly opens.
	Threshold float64 `yaml:"threshold"`
	// Direction limits anomalies to deviations above (up) or below (down) the
	// expected value.
	Direction Direction `yaml:"direction"`
	// VarianceWindow is the effective length (in samples) of the short-term
	// variance of the values that the variance-drop term compares with its
	// lowest level so far; 0 turns the term off.
	VarianceWindow int `yaml:"variance_window"`
	// VarianceMargin is how far (log2 units) the short-term variance must
	// fall below its lowest level so far before the variance-drop term
	// scores; beyond it each log2 unit adds one nat of surprise.
	VarianceMargin float64 `yaml:"variance_margin"`
	// RangeSurprise (nats) is added to a sample's surprise when its value lies
	// outside everything the series has done: beyond its running maximum or
	// minimum by more than RangeMargin times the range between them. It
	// only adds to a sample that is already surprising (a positive sum of
	// the other terms); the default, below the threshold's surprise, cannot
	// open an anomaly alone. Nor does it add to a sample whose prediction
	// error is itself beyond the largest the series has made (unless
	// RangeWithErrorRecord): the error term's extrapolation already scores
	// that record, and a new extreme of plain noise would count twice. It
	// uses the level term's value statistics, so it needs LevelWindow > 0.
	// 0 turns the term off.
	RangeSurprise float64 `yaml:"range_surprise"`
	// RangeWithErrorRecord adds RangeSurprise also when the prediction
	// error is a new record (the behaviour before 2026-12-01): nab-dev
	// event F1 +0.03, but Gaussian noise at 15 s opens 4 anomalies in 1,000
	// series-days instead of 0 (docs/detection.md).
	RangeWithErrorRecord bool `yaml:"range_with_error_record"`
	// RangeMargin is that margin, a fraction of the range. The running
	// maximum and minimum relax towards the long-term mean by 1/LongWindow
	// of their distance per sample, so a series' range is forgotten over
	// about LongWindow samples.
	RangeMargin float64 `yaml:"range_margin"`
	// InRangeErrorCap: the error term of a value inside the series' range
	// (see RangeSurprise, which it needs) is at most ln(n) nats, n the
	// samples its statistics have seen (at most LongWindow): the rarest
	// surprise those samples can attest. Beyond the largest error seen the
	// error term extrapolates; only a value outside everything the series
	// has done may be rarer than anything it has done.
	InRangeErrorCap bool `yaml:"in_range_error_cap"`
	// InRangeErrorExcess is the share of an in-range error's surprise
	// beyond that cap, up to twice the cap, that still counts. A value
	// inside the range may still come at an unusual moment, and a hard cap
	// made every such error score alike: the scores piled up at the cap,
	// where a threshold chosen on one set of series did not carry over to
	// another (docs/detection.md). Up to twice the cap: the value and the
	// moment each seen at most once in n samples; at 0.2 an in-range error
	// alone stays below the default threshold. 0 is the hard cap.
	InRangeErrorExcess float64 `yaml:"in_range_error_excess"`
	// DailyProfileRatio enables the daily-profile level term for series
	// with a daily cycle: each series keeps the mean of its values per hour
	// of the day (UTC), and the level term also compares the short-term
	// mean of the values less that profile with its long-term distribution,
	// so a day whose shape departs from the usual one (a holiday on a
	// traffic series) is surprising although every value lies in the
	// normal range. It applies while the variance left after removing the
	// profile is at most this fraction of the values' variance, i.e. while
	// the series has a daily cycle worth the name. It uses the level term's
	// value statistics, so it needs LevelWindow > 0. 0 turns it off.
	DailyProfileRatio float64 `yaml:"daily_profile_ratio"`
	// DailyProfileForecast makes the forecast seasonal for series with a
	// daily cycle (see DailyProfileRatio): the model sees the window less
	// the daily profile and its prediction is added to the profile at the
	// next sample's time, so a transition the series makes every day at the
	// same time is expected instead of scored.
	DailyProfileForecast bool `yaml:"daily_profile_forecast"`
	// SeasonalScale: for a series with a daily cycle, the prediction error
	// is measured against the larger of the window's scale and the spread
	// of the values around the daily profile at that time of day, so a
	// daily step whose timing varies a little does not look like a jump
	// out of a flat window.
	SeasonalScale bool `yaml:"seasonal_scale"`
	// SeasonalPoint adds, for a series with a daily cycle, the surprise of
	// the value itself against the daily profile at its time of day,
	// measured against the larger of that time's spread and the series'
	// overall spread around its profile (the larger level surprise counts).
	SeasonalPoint bool `yaml:"seasonal_point"`
	// TransitionSpread: near a daily transition, where the profile within
	// half an hour of a value's time changes by more than this many times
	// its spread there, the seasonal point term measures the value from the
	// nearest profile value in that hour instead of the interpolated one:
	// the hourly profile cannot place a daily step more precisely, and
	// without this a step the series makes every day at 09:00 is scored by
	// the error term and the point term at once. 0 turns it off.
	TransitionSpread float64 `yaml:"transition_spread"`
	// RobustUpdates keeps anomalies from widening the statistics they are
	// judged against: a prediction error or value beyond the band enters the
	// long-term mean and variance at the band's edge (winsorised). A lasting
	// change is still learned, more slowly. The empirical tails learn every
	// sample: how often a series makes large deviations is what they are for.
	RobustUpdates bool `yaml:"robust_updates"`
	// ReferenceInterval is the sampling interval LongWindow and the threshold
	// are calibrated at. A series sampled faster (its typical interval
	// shorter) remembers LongWindow × reference/interval samples (at most
	// maxTimeScale times as many), so its memory spans the same time, and its
	// summed surprise is lowered by ln(reference/interval) nats, so its false
	// alarms per day, not per sample, match a series sampled at the
	// reference: scraped every 15 s, pure noise otherwise opens twenty
	// times as many anomalies a day as the same noise every 5 minutes. A
	// series sampled more slowly is scored per sample. 0 scores every series
	// per sample.
	ReferenceInterval model.Duration `yaml:"reference_interval"`
	// PointWindow is the span over which SeasonalPoint averages the value's
	// residual from the daily profile (an exponentially weighted mean),
	// and for a series sampled faster, the term scores that mean before the
	// sample, as the level term does: at a 15 s scrape one noisy sample
	// otherwise counts twice, in the error term and against a spread learnt
	// per hour of the day (a 5 σ outlier of Gaussian noise on a daily cycle
	// opened an anomaly). A series sampled at this interval or more slowly
	// is scored on each sample, the sample included; 0 scores every series
	// that way.
	PointWindow model.Duration `yaml:"point_window"`
	// CorroborationLift: a sample scoring at least threshold -
	// corroboration_lift, but below the threshold, is lifted by
	// corroboration_lift (so it opens an anomaly) when another series of
	// the same entity (detector.entity_labels) scored at least threshold -
	// corroboration_lift within the last two of the series' sampling
	// intervals: an incident on a server shows on several of its metrics at
	// once, each only moderately surprising. A sample scoring less than
	// corroboration_lift over the threshold is lowered by it when no other
	// series did, although the entity has others that have been that
	// surprising before: an excursion its siblings do not share is less
	// likely an incident. 0 turns corroboration off.
	CorroborationLift float64 `yaml:"corroboration_lift"`
	// MinAbsDeviation and MinRelDeviation (a fraction of |expected|) are the
	// smallest deviations that may raise the score, so flat series and tiny
	// wiggles do not page anyone.
	MinAbsDeviation float64 `yaml:"min_abs_deviation"`
	MinRelDeviation float64 `yaml:"min_rel_deviation"`
}

// DefaultScoringConfig is the scoring the server runs by default, tuned on
// nab-dev (docs/detection.md).
var DefaultScoringConfig = ScoringConfig{
	WarmupSamples:        30,
	LearningPeriod:       model.Duration(24 * time.Hour),
	LongWindow:           8000,
	ShortWindow:          1,
	LevelWindow:          10,
	EmpiricalTail:        0.125,
	PFloor:               1e-7,
	Threshold:            0.7,
	VarianceWindow:       0,
	VarianceMargin:       4,
	RangeSurprise:        3.2,
	RangeMargin:          0.1,
	InRangeErrorCap:      true,
	InRangeErrorExcess:   0.2,
	DailyProfileRatio:    0.5,
	DailyProfileForecast: false,
	SeasonalScale:        true,
	SeasonalPoint:        true,
	TransitionSpread:     2,
	RobustUpdates:        true,
	ReferenceInterval:    model.Duration(5 * time.Minute),
	PointWindow:          model.Duration(time.Minute),
	CorroborationLift:    0.1,
	Direction:            DirectionBoth,
	MinAbsDeviation:      0,
	MinRelDeviation:      0,
}

// calibration is the per-series state of the scoring. float32 keeps a series
// small; the statistics do not need more precision.
type calibration struct {
	n        uint32
	errMean  float32 // long-term mean of the normalised error
	errVar   float32 // and its variance
	shortErr float32 // short-term mean of the normalised error

	// vn counts the samples seen by the value statistics and the tails. It
	// is separate from n so that a calibration restored with only the error
	// statistics (SeriesState) restarts them instead of trusting zeros.
	vn              uint32
	valMean, valVar float32 // long-term mean and variance of the values
	valShort        float32 // short-term mean of the values (LevelWindow)
	varShort        float32 // short-term mean squared deviation from valShort (VarianceWindow)
	varLow          float32 // log2 of the lowest varShort seen, slowly forgotten
	valMax, valMin  float32 // running range of the values, slowly forgotten (RangeSurprise)

	errTail tailHist // log2 of the short-term error
	lvlTail tailHist // log2 of the level term's surprise

	daily dailyProfile // DailyProfileRatio
}

// Daily profile: hour-of-day bins (UTC). Each bin is the mean of the values
// that fell in it, each weighted by the time it stands for (the gap since the
// previous sample, at most a bin's length): a plain mean at first, then an
// exponentially weighted one that remembers profileDays days of the bin's
// time, or profileMinSamples of its samples if that is longer, so a sparse
// series (hourly, half-hourly) does not follow its latest day alone.
const (
	profileBins       = 24
	profileBinMs      = 24 * 3600 * 1000 / profileBins
	profileDays       = 1
	profileMinSamples = 12
	profileLevelSec   = 2 * 3600 // the residual's short-term mean spans at least this
	// seasonalScoreSec is the age from which the seasonal terms score: a
	// daily pattern must have been seen on two days.
	seasonalScoreSec = 2 * 24 * 3600
)

// dailyProfile is the state of the daily-profile level term: the profile,
// and the statistics of the residual (the value less its bin's profile) to
// which the level term's method is applied. 192 bytes (field order avoids
// padding).
type dailyProfile struct {
	bin     [profileBins]float32
	binVar  [profileBins]float32 // mean squared residual of the point around the profile, per bin
	visited uint32               // bit per bin
	// n counts the samples seen by the residual statistics (like vn).
	n uint32
	// startSec is the unix time (s) of the profile's first sample: the time
	// each bin has covered since then sets its weights.
	startSec                  int64
	resMean, resVar, resShort float32
	// tails is allocated when the series first has a daily cycle: only then
	// do the residual and point terms score, and most series never have
	// one (136 bytes a series otherwise carries for nothing).
	tails *cycleTails
	// gapMs is the series' typical sampling interval (exponentially
	// weighted), which places the values of a window in time.
	gapMs float32
	// cycle says the profile explains enough of the variance (see
	// DailyProfileRatio) and has covered a day since its first value.
	cycle bool
	// inherited says the calibration came from a predecessor (a replaced
	// pod's series, successor.go) and the series' own first window has not
	// confirmed its level yet (confirmInherited). It belongs to the
	// calibration and sits here in the padding after cycle.
	inherited bool
	// bandMax belongs to the calibration (like gapMs) and sits here in the
	// padding after cycle: errTail's largest value over the samples that
	// scored below the threshold, forgotten at the same rate, in 1/256 log2
	// units. The band extrapolates from it, so an anomaly does not widen
	// the band it is shown against (setBandMax, bandMaxLog2).
	bandMax int16
	// ptShort is the point residual's mean over about PointWindow (the
	// current residual alone for a series sampled that slowly).
	ptShort float32
}

// at returns the profile at tsMs (0 before any value), interpolated
// linearly between the centres of adjacent bins (a sharp daily transition
// falls between bins).
func (p *dailyProfile) at(tsMs int64) float64 { return interpolateBins(&p.bin, p.visited, tsMs) }

// varAt is binVar at tsMs, interpolated as at interpolates bin.
func (p *dailyProfile) varAt(tsMs int64) float64 { return interpolateBins(&p.binVar, p.visited, tsMs) }

// interpolateBins interpolates bins at tsMs between the nearest visited bins
// on either side of it: a series sampled less often than a bin's length
// leaves bins unvisited. 0 when no bin is visited.
func interpolateBins(bins *[profileBins]float32, visited uint32, tsMs int64) float64 {
	if visited == 0 {
		return 0
	}
	const day = profileBins * profileBinMs
	off := float64(((tsMs%day)+day)%day)/profileBinMs - 0.5
	lo := int(math.Floor(off))
	a, da := lo, 0
	for ; da < profileBins && visited&(1<<((a-da+profileBins)%profileBins)) == 0; da++ {
	}
	b, db := lo+1, 0
	for ; db < profileBins && visited&(1<<((b+db)%profileBins)) == 0; db++ {
	}
	va, vb := float64(bins[(a-da+profileBins)%profileBins]), float64(bins[(b+db)%profileBins])
	f := (off - float64(lo) + float64(da)) / float64(1+da+db)
	return va*(1-f) + vb*f
}

// transitionResidual returns the point residual rp of v at tsMs, or, near
// a daily transition, v's distance from the range of the profile within
// half a bin of tsMs: the hourly profile cannot place a transition more
// precisely than its bin, so a step the series makes every day is expected
// anywhere in that hour. A transition is where that range exceeds
// TransitionSpread times spread, the spread the point term measures in;
// elsewhere the range is the profile's own noise, and widening by it would
// blunt every point anomaly.
func (p *dailyProfile) transitionResidual(cfg *ScoringConfig, v, rp float64, tsMs int64, spread float64) float64 {
	if cfg.TransitionSpread <= 0 {
		return rp
	}
	const half = profileBinMs / 2
	// Linear between bin centres: the extremes over [tsMs-half, tsMs+half]
	// are at its ends or at the one bin centre inside it.
	centre := tsMs - (((tsMs % profileBinMs) + profileBinMs) % profileBinMs) + half
	a, b, c := p.at(tsMs-half), p.at(tsMs+half), p.at(centre)
	lo, hi := min(a, b, c), max(a, b, c)
	if hi-lo <= cfg.TransitionSpread*spread {
		return rp
	}
	return v - min(max(v, lo), hi)
}

// profileBin is the hour-of-day bin (UTC) of a timestamp.
func profileBin(tsMs int64) int {
	const day = profileBins * profileBinMs
	return int(((tsMs%day)+day)%day) / profileBinMs
}

// binCoverage returns the seconds of [fromSec, toSec) that fall into bin h.
func binCoverage(fromSec, toSec int64, h int) float64 {
	const day, width = profileBins * profileBinMs / 1000, profileBinMs / 1000
	if toSec <= fromSec {
		return 0
	}
	n := toSec - fromSec
	cov := (n / day) * width
	from := fromSec + (n/day)*day
	// The rest is shorter than a day: the bin occurs in it at most twice.
	for d := from - ((from%day)+day)%day; d < toSec; d += day {
		lo, hi := max(from, d+int64(h)*width), min(toSec, d+int64(h+1)*width)
		if hi > lo {
			cov += hi - lo
		}
	}
	return float64(cov)
}

// cycleTails are the empirical tails of the terms that score only while a
// series has a daily cycle.
type cycleTails struct {
	res tailHist // log2 of the residual level surprise
	pt  tailHist // log2 of the point residual surprise
}

// cycleTails returns p's tails, allocating them on first use.
func (p *dailyProfile) cycleTails() *cycleTails {
	if p.tails == nil {
		p.tails = new(cycleTails)
	}
	return p.tails
}

// observe returns the daily-profile level surprise of the value v at tsMs
// (0 while the series has no daily cycle, see DailyProfileRatio), then
// learns v. vm and vv are the values' long-term mean and variance before v,
// gapMs the time since the previous sample. Like the level term, it scores
// the short-term mean before v.
func (p *dailyProfile) observe(cfg *ScoringConfig, v, vm, vv, lw float64, tsMs, gapMs int64, gated bool) (residual, point float64) {
	h := profileBin(tsMs)
	visited := p.visited&(1<<h) != 0
	r := v - vm // until the bin has a value
	if visited {
		r = v - float64(p.bin[h])
	}
	p.n++
	prev := float64(p.resShort)
	// The residual's short-term mean spans level_window samples and at least
	// profileLevelSec: at fine sampling intervals a ramp within an hour bin
	// leaves a sawtooth in the residual that a few minutes' mean would score
	// at every bin edge.
	aLvl := min(1/float64(cfg.LevelWindow), max(float64(gapMs)/(1000*profileLevelSec), 1e-4))
	if p.n == 1 {
		p.resShort = float32(r)
	} else {
		p.resShort = float32((1-aLvl)*prev + aLvl*r)
	}
	var s, sPt float64
	// The point residual against the profile before v teaches it; at and
	// varAt are 0 before the first value.
	prof, vp := p.at(tsMs), p.varAt(tsMs)
	// The residual's spread, and the point term's: that at this time of day
	// if larger.
	sd := max(math.Sqrt(float64(p.resVar)), 1e-6+1e-3*math.Abs(vm))
	sdp := max(math.Sqrt(vp), sd)
	rp, rpNear := 0.0, 0.0
	if p.visited != 0 {
		rp, rpNear = v-prof, v-prof
		if cfg.SeasonalPoint && p.cycle {
			// Only where the point term scores: three more profile
			// lookups per sample.
			rpNear = p.transitionResidual(cfg, v, rp, tsMs, sdp)
		}
	}
	// Over PointWindow: one noisy scrape of a fast series must not count
	// twice, in the error term and against a spread learnt per hour.
	aPt := 1.0
	if w := float64(time.Duration(cfg.PointWindow).Milliseconds()); w > 0 && gapMs > 0 {
		aPt = min(1, float64(gapMs)/w)
	}
	ptShort := rpNear
	if p.n > 1 {
		ptShort = (1-aPt)*float64(p.ptShort) + aPt*rpNear
	}
	// A series sampled faster than PointWindow is scored on the mean before
	// this sample: the sample itself is the error term's business, and a
	// lasting deviation reaches the point term one sample later.
	ptScored := ptShort
	if aPt < 1 && p.n > 1 {
		ptScored = float64(p.ptShort)
	}
	p.ptShort = float32(ptShort)
	if m := warmSamples(cfg, p.n); m > 0 {
		// Only once the profile covers a day: the residuals of a half-learnt
		// profile would teach the tails that huge surprises are common, for
		// as long as the series' memory lasts.
		if p.cycle {
			s = levelSurprise(prev, float64(p.resMean), sd, 1/aLvl)
			s = bounded(&p.cycleTails().res, cfg, s, math.Log2(max(s, 1e-12)), m, lw)
		}
		if cfg.SeasonalPoint && p.cycle {
			sPt = levelSurprise(ptScored, 0, sdp, (2-aPt)/aPt)
			sPt = bounded(&p.cycleTails().pt, cfg, sPt, math.Log2(max(sPt, 1e-12)), m, lw)
		}
		if !gated {
			// Learnt above, as every sample is, so that the tails know how
			// common such surprises are; not scored.
			s, sPt = 0, 0
		}
	}
	hasCycle := float64(p.resVar) <= cfg.DailyProfileRatio*vv
	p.cycle = hasCycle && tsMs/1000-p.startSec >= 24*3600
	mean, variance := ewMoments(float64(p.resMean), float64(p.resVar), r, max(1/float64(p.n), 1/lw))
	p.resMean, p.resVar = float32(mean), float32(variance)
	// Not winsorised (RobustUpdates): the profile follows an unusual day
	// only from the next day on, and clipping it cost ops-dev 0.01-0.02 F1
	// on both folds (docs/detection.md).
	p.learn(v, tsMs, gapMs, h, rp*rp)
	// A cycle is a pattern seen twice: the terms score only from the
	// series' third day. On its first day the profile learns whatever
	// the series did (a process' start-up among it); the tails learn the
	// second day's residuals from that profile before they are scored.
	if !p.cycle || tsMs/1000-p.startSec < seasonalScoreSec {
		return 0, 0
	}
	return s, sPt
}

// learn adds v at tsMs to bin h.
func (p *dailyProfile) learn(v float64, tsMs, gapMs int64, h int, r2 float64) {
	sec := tsMs / 1000
	if p.visited == 0 {
		p.startSec = sec
	}
	if p.visited&(1<<h) == 0 {
		p.bin[h] = float32(v)
		p.binVar[h] = float32(r2)
		p.visited |= 1 << h
		return
	}
	const width = profileBinMs / 1000
	g := min(max(float64(gapMs)/1000, 0), width)
	// The bin's time so far (a sample stands for the gap before it), up to
	// its memory: a plain mean at first, then an exponential one.
	den := min(binCoverage(p.startSec, sec, h)+g, max(profileDays*width, profileMinSamples*g))
	w := 1.0
	if den > 0 {
		w = g / den
	}
	p.bin[h] += float32((v - float64(p.bin[h])) * w)
	p.binVar[h] += float32((r2 - float64(p.binVar[h])) * w)
}

const (
	histBins = 16
	histLo   = -2.0 // log2 of the lower edge of bin 1; bin 0 holds everything below
	histStep = 0.5  // bin width in log2 units
)

// tailHist is the empirical distribution of the log2 of one term's
// statistic (the error, or the level surprise):
// exponentially weighted shares per bin (summing to 1) and the largest value
// seen, which decays by one bin width per LongWindow/2 samples.
type tailHist struct {
	share [histBins]float32
	max   float32
}

// export and restore carry a histogram in SeriesState: the shares, then max.
func (t *tailHist) export() (a [histBins + 1]float32) {
	copy(a[:], t.share[:])
	a[histBins] = t.max
	return a
}

func (t *tailHist) restore(a [histBins + 1]float32) {
	copy(t.share[:], a[:histBins])
	t.max = a[histBins]
}

func histBin(x float64) int {
	b := int(math.Floor((x-histLo)/histStep)) + 1
	return min(max(b, 0), histBins-1)
}

// tailSettle is the number of samples under which the largest value seen is
// too uncertain to extrapolate from with the configured steepness: with
// fewer, the tail beyond it falls proportionally slower.
const tailSettle = 100

// tail is the share of past values in x's bin or above, out of neff. Beyond
// the largest value seen it is the share of that value's bin, falling by a
// factor e per tau. It is never below one in neff.
func (t *tailHist) tail(x, neff, tau float64) float64 {
	xm := float64(t.max)
	var p float64
	for j := histBin(min(x, xm)); j < histBins; j++ {
		p += float64(t.share[j])
	}
	p = max(p, 1/neff)
	if x > xm {
		p *= math.Exp(-(x - xm) / settledTau(tau, neff))
	}
	return p
}

// settledTau is the tail's steepness after neff samples.
func settledTau(tau, neff float64) float64 {
	return tau * max(1, tailSettle/neff)
}

// learn adds x with weight a; first starts the largest value seen at x.
func (t *tailHist) learn(x, a, lw float64, first bool) {
	if first {
		t.max = float32(x)
	} else {
		t.max = float32(max(x, float64(t.max)-2*histStep/lw))
	}
	for j := range t.share {
		t.share[j] *= float32(1 - a)
	}
	t.share[histBin(x)] += float32(a)
}

// gaussTail returns P(Z > z) for a standard normal Z.
func gaussTail(z float64) float64 {
	return 0.5 * math.Erfc(z/math.Sqrt2)
}

// logGaussTail returns ln P(Z > z) for a standard normal Z, without
// underflow for large z.
func logGaussTail(z float64) float64 {
	if z < 30 {
		return math.Log(max(gaussTail(z), 1e-300))
	}
	return -z*z/2 - math.Log(z*math.Sqrt(2*math.Pi))
}

// surpriseAtThreshold is the summed surprise (nats) at which the score
// reaches the threshold.
func (c *ScoringConfig) surpriseAtThreshold() float64 {
	return -c.Threshold * math.Log(c.PFloor)
}

// clipZ is the z-score beyond which a sample enters the long-term
// statistics at that z (RobustUpdates): to first order, the z whose
// Gaussian surprise is the threshold's.
func (c *ScoringConfig) clipZ() float64 {
	return math.Sqrt(2 * c.surpriseAtThreshold())
}

// zAt is the z-score whose Gaussian surprise is s nats (0 for s <= 0).
func zAt(s float64) float64 {
	// Invert logGaussTail by bisection: called once per configuration.
	lo, hi := 0.0, 1e3
	for range 100 {
		mid := (lo + hi) / 2
		if -logGaussTail(mid) < s {
			lo = mid
		} else {
			hi = mid
		}
	}
	return (lo + hi) / 2
}

// rangeCapsError says whether InRangeErrorCap applies: it needs the range
// that RangeSurprise keeps, which needs the level term's statistics.
func (c *ScoringConfig) rangeCapsError() bool {
	return c.InRangeErrorCap && c.RangeSurprise > 0 && c.LevelWindow > 0
}

// inRangeError is the error term s (nats) of a value inside the series'
// range after n samples (InRangeErrorCap): at most ln(n), plus
// InRangeErrorExcess of the rest up to twice that. An error beyond the cap
// still orders in-range values; twice the cap: the value and its moment
// each seen at most once in n samples.
func (c *ScoringConfig) inRangeError(s, n, lw float64) float64 {
	capped := math.Log(min(n, lw))
	if s <= capped {
		return s
	}
	return capped + c.InRangeErrorExcess*(min(s, 2*capped)-capped)
}

// inRangeSurpriseFor inverts inRangeError: the error surprise at which an
// in-range value's error term reaches target, and false when none does.
func (c *ScoringConfig) inRangeSurpriseFor(target, n, lw float64) (float64, bool) {
	capped := math.Log(min(n, lw))
	switch {
	case target <= capped:
		return target, true
	case c.InRangeErrorExcess <= 0 || target > capped*(1+c.InRangeErrorExcess):
		return 0, false
	}
	return capped + (target-capped)/c.InRangeErrorExcess, true
}

// surpriseOutsideRange is the error term's surprise at which a value
// outside the series' range reaches the threshold: the range term adds
// RangeSurprise to it.
func (c *ScoringConfig) surpriseOutsideRange() float64 {
	return max(c.surpriseAtThreshold()-c.RangeSurprise, 0)
}

// corroborationScore is the score from which a sample can be corroborated
// and corroborates its entity's other series.
func (c *ScoringConfig) corroborationScore() float64 {
	return c.Threshold - c.CorroborationLift
}

// warmCount is the number of warm samples seen by the tails, including the
// current one once observe counted it; the empirical tails learn from warm
// samples only, because the first errors of a series come from a barely
// estimated distribution.
func (c *calibration) warmCount(cfg *ScoringConfig) uint32 { return warmSamples(cfg, c.vn) }

// warmSamples is how many of n samples come after the warm-up.
func warmSamples(cfg *ScoringConfig, n uint32) uint32 {
	if n <= uint32(cfg.WarmupSamples) {
		return 0
	}
	return n - uint32(cfg.WarmupSamples)
}

// ewMoments adds x with weight a to an exponentially weighted mean and
// variance (a = 1/n gives the running ones).
func ewMoments(mean, variance, x, a float64) (float64, float64) {
	d := x - mean
	return mean + a*d, (1 - a) * (variance + a*d*d)
}

// levelSurprise is the two-sided Gaussian surprise (nats) of a short-term
// mean short against a long-term mean and standard deviation, as if it
// averaged n independent values; the empirical tails correct for series
// where they are not.
func levelSurprise(short, mean, sd, n float64) float64 {
	z := math.Abs(short-mean) / sd * math.Sqrt(n)
	return max(-logGaussTail(z)-math.Ln2, 0)
}

// bounded bounds a surprise s (nats) by the empirical tail of x, the log2
// of the term's statistic, and teaches t x. m counts the warm samples
// including this one; lw is the series' long window in samples.
func bounded(t *tailHist, cfg *ScoringConfig, s, x float64, m uint32, lw float64) float64 {
	if cfg.EmpiricalTail <= 0 {
		return s
	}
	if m == 0 {
		// Not warm (or restarted): nothing is rare yet.
		return 0
	}
	if m == 1 {
		// No history yet: nothing is rare.
		s = 0
	} else {
		// The rarer of the Gaussian's and the history's view wins: a
		// surprise this series produces often is not rare.
		s = min(s, max(0, -math.Log(t.tail(x, min(float64(m-1), lw), cfg.EmpiricalTail))))
	}
	t.learn(x, max(1/float64(m), 1/lw), lw, m == 1)
	return s
}

// observe feeds one normalised absolute prediction error e and the sample's
// value v at tsMs, gapMs after the series' previous sample, and returns the
// score. gated says the deviation passed the
// direction and minimum-deviation knobs; a gated-out error still teaches the
// long-term distribution but cannot raise the short-term signal above
// normal, and a gated-out sample gets no level surprise.
func (c *calibration) observe(cfg *ScoringConfig, e, v float64, tsMs, gapMs int64, gated bool) (score float64, warm bool, cause Cause) {
	c.observeInterval(gapMs)
	c.n++
	c.vn++
	if c.vn == 1 && c.daily.visited == 0 {
		// The series' start (LearningPeriod); the daily profile, when it
		// learns, starts at the same sample.
		c.daily.startSec = tsMs / 1000
	}
	n := float64(c.n)
	mean, variance := float64(c.errMean), float64(c.errVar)
	warm = c.n > uint32(cfg.WarmupSamples)
	m := c.warmCount(cfg)
	// Welford-style during warm-up, EWMA afterwards.
	scale := c.timeScale(cfg)
	lw := c.longWindow(cfg, scale)
	a := max(1/n, 1/lw)
	aVal := max(1/float64(c.vn), 1/lw)

	eShort := e
	if !gated && e > mean {
		eShort = mean
	}
	aShort := 1 / float64(max(cfg.ShortWindow, 1))
	if c.n == 1 {
		c.shortErr = float32(eShort)
	} else {
		c.shortErr = float32((1-aShort)*float64(c.shortErr) + aShort*eShort)
	}

	// Error term.
	var sErr float64
	// A floor on std keeps a perfectly predicted series from turning the
	// smallest error into an anomaly.
	std := max(math.Sqrt(variance), 1e-3+0.1*mean)
	if z := (float64(c.shortErr) - mean) / std; z > 0 {
		sErr = -logGaussTail(z)
	}
	xErr := math.Log2(max(float64(c.shortErr), 1e-12))
	// Before bounded learns it: is this error beyond the largest seen?
	errRecord := m > 1 && xErr > float64(c.errTail.max)
	sErr = bounded(&c.errTail, cfg, sErr, xErr, m, lw)

	// Level term.
	var sLvl, sRes, sVar, sRange float64
	beyond, seasonal := false, false
	if cfg.LevelWindow > 0 {
		vm, vv := float64(c.valMean), float64(c.valVar)
		aLvl := 1 / float64(cfg.LevelWindow)
		// The level term compares the short-term mean before this sample:
		// a single outlier is the error term's business, and counting it in
		// both terms at once made every daily spike an anomaly. A level
		// shift reaches the level term one sample later.
		lvl := float64(c.valShort)
		if c.vn == 1 {
			c.valShort = float32(v)
		} else {
			c.valShort = float32((1-aLvl)*float64(c.valShort) + aLvl*v)
		}
		if cfg.VarianceWindow > 0 {
			sVar = c.varianceDrop(cfg, v, vm, lw, m, gated)
		}
		if m > 0 {
			vs := max(math.Sqrt(vv), 1e-6+1e-3*math.Abs(vm))
			sLvl = levelSurprise(lvl, vm, vs, float64(cfg.LevelWindow))
			// Every sample teaches the tail, a gated-out one too: a tail
			// taught only the deviations that pass the knobs has seen too
			// few samples and makes every one of them rare.
			sLvl = bounded(&c.lvlTail, cfg, sLvl, math.Log2(max(sLvl, 1e-12)), m, lw)
			if !gated {
				sLvl = 0
			}
		}
		if cfg.DailyProfileRatio > 0 {
			// The larger of the two level surprises: each is bounded by its
			// own history, and the profile's only counts for series with a
			// daily cycle.
			var sPt float64
			sRes, sPt = c.daily.observe(cfg, v, vm, vv, lw, tsMs, gapMs, gated)
			seasonal = max(sRes, sPt) > sLvl
			sLvl = max(sLvl, sRes, sPt)
		}
		var outside bool
		beyond, outside = c.outsideRange(cfg, v, vm, lw)
		if gated && m > 0 && outside && (cfg.RangeWithErrorRecord || !errRecord) {
			sRange = cfg.RangeSurprise
		}
		if cfg.RobustUpdates && m > 0 {
			sd := cfg.clipZ() * math.Sqrt(vv)
			v = min(max(v, vm-sd), vm+sd)
		}
		vm, vv = ewMoments(vm, vv, v, aVal)
		c.valMean, c.valVar = float32(vm), float32(vv)
	}

	if cfg.rangeCapsError() && !beyond && m > 1 {
		sErr = cfg.inRangeError(sErr, float64(m-1), lw)
	}
	if warm {
		sum := sErr + sLvl + sVar
		if sum > 0 {
			// Only on a sample that is already surprising: a series that
			// trends to new highs in small steps is not anomalous for it.
			sum += sRange
		}
		// Per unit of time, not per sample (ReferenceInterval). The daily
		// residual's level spans at least profileLevelSec at any sampling
		// interval, so a faster series does not give it more chances a day.
		sum = max(sum-math.Log(scale), sRes)
		score = min(max(sum, 0)/-math.Log(cfg.PFloor), 1)
		switch {
		case sErr >= sLvl && sErr >= sVar:
			cause = CausePrediction
		case seasonal && sLvl >= sVar:
			cause = CauseSeasonal
		default:
			// The level term, or the variance-drop term (a stuck or
			// stalled series: its short-term level of variation).
			cause = CauseLevel
		}
	}

	switch {
	case m == 1:
		c.setBandMax(xErr)
	case m > 1 && score < cfg.Threshold:
		c.setBandMax(max(xErr, c.bandMaxLog2()-2*histStep/lw))
	}

	// Update the long-term error distribution after scoring, so a sample is
	// not compared with itself. An error beyond the band enters at the
	// band's edge (winsorised): an anomaly must not widen the distribution
	// it is judged against, while a lasting change still moves it.
	if cfg.RobustUpdates && m > 0 {
		e = min(e, mean+cfg.clipZ()*math.Sqrt(variance))
	}
	mean, variance = ewMoments(mean, variance, e, a)
	c.errMean, c.errVar = float32(mean), float32(variance)
	return score, warm, cause
}

// learning says whether a series is still in its LearningPeriod at tsMs.
func (c *calibration) learning(cfg *ScoringConfig, tsMs int64) bool {
	return cfg.LearningPeriod > 0 && tsMs-c.daily.startSec*1000 < time.Duration(cfg.LearningPeriod).Milliseconds()
}

// Variance-drop term: a series that suddenly goes (nearly) flat, such as a
// stuck sensor or a stalled counter, stays inside its normal range and is
// predicted well, so neither other term notices. varShort is the
// short-term mean squared deviation of the values from their short-term
// mean; varLow is the log2 of its lowest value so far, forgotten by one
// histogram bin per LongWindow/2 samples and following new lows by at most
// varLowRate per sample. A variance VarianceMargin log2 units or more below
// that low scores one nat per further log2 unit, up to twice the threshold's
// surprise. A variance that falls abruptly outruns the low mark and scores
// while it keeps falling; a slow change of noise level moves the mark along.
const (
	varLowRate = 0.02 // log2 units per sample
	varLowCap  = 2    // in units of the threshold's surprise
)

func (c *calibration) varianceDrop(cfg *ScoringConfig, v, vm, lw float64, m uint32, gated bool) float64 {
	dv := v - float64(c.valShort)
	a := 1 / float64(cfg.VarianceWindow)
	if c.vn == 1 {
		c.varShort = float32(dv * dv)
	} else {
		c.varShort = float32((1-a)*float64(c.varShort) + a*dv*dv)
	}
	// The floor keeps a constant series finite: relative to the level, as
	// float32 values are.
	x := math.Log2(float64(c.varShort) + 1e-12 + 1e-8*vm*vm)
	if m <= uint32(cfg.VarianceWindow) {
		// Until the short-term variance has seen warm samples only.
		c.varLow = float32(x)
		return 0
	}
	var s float64
	if gated && m > tailSettle {
		s = min(max(0, float64(c.varLow)-x-cfg.VarianceMargin), varLowCap*cfg.surpriseAtThreshold())
	}
	low := float64(c.varLow)
	c.varLow = float32(min(max(x, low-varLowRate), low+2*histStep/lw))
	return s
}

// outsideRange reports whether v lies beyond the running range of the
// values by more than RangeMargin of it (beyond), and whether the range
// scores it (outside: only once the range has a width, so a constant
// series' first change is the error term's business alone), then widens
// the range to v and relaxes it towards the long-term mean vm. The first
// value starts it.
func (c *calibration) outsideRange(cfg *ScoringConfig, v, vm, lw float64) (beyond, outside bool) {
	if cfg.RangeSurprise <= 0 {
		return false, false
	}
	if c.vn == 1 {
		c.valMax, c.valMin = float32(v), float32(v)
		return false, false
	}
	lo, hi := c.rangeEdges(cfg)
	beyond = v > hi || v < lo
	hiRaw, loRaw := float64(c.valMax), float64(c.valMin)
	c.valMax = float32(max(v, vm+(hiRaw-vm)*(1-1/lw)))
	c.valMin = float32(min(v, vm+(loRaw-vm)*(1-1/lw)))
	return beyond, beyond && hiRaw > loRaw
}

// rangeEdges returns the running range of the values widened by
// RangeMargin of it on each side: a value beyond them is outside the range.
func (c *calibration) rangeEdges(cfg *ScoringConfig) (lo, hi float64) {
	hi, lo = float64(c.valMax), float64(c.valMin)
	margin := cfg.RangeMargin * (hi - lo)
	return lo - margin, hi + margin
}

// errBand is what the half widths of one sample's band share: the error
// statistics and the empirical tail at its largest error; lw is the
// series' long window in samples.
type errBand struct {
	mean, std, short float64
	tail             bool    // the empirical tail bounds the error term
	xm, lnTop, tau   float64 // its largest error (log2), that bin's share, its steepness
}

func (c *calibration) errBand(cfg *ScoringConfig, lw float64) errBand {
	mean := float64(c.errMean)
	b := errBand{
		mean:  mean,
		std:   max(math.Sqrt(float64(c.errVar)), 1e-3+0.1*mean),
		short: float64(max(cfg.ShortWindow, 1)),
	}
	if m := c.warmCount(cfg); cfg.EmpiricalTail > 0 && m > 1 {
		// The error whose empirical tail is rare enough: beyond the largest
		// error of a sample that was not an anomaly (bandMax) by as many
		// EmpiricalTail as the share of its bin falls short of that rarity.
		t := &c.errTail
		neff := min(float64(m-1), lw)
		b.tail = true
		b.xm = min(c.bandMaxLog2(), float64(t.max))
		b.lnTop = math.Log(t.tail(b.xm, neff, cfg.EmpiricalTail))
		b.tau = settledTau(cfg.EmpiricalTail, neff)
	}
	return b
}

// half is the half width, in normalised units, of the errors within which
// the error term stays below surprise (nats); z is its z-score (zAt).
func (b *errBand) half(z, surprise float64) float64 {
	half := b.mean + z*b.std*b.short
	if b.tail {
		x := b.xm + b.tau*max(0, surprise+b.lnTop)
		half = max(half, math.Exp2(min(x, 60))*b.short)
	}
	return half
}

// bandMaxLog2 and setBandMax read and write dailyProfile.bandMax (log2).
func (c *calibration) bandMaxLog2() float64 { return float64(c.daily.bandMax) / 256 }

func (c *calibration) setBandMax(x float64) {
	c.daily.bandMax = int16(math.Round(min(max(x, -127), 127) * 256))
}

// bandZ holds the z-scores of the surprises the bounds are drawn at, for
// every bandZStep nats a series' time scale adds to them (ReferenceInterval),
// computed once per configuration.
type bandZ struct {
	threshold, outsideRange [bandZSteps + 1]float64
	// The surprises (nats) before the time scale's adjustment.
	atThreshold, outsideRangeSurprise float64
}

// bandZSteps × bandZStep nats covers series sampled up to e^8 ≈ 3,000 times
// faster than the reference interval; faster ones get that band.
const (
	bandZStep  = 0.25
	bandZSteps = 32
)

func (c *ScoringConfig) bandZ() (b bandZ) {
	b.atThreshold, b.outsideRangeSurprise = c.surpriseAtThreshold(), c.surpriseOutsideRange()
	for k := range b.threshold {
		adj := float64(k) * bandZStep
		b.threshold[k] = zAt(c.surpriseAtThreshold() + adj)
		b.outsideRange[k] = zAt(c.surpriseOutsideRange() + adj)
	}
	return b
}

// zAtAdjusted interpolates a table of bandZ at adj nats.
func zAtAdjusted(zs *[bandZSteps + 1]float64, adj float64) float64 {
	x := min(max(adj/bandZStep, 0), bandZSteps)
	k := min(int(x), bandZSteps-1)
	f := x - float64(k)
	return zs[k]*(1-f) + zs[k+1]*f
}

// maxTimeScale bounds how many times LongWindow samples a fast series
// remembers: the statistics are float32, and an EWMA weight far below
// 1/(LongWindow × maxTimeScale) would lose updates to rounding.
const maxTimeScale = 20

// observeInterval follows the series' typical sampling interval, gapMs
// the time since its previous sample (0 for the first). A gap counts as at
// most twice the typical interval: an outage must not make a fast series
// look slow (and its surprise per sample rarer) for the samples after it,
// while a lasting change of interval is followed within a few dozen samples.
func (c *calibration) observeInterval(gapMs int64) {
	p := &c.daily
	if g := float32(gapMs); p.gapMs == 0 {
		p.gapMs = g
	} else if gapMs > 0 {
		p.gapMs += (min(g, 2*p.gapMs) - p.gapMs) / 16
	}
}

// timeScale is how many times faster than ReferenceInterval the series is
// sampled, at least 1.
func (c *calibration) timeScale(cfg *ScoringConfig) float64 {
	ref := float64(time.Duration(cfg.ReferenceInterval).Milliseconds())
	if !(ref > 0 && c.daily.gapMs > 0) {
		return 1
	}
	return max(1, ref/float64(c.daily.gapMs))
}

// longWindow is the series' long window in samples at time scale ts.
func (c *calibration) longWindow(cfg *ScoringConfig, ts float64) float64 {
	return float64(max(cfg.LongWindow, 1)) * min(ts, maxTimeScale)
}

// bounds returns the band around pred (scale: the prediction error's
// unit): the values beyond which the error term, with the range term where
// it adds, reaches the threshold on its own (the level terms can open an
// anomaly inside the band). With InRangeErrorCap a value inside the
// series' range needs a far larger error (InRangeErrorExcess), so the band
// reaches to the range's edges and margin unless that error lies inside
// them. The range term is taken to add outside the range, although
// it does not to a record error (RangeWithErrorRecord): drawn from the
// threshold's surprise instead, the band of a young series, whose tail
// extrapolates slowly, was up to 2.5 times as wide. Called before the
// sample updates the calibration.
func (c *calibration) bounds(cfg *ScoringConfig, z *bandZ, pred, scale float64) (lower, upper float64) {
	ts := c.timeScale(cfg)
	adj, lw := math.Log(ts), c.longWindow(cfg, ts)
	b := c.errBand(cfg, lw)
	if !cfg.rangeCapsError() || c.vn == 0 || !(c.valMax > c.valMin) {
		half := b.half(zAtAdjusted(&z.threshold, adj), z.atThreshold+adj) * scale
		return pred - half, pred + half
	}
	half := b.half(zAtAdjusted(&z.outsideRange, adj), z.outsideRangeSurprise+adj) * scale
	lo, hi := c.rangeEdges(cfg)
	lower, upper = min(pred-half, lo), max(pred+half, hi)
	// Inside the range the error term is capped (inRangeError); where it can
	// still reach the threshold (a large excess, or a series that has seen
	// many samples at a fast scrape), the surprise that does is larger than
	// outside, so its band is wider. Only a range wider than the band
	// outside it can hold that edge.
	if m := c.warmCount(cfg); cfg.InRangeErrorExcess > 0 && m > 0 && (lower < pred-half || upper > pred+half) {
		if s, ok := cfg.inRangeSurpriseFor(z.atThreshold+adj, float64(m), lw); ok {
			// Rare (see above), so the surprise's z is not tabulated.
			inside := b.half(zAtLarge(s), s) * scale
			lower, upper = max(lower, pred-inside), min(upper, pred+inside)
		}
	}
	return lower, upper
}

// zAtLarge is zAt for surprises of 5 nats or more (within 0.03 nats),
// without the bisection: the fixed point of the Gaussian tail's asymptotic
// expansion,
// s = z²/2 + ln(z·√(2π)) − ln(1 − 1/z² + 3/z⁴).
func zAtLarge(s float64) float64 {
	z := math.Sqrt(2 * s)
	for range 3 {
		z2 := z * z
		series := max(1-1/z2+3/(z2*z2), 0.1)
		z = math.Sqrt(2 * max(s-math.Log(z*math.Sqrt(2*math.Pi)/series), 0.5))
	}
	return z
}
