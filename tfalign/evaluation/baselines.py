"""Classical baselines NeuMATCH reported on YMS (minimum distance and DTW),
and two trivial references that look at no feature at all.

The trivial references say what a policy that learned nothing scores:
``unmatched`` calls every clip unmatched; ``even`` spreads the clips evenly
over the texts in order (clip i to text floor(i * T_s / T_v)). A trained
aligner that does not clearly beat both has learned nothing that carries over.

MD and DTW work on cosine similarity between clips and texts. Clip and text
features live in different spaces, so a linear map from clip space to text
space is first fitted on the training split by ridge regression (the joint
embedding the classical baselines need); the unmatched threshold (MD) and the
drop cost (DTW) are chosen on the validation split.
"""

from __future__ import annotations

import numpy as np

from tfalign.data.ridge import RidgeMap

from tfalign.errors import UserError
from tfalign.evaluation.metrics import evaluate_alignments


def minimum_distance(similarity: np.ndarray, threshold: float) -> np.ndarray:
    """Each clip to its most similar text; unmatched below ``threshold``."""
    best = similarity.argmax(axis=1)
    return np.where(similarity.max(axis=1) >= threshold, best, -1)


def dtw_with_drop(similarity: np.ndarray, drop_cost: float) -> np.ndarray:
    """Monotone alignment minimizing sum(1 - cos) with a cost for dropped clips.

    D[i, j] is the least cost of the first i clips with every assigned text
    <= j; D[i, :] = cummin_j(D[i-1, :] + min(cost[i-1, :], drop)), one vector
    operation per clip.
    """
    cost = 1.0 - similarity
    num_clips, num_texts = cost.shape
    step = np.minimum(cost, drop_cost)
    table = np.zeros((num_clips + 1, num_texts))
    for i in range(num_clips):
        table[i + 1] = np.minimum.accumulate(table[i] + step[i])
    assignment = np.full(num_clips, -1)
    text = num_texts - 1
    for i in range(num_clips, 0, -1):
        # Move left while the optimum came from a smaller text index.
        while text > 0 and table[i, text] == table[i, text - 1]:
            text -= 1
        if cost[i - 1, text] < drop_cost:
            assignment[i - 1] = text
    return assignment


BASELINES = {"md": minimum_distance, "dtw": dtw_with_drop}


def all_unmatched(num_clips: int, num_texts: int) -> np.ndarray:
    return np.full(num_clips, -1, np.int64)


def even_spread(num_clips: int, num_texts: int) -> np.ndarray:
    return (np.arange(num_clips) * num_texts) // num_clips


TRIVIAL = {"unmatched": all_unmatched, "even": even_spread}
METHODS = ("md", "dtw", *TRIVIAL)


def _tune(name, embedding, episodes) -> float:
    """The threshold (md) or drop cost (dtw) with the best validation clip accuracy."""
    sims = [embedding.similarity(e) for e in episodes]
    pooled = np.concatenate([s.max(axis=1) for s in sims])
    candidates = np.quantile(pooled, np.linspace(0.0, 0.6, 13))
    if name == "dtw":
        candidates = 1.0 - candidates  # a drop costs as much as a match at that similarity
    scores = [evaluate_alignments(episodes, [BASELINES[name](s, c) for s in sims])["clip_accuracy"] for c in candidates]
    return float(candidates[int(np.argmax(scores))])


def run_baseline(name: str, train, val, test) -> dict:
    """Fits the embedding on train, tunes on val, reports metrics on test
    (the trivial references need neither)."""
    if name in TRIVIAL:
        return evaluate_alignments(test, [TRIVIAL[name](e.num_clips, e.num_texts) for e in test])
    if name not in BASELINES:
        raise UserError(f"baseline must be one of {list(METHODS)}, got {name!r}")
    embedding = RidgeMap.fit(train)  # the ridge-regression joint embedding (data/ridge.py)
    parameter = _tune(name, embedding, val)
    predictions = [BASELINES[name](embedding.similarity(e), parameter) for e in test]
    result = evaluate_alignments(test, predictions)
    result["parameter"] = {"md": "threshold", "dtw": "drop_cost"}[name]
    result["parameter_value"] = parameter
    return result
