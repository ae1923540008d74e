"""The calibration figures (tfalign/evaluation/calibration.py) against plain references written here."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tfalign.evaluation import calibration

probabilities = st.lists(st.tuples(st.floats(0, 1), st.booleans()), min_size=1, max_size=60)


@settings(max_examples=60)
@given(probabilities)
def test_ece_is_the_weighted_gap_of_each_bin(pairs):
    confidence = np.array([p for p, _ in pairs])
    right = np.array([r for _, r in pairs])
    expected = 0.0
    for b in range(calibration.BINS):  # bin b holds [b/10, (b+1)/10), the last one 1.0 too
        inside = [(p, r) for p, r in pairs if min(int(p * 10), 9) == b]
        if inside:
            gap = abs(np.mean([p for p, _ in inside]) - np.mean([r for _, r in inside]))
            expected += gap * len(inside) / len(pairs)
    assert abs(calibration.expected_calibration_error(confidence, right) - expected) < 1e-9


@settings(max_examples=60)
@given(st.lists(st.tuples(st.integers(0, 5), st.booleans()), min_size=2, max_size=30))
def test_auroc_is_the_share_of_ordered_pairs_by_ranks(pairs):
    scores = np.array([s for s, _ in pairs], float)
    positive = np.array([p for _, p in pairs])
    result = calibration.auroc(scores, positive)
    if positive.all() or not positive.any():
        assert result is None
        return
    # Mann-Whitney from average ranks: (rank sum of the positives - n+(n+ + 1)/2) / (n+ n-).
    order = np.argsort(scores, kind="stable")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    for value in np.unique(scores):  # ties share their average rank
        ranks[scores == value] = ranks[scores == value].mean()
    n_pos, n_neg = positive.sum(), (~positive).sum()
    assert abs(result - (ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)) < 1e-12


def test_calibrated_confidence_has_a_small_ece_and_a_shifted_one_does_not():
    rng = np.random.default_rng(0)
    confidence = rng.uniform(size=20000)
    right = rng.uniform(size=20000) < confidence  # right exactly as often as it says
    assert calibration.expected_calibration_error(confidence, right) < 0.02
    assert calibration.expected_calibration_error(confidence ** 3, right) > 0.15  # under-confident
    assert calibration.negative_log_likelihood(confidence, right) < calibration.negative_log_likelihood(
        confidence ** 3, right)


def _benchmark():
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "calibration.py"
    spec = importlib.util.spec_from_file_location("calibration_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 20), st.floats(0, 1), st.integers(1, 4)), min_size=1, max_size=12))
def test_the_benchmark_s_isotonic_fit_is_the_min_max_formula(points):
    """The pool-adjacent-violators fit against the closed form of isotonic regression: at the
    i-th point in x order, max over a <= i of min over b >= i of the weighted mean of a..b."""
    isotonic = _benchmark().isotonic
    x = np.array([p[0] for p in points], float) + np.arange(len(points)) * 1e-3  # distinct x: one order
    y, w = np.array([p[1] for p in points]), np.array([p[2] for p in points], float)
    order = np.argsort(x)
    xs, ys, ws = x[order], y[order], w[order]
    n = len(points)
    mean = lambda a, b: np.sum(ws[a:b + 1] * ys[a:b + 1]) / np.sum(ws[a:b + 1])  # noqa: E731
    expected = [max(min(mean(a, b) for b in range(i, n)) for a in range(i + 1)) for i in range(n)]
    knots_x, knots_y = isotonic(x, y, w)
    assert np.all(np.diff(knots_y) > -1e-12)
    # A knot's block is the run of points from where the last one ended whose weighted mean x is
    # the knot's (one run length: with increasing x the running mean increases strictly).
    fitted, start = [], 0
    for knot_x, knot_y in zip(knots_x, knots_y):
        size = next(k for k in range(1, n - start + 1)
                    if abs(np.sum(ws[start:start + k] * xs[start:start + k]) / np.sum(ws[start:start + k]) - knot_x)
                    < 1e-9)
        fitted += [knot_y] * size
        start += size
    assert start == n
    np.testing.assert_allclose(fitted, expected, atol=1e-9)


def test_the_benchmark_s_auroc_standard_error_matches_a_simulation():
    """Hanley and McNeil's standard error against the spread of AUROCs measured on 7 positives and
    8 negatives drawn from two normal distributions 1.19 apart (a true AUROC of 0.8)."""
    benchmark = _benchmark()
    rng = np.random.default_rng(0)
    areas = [calibration.auroc(np.concatenate([rng.normal(1.19, 1, 7), rng.normal(0, 1, 8)]),
                               np.arange(15) < 7) for _ in range(3000)]
    assert abs(np.mean(areas) - 0.8) < 0.01
    assert abs(benchmark.auroc_standard_error(0.8, 7, 8) - np.std(areas)) < 0.015


def test_the_benchmark_s_calibrated_floor_is_the_ece_of_honest_coin_flips():
    benchmark = _benchmark()
    confidence = np.random.default_rng(1).uniform(0.3, 1.0, 2000)
    floor = benchmark.ece_if_calibrated(confidence)
    assert 0.005 < floor["mean"] < floor["p95"] < 0.04  # sampling noise alone, above zero
    assert benchmark.ece_if_calibrated(np.ones(500))["p95"] == 0.0  # certain and right: no gap
