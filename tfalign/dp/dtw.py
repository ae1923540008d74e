"""The classical baselines' dynamic programmes, in NumPy: minimum distance and
monotone DTW with a drop cost (data/classical.py tunes and fits them)."""

import numpy as np


def minimum_distance(similarity: np.ndarray, threshold: float) -> np.ndarray:
    """Each clip to its most similar text; unmatched below ``threshold``."""
    best = similarity.argmax(axis=1)
    return np.where(similarity.max(axis=1) >= threshold, best, -1)


def dtw_with_drop(similarity: np.ndarray, drop_cost: float) -> np.ndarray:
    """Monotone alignment minimizing sum(1 - cos) with a cost for dropped clips.

    D[i, j] is the least cost of the first i clips with every assigned text
    <= j; D[i, :] = cummin_j(D[i-1, :] + min(cost[i-1, :], drop)), one vector
    operation per clip. On the (clip, text) lattice (dp/lattice.py) this is
    the best path under the scores MATCH = cos - 1, POP_CLIP = -drop_cost,
    POP_TEXT = 0.
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
