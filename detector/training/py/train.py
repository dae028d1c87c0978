#!/usr/bin/env python3
"""Trains the Sentinel Mesh distribution forecaster (model.json format
sentinel-mesh/v2, docs/model.md) with TensorFlow/Keras on labelled CSV corpora
and exports it to ONNX with tf2onnx.

    python train.py --data ../shared/nab-dev --data ../shared/ops-dev --fold A --out models/folds/A

The network reads one z-normalised window [batch, W, 1] and predicts a Gaussian
for the next normalised value: its mean (output "prediction") and its standard
deviation (output "scale" = softplus(raw) + 1e-3). It is trained with the
Gaussian negative log-likelihood on windows whose inputs and target are all
unlabelled rows, so labelled anomalies are never learned as normal.

docs/training.md explains the flags, the folds and the pinned versions. The data
handling (everything above the "TensorFlow" marker) imports only numpy, so the
unit tests (test_train.py) run without TensorFlow.
"""

import argparse
import datetime
import json
import math
import os
import sys
import time

import numpy as np

FORMAT = "sentinel-mesh/v2"
OPSET = 17
INPUT_NAME = "window"
OUTPUT_NAME = "prediction"
SCALE_NAME = "scale"
# Keep the key order of the v1 trainer (detector/training/src/normalise.js).
NORMALISATION = {"kind": "zscore-window", "min_scale_rel": 1e-3, "min_scale_abs": 1e-6, "clip": 10}
SCALE_FLOOR = 1e-3  # scale = softplus(raw) + SCALE_FLOOR, so it is always > 0
HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


# ---------------------------------------------------------------------------
# Data: corpora, folds, labels


def parse_timestamp(s):
    """Seconds since the Unix epoch (UTC) of "2014-02-14 14:30:00", optionally
    with fractional seconds ("...:00.000000") or a "T" separator."""
    s = s.strip()
    d = datetime.datetime.fromisoformat(s)
    if d.tzinfo is None:
        d = d.replace(tzinfo=datetime.timezone.utc)
    return d.timestamp()


class Series:
    """One CSV file: values in row order after dropping rows whose timestamp is
    not after the previous kept row's, and which rows are labelled."""

    def __init__(self, name, timestamps, values, labelled, dropped=0, unmatched=0):
        self.name = name  # "<corpus>/<category>/<file>.csv"
        self.timestamps = timestamps  # float64 seconds
        self.values = values  # float64, NaN for unparsable values
        self.labelled = labelled  # bool
        self.dropped = dropped  # rows dropped for a non-increasing timestamp
        self.unmatched = unmatched  # label window ends that match no row

    def __len__(self):
        return len(self.values)


def read_csv(path):
    """Reads a "timestamp,value" file. Returns (timestamps, values, dropped):
    rows whose timestamp is not after the previous kept row's are dropped;
    values that are not numbers become NaN (windows holding them are skipped)."""
    ts, vals = [], []
    dropped = 0
    last = -math.inf
    with open(path, encoding="utf-8") as f:
        header = f.readline().strip().lower().replace(" ", "")
        if header != "timestamp,value":
            raise ValueError(f"{path}: header is {header!r}, want 'timestamp,value'")
        for lineno, line in enumerate(f, start=2):
            line = line.strip()
            if not line:
                continue
            t_str, sep, v_str = line.partition(",")
            if not sep:
                raise ValueError(f"{path}:{lineno}: want 'timestamp,value', got {line!r}")
            t = parse_timestamp(t_str)
            if not t > last:
                dropped += 1
                continue
            last = t
            try:
                v = float(v_str)
            except ValueError:
                v = math.nan
            ts.append(t)
            vals.append(v if math.isfinite(v) else math.nan)
    return np.array(ts, dtype=np.float64), np.array(vals, dtype=np.float64), dropped


def label_mask(timestamps, windows):
    """Rows inside any [start, end] window (inclusive). Returns (mask, the
    number of window ends that match no row exactly)."""
    mask = np.zeros(len(timestamps), dtype=bool)
    unmatched = 0
    for start, end in windows:
        a, b = parse_timestamp(start), parse_timestamp(end)
        lo = np.searchsorted(timestamps, a, side="left")
        hi = np.searchsorted(timestamps, b, side="right")
        mask[lo:hi] = True
        unmatched += int(lo >= len(timestamps) or timestamps[lo] != a)
        unmatched += int(hi == 0 or timestamps[hi - 1] != b)
    return mask, unmatched


