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
