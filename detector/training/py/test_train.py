"""Tests of the data handling in train.py (numpy only; no TensorFlow).

Run with the training venv: `make training-py-test`, or
.cache/py-train/bin/python -m pytest detector/training/py/test_train.py
"""

import json
import math
import os
import shutil
import subprocess

import numpy as np
import pytest

import train

HERE = os.path.dirname(os.path.abspath(__file__))


def write_corpus(root, files, windows):
    """files: {"cat/name.csv": [(timestamp, value), ...]}"""
    for rel, rows in files.items():
        path = os.path.join(root, "data", rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write("timestamp,value\n")
            for t, v in rows:
                f.write(f"{t},{v}\n")
    with open(os.path.join(root, "combined_windows.json"), "w") as f:
        json.dump(windows, f)


def ts(i):
    return f"2014-02-14 {i // 60:02d}:{i % 60:02d}:00"


# --- folds -------------------------------------------------------------------


def test_fold_split(tmp_path):
    names = {"cat1": ["c.csv", "a.csv", "b.csv", "d.csv", "e.csv"], "cat2": ["z.csv", "y.csv"]}
    files = {f"{c}/{n}": [(ts(0), 1)] for c, ns in names.items() for n in ns}
    write_corpus(tmp_path, files, {})
    (tmp_path / "data" / "cat1" / "notes.txt").write_text("not a series")
    assert train.fold_files(str(tmp_path), "A") == ["cat1/a.csv", "cat1/c.csv", "cat1/e.csv", "cat2/y.csv"]
    assert train.fold_files(str(tmp_path), "B") == ["cat1/b.csv", "cat1/d.csv", "cat2/z.csv"]
    assert train.fold_files(str(tmp_path), "all") == sorted(files)
    with pytest.raises(ValueError):
        train.fold_files(str(tmp_path), "C")


def test_folds_across_corpora(tmp_path):
    for corpus in ("one", "two"):
        write_corpus(tmp_path / corpus, {f"k/{n}.csv": [(ts(i), i) for i in range(3)] for n in "abc"}, {})
    dirs = [str(tmp_path / "one"), str(tmp_path / "two") + "/"]
    got = [s.name for s in train.load_corpora(dirs, "A", log=lambda m: None)]
    assert got == ["one/k/a.csv", "one/k/c.csv", "two/k/a.csv", "two/k/c.csv"]
    got = [s.name for s in train.load_corpora(dirs, "B", log=lambda m: None)]
    assert got == ["one/k/b.csv", "two/k/b.csv"]


def test_real_corpus_folds_are_disjoint_halves():
    d = os.path.join(HERE, "..", "..", "..", "..", "shared", "nab-dev")
    if not os.path.isdir(d):
        pytest.skip("../shared/nab-dev not present")
    a, b, both = (set(train.fold_files(d, f)) for f in ("A", "B", "all"))
    assert a and b and not a & b and a | b == both


# --- reading -----------------------------------------------------------------


def test_read_csv_drops_non_increasing_timestamps(tmp_path):
    rows = [(ts(0), 1), (ts(1), 2), (ts(1), 99), (ts(0), 98), (ts(2), "x"), (ts(3), 4)]
    write_corpus(tmp_path, {"c/s.csv": rows}, {})
    t, v, dropped = train.read_csv(tmp_path / "data" / "c" / "s.csv")
    assert dropped == 2
    assert np.diff(t).min() > 0
    assert v[:2].tolist() == [1, 2] and math.isnan(v[2]) and v[3] == 4


def test_label_mask_inclusive_with_fractional_seconds(tmp_path):
    rows = [(ts(i), i) for i in range(10)]
    wins = {"c/s.csv": [[ts(2) + ".000000", ts(4) + ".000000"], [ts(8), ts(8)]]}
    write_corpus(tmp_path, {"c/s.csv": rows}, wins)
    (s,) = train.load_corpora([str(tmp_path)], "all", log=lambda m: None)
    assert np.flatnonzero(s.labelled).tolist() == [2, 3, 4, 8]
    assert s.unmatched == 0
    _, unmatched = train.label_mask(s.timestamps, [["2014-02-14 00:02:30", ts(4)]])
    assert unmatched == 1


# --- normalisation -------------------------------------------------------------


def test_normalisation_equals_go():
    with open(os.path.join(HERE, "testdata", "normalise_go.json")) as f:
        cases = json.load(f)["cases"]
    for c in cases:
        z, mean, scale = train.normalise_windows(np.array([c["in"]], dtype=np.float64))
        want = np.array([np.float32(s) for s in c["out"]], dtype=np.float32)
        assert z.dtype == np.float32
        np.testing.assert_array_equal(z[0], want)
        assert mean[0] == float(c["mean"]) and scale[0] == float(c["scale"])


def test_normalisation_equals_js():
    node = shutil.which("node")
    if not node:
        pytest.skip("node not installed")
    rng = np.random.default_rng(3)
    vecs = [rng.normal(100, 5, 32), rng.lognormal(0, 3, 32), np.r_[np.zeros(120), 5e3], np.full(16, -7.25)]
    script = (
        "import('./src/normalise.js').then(({normaliseWindow}) => {"
        " const vecs = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        " console.log(JSON.stringify(vecs.map((v) => { const out = new Float32Array(v.length);"
        " const st = normaliseWindow(v, 0, v.length, out); return {out: Array.from(out), mean: st.mean, scale: st.scale}; })));"
        "})"
    )
    res = subprocess.run([node, "-e", script], input=json.dumps([v.tolist() for v in vecs]), capture_output=True,
                         text=True, cwd=os.path.join(HERE, ".."), check=True)
    for v, js in zip(vecs, json.loads(res.stdout)):
        z, mean, scale = train.normalise_windows(v[None, :])
        np.testing.assert_array_equal(z[0], np.array(js["out"], dtype=np.float32))
        assert mean[0] == js["mean"] and scale[0] == js["scale"]


def test_targets_are_normalised_with_the_window_and_clipped():
    y = train.normalise_targets([4.5 + 2.29128784747792, 1e9, -1e9], np.full(3, 4.5), np.full(3, 2.29128784747792))
    assert y.dtype == np.float32
    assert y.tolist() == [1.0, 10.0, -10.0]


def test_build_samples_window_and_target():
    vals = np.arange(20, dtype=np.float64) ** 2
    s = train.Series("c/x.csv", np.arange(20.0), vals, np.zeros(20, bool))
    x, y = train.build_samples([s], [np.array([4, 19])], 4)
    z, mean, scale = train.normalise_windows(np.stack([vals[0:4], vals[15:19]]))
    np.testing.assert_array_equal(x, z)
    np.testing.assert_array_equal(y, train.normalise_targets(vals[[4, 19]], mean, scale))


# --- masking and sampling --------------------------------------------------------


def series_with_labels(n, labelled, nan=()):
    vals = np.arange(n, dtype=np.float64)
    vals[list(nan)] = np.nan
    mask = np.zeros(n, bool)
    mask[list(labelled)] = True
    return train.Series("c/s.csv", np.arange(n, dtype=np.float64), vals, mask)


def test_target_masking():
    W = 4
    s = series_with_labels(30, labelled=[10, 11], nan=[20])
    tr, va = train.eligible_targets(s, W, 0)
    assert len(va) == 0
    for t in range(30):
        rows = range(t - W, t + 1)  # the window and its target
        ok = t >= W and not any(r in (10, 11, 20) for r in rows)
        assert (t in tr) == ok, t
    # No labelled target, no labelled input.
    assert not any(s.labelled[t - W:t + 1].any() for t in tr)


def test_validation_tail_does_not_overlap_training():
    W = 4
    s = series_with_labels(100, labelled=[])
    tr, va = train.eligible_targets(s, W, 0.2)
    assert tr.max() < 80 and va.min() == 80 + W and va.max() == 99
    assert tr.max() < va.min() - W  # no row in both a training and a validation sample


def test_quotas_are_proportional_and_capped():
    q = train.quotas([1000, 1000, 500, 100], 1300, [10_000, 10_000, 10_000, 40])
    assert q.tolist() == [500, 500, 250, 40]
    assert train.quotas([1, 1, 1], 10, [100] * 3).sum() == 10


def test_sampling_caps_long_series():
    rng = np.random.default_rng(0)
    long = series_with_labels(100_000, [])
    short = series_with_labels(2_000, [])
    pools = [train.eligible_targets(s, 8, 0)[0] for s in (long, short)]
    picks = train.sample_targets([long, short], pools, 3_000, cap=4_000, rng=rng)
    assert [len(p) for p in picks] == [2_000, 1_000]  # weights min(len, cap) = 4000 : 2000
    assert all(len(np.unique(p)) == len(p) for p in picks)


# --- loss ------------------------------------------------------------------------


def test_gaussian_nll():
    assert train.gaussian_nll([0.0], [0.0], [1.0]) == pytest.approx(0.5 * math.log(2 * math.pi))
    got = train.gaussian_nll([1.0, 3.0], [0.0, 1.0], [2.0, 0.5])
    want = np.mean([0.5 * math.log(2 * math.pi) + math.log(s) + 0.5 * ((y - m) / s) ** 2
                    for y, m, s in ((1.0, 0.0, 2.0), (3.0, 1.0, 0.5))])
    assert got == pytest.approx(want)


def test_f32_round_trips():
    for v in (0.1, -1.5275252, 1e-6, 3.4e38):
        assert np.float32(train.f32(v)) == np.float32(v)


@pytest.mark.parametrize("arch, version", [
    ("lstm", "gauss-lstm-w32-u16-foldA-s1"),
    ("linear", "gauss-linear-w32-foldA-s1"),
    ("lstm-ar", "gauss-lstm-ar-w32-u16-foldA-s1"),
])
def test_arch_names_the_model(arch, version):
    a = train.parse_args(["--data", "d", "--out", "o", "--fold", "A", "--arch", arch])
    assert (a.arch, a.model_version) == (arch, version)


def test_unknown_arch_is_refused():
    with pytest.raises(SystemExit):
        train.parse_args(["--data", "d", "--out", "o", "--arch", "gru"])