def fold_files(data_dir, fold):
    """The "<category>/<file>.csv" names of a corpus that belong to a fold: within
    each category folder the files sorted by name, fold A the indexes 0, 2, 4, ...,
    fold B 1, 3, 5, ..., "all" both."""
    if fold not in ("A", "B", "all"):
        raise ValueError(f"fold must be A, B or all, got {fold!r}")
    root = os.path.join(data_dir, "data")
    if not os.path.isdir(root):
        raise FileNotFoundError(f"{data_dir}: no data/ folder")
    out = []
    for category in sorted(os.listdir(root)):
        cdir = os.path.join(root, category)
        if not os.path.isdir(cdir):
            continue
        files = sorted(f for f in os.listdir(cdir) if f.endswith(".csv"))
        for i, f in enumerate(files):
            if fold == "all" or (fold == "A") == (i % 2 == 0):
                out.append(f"{category}/{f}")
    return out


def corpus_name(data_dir):
    return os.path.basename(os.path.normpath(data_dir))


def load_corpora(data_dirs, fold, log=print):
    """Loads the fold's series of every corpus, in corpus order then name order."""
    series = []
    for d in data_dirs:
        name = corpus_name(d)
        wpath = os.path.join(d, "combined_windows.json")
        with open(wpath, encoding="utf-8") as f:
            windows = json.load(f)
        for rel in fold_files(d, fold):
            ts, vals, dropped = read_csv(os.path.join(d, "data", rel))
            if rel not in windows:
                log(f"warning: {name}/{rel} has no entry in combined_windows.json; treated as unlabelled")
            mask, unmatched = label_mask(ts, windows.get(rel, []))
            if unmatched:
                log(f"warning: {name}/{rel}: {unmatched} label window ends match no row")
            series.append(Series(f"{name}/{rel}", ts, vals, mask, dropped, unmatched))
    return series


# ---------------------------------------------------------------------------
# Windows and normalisation


def eligible_targets(s, window, val_share):
    """Target row indexes t (the window is rows t-W .. t-1) usable for training
    and for validation. A sample is usable when none of its W+1 rows is labelled
    or missing. The last val_share of the rows is the validation part; its
    windows start at or after the split, so no row is in both parts."""
    n = len(s)
    bad = s.labelled | ~np.isfinite(s.values)
    cs = np.concatenate([[0], np.cumsum(bad)])
    t = np.arange(window, n)
    ok = (cs[t + 1] - cs[t - window]) == 0
    t = t[ok]
    split = int(math.floor(n * (1 - val_share))) if val_share > 0 else n
    return t[t < split], t[t >= split + window]


def quotas(weights, total, available):
    """Splits total in proportion to weights (largest remainder), each share
    capped at what the series has available."""
    weights = np.asarray(weights, dtype=np.float64)
    if total <= 0 or weights.sum() <= 0:
        return np.zeros(len(weights), dtype=np.int64)
    exact = total * weights / weights.sum()
    q = np.floor(exact).astype(np.int64)
    rest = int(total - q.sum())
    order = np.argsort(-(exact - q), kind="stable")
    q[order[:rest]] += 1
    return np.minimum(q, np.asarray(available, dtype=np.int64))


def sample_targets(series, pools, total, cap, rng):
    """Picks about total targets: each series contributes in proportion to
    min(its length, cap), without replacement, at most what its pool holds."""
    weights = [min(len(s), cap) for s in series]
    q = quotas(weights, total, [len(p) for p in pools])
    return [np.sort(rng.choice(p, size=k, replace=False)) if k else p[:0] for p, k in zip(pools, q)]


def normalise_windows(raw, norm=NORMALISATION):
    """Normalises windows raw [n, W] (float64) exactly like detector/normalise.go:
    sums accumulated in row order in float64, population std,
    scale = max(std, min_scale_rel*|mean|, min_scale_abs), clip. Returns
    (float32 [n, W], mean [n], scale [n])."""
    raw = np.asarray(raw, dtype=np.float64)
    n, w = raw.shape
    s = np.zeros(n)
    for i in range(w):  # sequential, the same order as the Go and JS loops
        s += raw[:, i]
    mean = s / w
    ss = np.zeros(n)
    for i in range(w):
        d = raw[:, i] - mean
        ss += d * d
    std = np.sqrt(ss / w)
    scale = np.maximum(np.maximum(std, norm["min_scale_rel"] * np.abs(mean)), norm["min_scale_abs"])
    z = np.clip((raw - mean[:, None]) / scale[:, None], -norm["clip"], norm["clip"])
    return z.astype(np.float32), mean, scale


