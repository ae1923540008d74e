"""Classical baselines NeuMATCH reported on YMS (minimum distance and DTW),
and two trivial references that look at no feature at all.

The trivial references say what a policy that learned nothing scores:
``unmatched`` calls every clip unmatched; ``even`` spreads the clips evenly
over the texts in order (clip i to text floor(i * T_s / T_v)). A trained
aligner that does not clearly beat both has learned nothing that carries over.

MD and DTW (data/classical.py) work on cosine similarity between clips and
texts. Clip and text features live in different spaces, so a linear map from
clip space to text space is first fitted on the training split by ridge
regression (the joint embedding the classical baselines need); the unmatched
threshold (MD) and the drop cost (DTW) are chosen on the validation split.
"""

from __future__ import annotations

import numpy as np

from tfalign.data.classical import ALIGNERS, PARAMETERS, dtw_with_drop, minimum_distance, tune
from tfalign.data.ridge import RidgeMap
from tfalign.data.metrics import evaluate_alignments
from tfalign.errors import UserError

__all__ = ["METHODS", "TRIVIAL", "all_unmatched", "dtw_with_drop", "even_spread", "minimum_distance", "run_baseline"]


def all_unmatched(num_clips: int, num_texts: int) -> np.ndarray:
    return np.full(num_clips, -1, np.int64)


def even_spread(num_clips: int, num_texts: int) -> np.ndarray:
    return (np.arange(num_clips) * num_texts) // num_clips


TRIVIAL = {"unmatched": all_unmatched, "even": even_spread}
METHODS = ("md", "dtw", *TRIVIAL)


def run_baseline(name: str, train, val, test) -> dict:
    """Fits the embedding on train, tunes on val, reports metrics on test
    (the trivial references need neither)."""
    if name in TRIVIAL:
        return evaluate_alignments(test, [TRIVIAL[name](e.num_clips, e.num_texts) for e in test])
    if name not in ALIGNERS:
        raise UserError(f"baseline must be one of {list(METHODS)}, got {name!r}")
    embedding = RidgeMap.fit(train)  # the ridge-regression joint embedding (data/ridge.py)
    parameter = tune(name, embedding, val)
    predictions = [ALIGNERS[name](embedding.similarity(e), parameter) for e in test]
    result = evaluate_alignments(test, predictions)
    result["parameter"] = PARAMETERS[name]
    result["parameter_value"] = parameter
    return result