def normalise_targets(values, mean, scale, norm=NORMALISATION):
    return np.clip((np.asarray(values, dtype=np.float64) - mean) / scale, -norm["clip"], norm["clip"]).astype(np.float32)


def build_samples(series, targets, window, norm=NORMALISATION):
    """Normalised inputs [n, W] float32 and targets [n] float32 for the given
    target indexes of each series (series order, then row order)."""
    xs, ys = [], []
    offsets = np.arange(-window, 0)
    for s, t in zip(series, targets):
        if not len(t):
            continue
        raw = s.values[t[:, None] + offsets]
        x, mean, scale = normalise_windows(raw, norm)
        xs.append(x)
        ys.append(normalise_targets(s.values[t], mean, scale, norm))
    if not xs:
        return np.zeros((0, window), np.float32), np.zeros((0,), np.float32)
    return np.concatenate(xs), np.concatenate(ys)


def gaussian_nll(y, mean, scale):
    """Mean negative log-likelihood (nats) of y under N(mean, scale^2)."""
    y, mean, scale = (np.asarray(a, dtype=np.float64) for a in (y, mean, scale))
    z = (y - mean) / scale
    return float(np.mean(HALF_LOG_2PI + np.log(scale) + 0.5 * z * z))


def r6(v):
    """Six significant digits, like the tfjs trainer's model.json numbers."""
    v = float(v)
    return float(f"{v:.6g}") if math.isfinite(v) else None


def f32(v):
    """The shortest decimal that reads back as the same float32."""
    return float(repr(np.float32(v)))


# ---------------------------------------------------------------------------
# Command line


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", action="append", required=True, metavar="DIR",
                   help="corpus folder: data/<category>/<file>.csv and combined_windows.json (repeatable)")
    p.add_argument("--fold", default="all", choices=["A", "B", "all"],
                   help="files per category sorted by name: A = 0, 2, 4, ...; B = 1, 3, 5, ... (default all)")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory (model.onnx, model.json, parity.json)")
    p.add_argument("--window", type=int, default=32, help="W, values per window (32)")
    p.add_argument("--units", type=int, default=16, help="LSTM units (16)")
    p.add_argument("--arch", default="lstm", choices=["lstm", "linear", "lstm-ar"],
                   help="lstm: LSTM(units) -> Dense(2); linear: Dense(2) on the window (a learned linear autoregression, the LSTM's learned baseline)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--windows", type=int, default=300000, help="training windows sampled (300000)")
    p.add_argument("--val-share", type=float, default=0.1,
                   help="the last share of each series held out for validation; validation windows = windows * share (0.1)")
    p.add_argument("--series-cap", type=int, default=10000,
                   help="a series contributes windows in proportion to min(its rows, this) (10000)")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--lr-final", type=float, default=1e-4,
                   help="the learning rate decays from --lr to this along a cosine over all steps (1e-4)")
    p.add_argument("--clipnorm", type=float, default=10, help="clip each batch's gradient norm to this (10; 0: off)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=0, help="TensorFlow intra-op threads (0: one per core)")
    p.add_argument("--parity", type=int, default=64, help="windows in parity.json (64)")
    p.add_argument("--model-version", help="model.json version (default gauss-lstm-w<W>-u<units>-<fold>-s<seed>)")
    a = p.parse_args(argv)
    if not 2 <= a.window <= 4096:
        p.error("--window must be between 2 and 4096")
    if not (a.lr > 0 and a.lr_final > 0 and a.clipnorm >= 0):
        p.error("--lr and --lr-final must be > 0, --clipnorm >= 0")
    if a.units < 1 or a.epochs < 1 or a.windows < 1 or a.batch < 1 or a.series_cap < 1 or a.parity < 2:
        p.error("--units, --epochs, --windows, --batch, --series-cap must be >= 1 and --parity >= 2")
    if not 0 <= a.val_share < 0.9:
        p.error("--val-share must be in [0, 0.9)")
    if not a.model_version:
        fold = "all" if a.fold == "all" else "fold" + a.fold
        net = {"lstm": f"lstm-w{a.window}-u{a.units}", "linear": f"linear-w{a.window}", "lstm-ar": f"lstm-ar-w{a.window}-u{a.units}"}[a.arch]
        a.model_version = f"gauss-{net}-{fold}-s{a.seed}"
    return a


def prepare_data(args, log=print):
    """Loads the corpora and samples the training and validation windows."""
    series = load_corpora(args.data, args.fold, log)
    if not series:
        raise SystemExit("no series in the chosen fold")
    rng = np.random.default_rng(args.seed)
    pools = [eligible_targets(s, args.window, args.val_share) for s in series]
    train_t = sample_targets(series, [p[0] for p in pools], args.windows, args.series_cap, rng)
    n_val = int(round(args.windows * args.val_share))
    val_t = sample_targets(series, [p[1] for p in pools], n_val, args.series_cap, rng)
    x, y = build_samples(series, train_t, args.window)
    vx, vy = build_samples(series, val_t, args.window)
    perm = rng.permutation(len(x))
    x, y = x[perm], y[perm]
    available = sum(len(p[0]) for p in pools)
    log(f"series={len(series)} rows={sum(len(s) for s in series)} labelled={sum(int(s.labelled.sum()) for s in series)} "
        f"dropped_rows={sum(s.dropped for s in series)} train_windows={len(x)} (of {available} eligible) val_windows={len(vx)}")
    if len(x) < args.batch:
        raise SystemExit(f"only {len(x)} training windows; need more data")
    return series, (x, y), (vx, vy), rng


# ---------------------------------------------------------------------------
# TensorFlow


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    t0 = time.time()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    import tf2onnx
    import onnx

    keras = tf.keras
    keras.utils.set_random_seed(args.seed)
    tf.config.experimental.enable_op_determinism()
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    from importlib.metadata import version as dist_version

    framework = f"tensorflow {tf.__version__} (keras {dist_version('keras')})"
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    log(framework)

    series, (x, y), (vx, vy), rng = prepare_data(args, log)
    W = args.window

    # Network: LSTM(units) -> Dense(2) -> (mean, softplus(raw) + floor).
    inp = keras.Input((W, 1), name=INPUT_NAME)
    # lstm-ar feeds the Dense both the LSTM's output and the window itself.
    parts = []
    if args.arch in ("lstm", "lstm-ar"):
        parts.append(keras.layers.LSTM(args.units, activation="tanh", recurrent_activation="sigmoid", unit_forget_bias=True, name="lstm")(inp))
    if args.arch in ("linear", "lstm-ar"):
        parts.append(keras.layers.Flatten(name="flatten")(inp))
    h = parts[0] if len(parts) == 1 else keras.layers.Concatenate(name="lstm_ar")(parts)
    # The scale's bias starts at softplus^-1(1): an initial scale of about 1, the
    # spread of a normalised target.
    raw = keras.layers.Dense(2, name="dense", bias_initializer=keras.initializers.Constant([0.0, math.log(math.e - 1)]))(h)
    mean = keras.layers.Lambda(lambda t: t[:, 0:1], name=OUTPUT_NAME)(raw)
    scale = keras.layers.Lambda(lambda t: tf.nn.softplus(t[:, 1:2]) + SCALE_FLOOR, name=SCALE_NAME)(raw)
    infer = keras.Model(inp, [mean, scale], name="sentinel_mesh_gauss")
    trainer = keras.Model(inp, keras.layers.Concatenate(name="mean_scale")([mean, scale]))

    def nll(y_true, p):
        mu, s = p[:, 0:1], p[:, 1:2]
        z = (y_true - mu) / s
        return HALF_LOG_2PI + tf.math.log(s) + 0.5 * tf.square(z)

    steps = args.epochs * math.ceil(len(x) / args.batch)
    lr = keras.optimizers.schedules.CosineDecay(args.lr, decay_steps=steps, alpha=min(1.0, args.lr_final / args.lr))
    trainer.compile(optimizer=keras.optimizers.Adam(learning_rate=lr, clipnorm=args.clipnorm or None), loss=nll)
    params = int(infer.count_params())
    net = {"lstm": f"LSTM({args.units}) -> Dense(2)", "linear": f"Dense(2) on the {W} values",
           "lstm-ar": f"Dense(2) on LSTM({args.units}) and the {W} values"}[args.arch]
    arch = f"{net} -> (mean, softplus + {SCALE_FLOOR:g})"
    log(f"architecture {arch} params={params}")

    def predict(xs):
        m, s = infer.predict(xs[..., None], batch_size=4096, verbose=0)
        return m[:, 0], s[:, 0]

    x3 = x[..., None]
    y2 = y[:, None]
    history = []

    class EpochSummary(keras.callbacks.Callback):
        """Validation NLL after every epoch; stops on a non-finite loss."""

        def on_epoch_end(self, epoch, logs=None):
            loss = float(logs["loss"])
            if not math.isfinite(loss):
                raise SystemExit(f"training diverged: loss {loss} at epoch {epoch + 1}")
            entry = {"epoch": epoch + 1, "loss": r6(loss)}
            if len(vx):
                vm, vs = predict(vx)
                entry["val_nll"] = r6(gaussian_nll(vy, vm, vs))
            history.append(entry)
            log(f"epoch {epoch + 1}/{args.epochs} loss={loss:.5f}" + (f" val_nll={entry['val_nll']:.5f}" if len(vx) else ""))

    t_train = time.time()
    trainer.fit(x[..., None], y[:, None], batch_size=args.batch, epochs=args.epochs, shuffle=True,
                verbose=1 if sys.stderr.isatty() else 2, callbacks=[EpochSummary()])
    loss = history[-1]["loss"]
    train_seconds = time.time() - t_train

    # Validation: the model against the window-mean baseline (mean 0, scale =
    # the training targets' std), in nats per window and normalised units.
    sigma = float(np.std(y.astype(np.float64)))
    val = {}
    if len(vx):
        vm, vs = predict(vx)
        z = np.abs(vy.astype(np.float64) - vm) / vs
        val = {
            "validation_loss": r6(gaussian_nll(vy, vm, vs)),
            "validation_nll": r6(gaussian_nll(vy, vm, vs)),
            "validation_baseline_nll": r6(gaussian_nll(vy, np.zeros_like(vy), np.full(len(vy), sigma))),
            "validation_mse": r6(np.mean((vy.astype(np.float64) - vm) ** 2)),
            "validation_baseline_mean": r6(np.mean(vy.astype(np.float64) ** 2)),
            "validation_coverage_95": r6(np.mean(z <= 1.959964)),
        }
        log(f"validation nll: model={val['validation_nll']} window-mean baseline={val['validation_baseline_nll']} "
            f"(sigma={sigma:.4f}); mse: model={val['validation_mse']} baseline={val['validation_baseline_mean']}; "
            f"95% interval coverage {val['validation_coverage_95']}")

    # Parity fixture: half validation windows, half training windows.
    prng = np.random.default_rng(args.seed + 104729)
    P = args.parity
    nv = min(P // 2, len(vx))
    px = np.concatenate([vx[prng.choice(len(vx), nv, replace=False)] if nv else vx[:0],
                         x[prng.choice(len(x), P - nv, replace=False)]])
    pm, ps = predict(px)

    # Export: tf2onnx from a tf.function with the contract's names.
    spec = (tf.TensorSpec((None, W, 1), tf.float32, name=INPUT_NAME),)

    @tf.function(input_signature=spec)
    def serve(window):
        m, s = infer(window, training=False)
        return {OUTPUT_NAME: m, SCALE_NAME: s}

    proto, _ = tf2onnx.convert.from_function(serve, input_signature=spec, opset=OPSET)
    finish_graph(proto, args, arch)
    onnx.checker.check_model(proto)
    ref_diff = reference_check(proto, px, pm, ps)
    log(f"export check: max |onnx reference - keras| = {ref_diff:.3e} over {P} windows")
    if not ref_diff <= 1e-4:
        raise SystemExit(f"exported ONNX graph disagrees with Keras (max diff {ref_diff})")

    iso = lambda t: datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    meta = {
        "format": FORMAT,
        "version": args.model_version,
        "window": W,
        "input": INPUT_NAME,
        "output": OUTPUT_NAME,
        "scale_output": SCALE_NAME,
        "normalisation": dict(NORMALISATION),
        "architecture": arch,
        "opset": OPSET,
        "training": {
            "source": "csv",
            "data": [corpus_name(d) for d in args.data],
            "fold": args.fold,
            "series": len(series),
            "files": [s.name for s in series],
            "seed": args.seed,
            "windows": int(len(x)),
            "validation_windows": int(len(vx)),
            "val_share": args.val_share,
            "series_cap": args.series_cap,
            "epochs": args.epochs,
            "batch_size": args.batch,
            "learning_rate": args.lr,
            "learning_rate_final": args.lr_final,
            "clipnorm": args.clipnorm,
            "loss": r6(loss),
            "loss_kind": "gaussian_nll",
            **val,
            "baseline_scale": r6(sigma),
            "history": history,
            "range": {"start": iso(min(s.timestamps[0] for s in series if len(s))),
                      "end": iso(max(s.timestamps[-1] for s in series if len(s)))},
            "framework": framework,
            "parameters": params,
        },
    }
    parity = {
        "window": W,
        "count": P,
        "inputs": [[f32(v) for v in row] for row in px],
        "predictions": [f32(v) for v in pm],
        "scales": [f32(v) for v in ps],
        "tolerance": 1e-5,
        "produced_by": framework,
    }
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "model.onnx"), "wb") as f:
        f.write(proto.SerializeToString())
    with open(os.path.join(args.out, "model.json"), "w", encoding="utf-8") as f:
        f.write(json.dumps(meta, indent=2) + "\n")
    with open(os.path.join(args.out, "parity.json"), "w", encoding="utf-8") as f:
        f.write(json.dumps(parity, separators=(",", ":")) + "\n")
    total = time.time() - t0
    windows_per_s = len(x) * args.epochs / train_seconds
    log(f"wrote {args.out}/{{model.onnx,model.json,parity.json}}; training {train_seconds:.1f} s "
        f"({windows_per_s:.0f} windows/s over {args.epochs} epochs of {len(x)}), total {total:.1f} s")
    return {"meta": meta, "train_seconds": train_seconds, "total_seconds": total, "windows_per_second": windows_per_s}


def finish_graph(proto, args, arch):
    """Names the symbolic batch dimension "batch" on the graph's input and
    outputs, and records the model's identity in the ONNX metadata."""
    g = proto.graph
    for vi in list(g.input) + list(g.output):
        d0 = vi.type.tensor_type.shape.dim[0]
        d0.Clear()
        d0.dim_param = "batch"
    names = [o.name for o in g.output]
    if [i.name for i in g.input] != [INPUT_NAME] or sorted(names) != sorted([OUTPUT_NAME, SCALE_NAME]):
        raise SystemExit(f"unexpected graph signature: inputs {[i.name for i in g.input]}, outputs {names}")
    # Mean first, then scale (the order of model.json's fields).
    outs = sorted(g.output, key=lambda o: o.name != OUTPUT_NAME)
    outs = [type(o).FromString(o.SerializeToString()) for o in outs]
    del g.output[:]
    g.output.extend(outs)
    canonical_names(g)
    proto.doc_string = f"Sentinel Mesh {arch}; see docs/model.md"
    del proto.metadata_props[:]
    for k, v in (("version", args.model_version), ("window", str(args.window)), ("format", FORMAT)):
        e = proto.metadata_props.add()
        e.key, e.value = k, v


def canonical_names(g):
    """Renames nodes, intermediate tensors and initializers by position
    (<op>_<i>, <node>:<j>, const_<k> in order of first use). tf2onnx's
    optimiser names (and deduplicates) constants in an order that varies from
    run to run; with these names the same weights give the same bytes."""
    keep = {i.name for i in g.input} | {o.name for o in g.output}
    inits = {i.name: i for i in g.initializer}
    rename = {}
    order = []
    for node in g.node:
        for name in node.input:
            if name in inits and name not in rename:
                rename[name] = f"const_{len(order)}"
                order.append(inits[name])
    for i, node in enumerate(g.node):
        node.name = f"{node.op_type}_{i}"
        for j, name in enumerate(node.output):
            if name and name not in keep:
                rename[name] = f"{node.name}:{j}"
    for node in g.node:
        for j, name in enumerate(node.input):
            if name in rename:
                node.input[j] = rename[name]
        for j, name in enumerate(node.output):
            if name in rename:
                node.output[j] = rename[name]
    unused = [i for i in g.initializer if i.name not in rename]
    order = [type(i).FromString(i.SerializeToString()) for i in order]
    for i in order:
        i.name = rename[i.name]
    del g.initializer[:]
    g.initializer.extend(order)
    if unused:
        raise SystemExit(f"unused initializers in the exported graph: {[i.name for i in unused]}")
    del g.value_info[:]


def reference_check(proto, px, pm, ps):
    """Runs the exported graph with onnx's own reference evaluator (float32,
    independent of TensorFlow and ONNX Runtime) and returns the largest
    difference to the Keras outputs."""
    from onnx.reference import ReferenceEvaluator

    sess = ReferenceEvaluator(proto)
    m, s = sess.run([OUTPUT_NAME, SCALE_NAME], {INPUT_NAME: px[..., None].astype(np.float32)})
    return float(max(np.max(np.abs(m[:, 0] - pm)), np.max(np.abs(s[:, 0] - ps))))


if __name__ == "__main__":
    main()
