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

Features that already share a space (a vision-language encoder's, data/ridge.py)
need no map: ``zero-shot`` is DTW on their centred cosine similarity, no training
video read (the drop cost tuned on validation), and ``dtw-prior`` DTW on the
map pulled toward the identity (the recipe's closed form; on features of two
spaces it is ``dtw``).
"""

from __future__ import annotations

import numpy as np

from tfalign.data.classical import ALIGNERS, PARAMETERS, DTWFit, dtw_with_drop, minimum_distance, tune
from tfalign.data.ridge import RidgeMap
from tfalign.data.metrics import evaluate_alignments
from tfalign.errors import UserError

__all__ = ["METHODS", "SHARED_SPACE", "TRIVIAL", "all_unmatched", "dtw_with_drop", "even_spread", "minimum_distance",
           "run_baseline"]


def all_unmatched(num_clips: int, num_texts: int) -> np.ndarray:
    return np.full(num_clips, -1, np.int64)


def even_spread(num_clips: int, num_texts: int) -> np.ndarray:
    return (np.arange(num_clips) * num_texts) // num_clips


TRIVIAL = {"unmatched": all_unmatched, "even": even_spread}
SHARED_SPACE = ("zero-shot", "dtw-prior")
METHODS = ("md", "dtw", *SHARED_SPACE, *TRIVIAL)


def run_baseline(name: str, train, val, test) -> dict:
    """Fits the embedding on train, tunes on val, reports metrics on test
    (the trivial references need neither)."""
    if name in TRIVIAL:
        return evaluate_alignments(test, [TRIVIAL[name](e.num_clips, e.num_texts) for e in test])
    if name in SHARED_SPACE:
        widths = test[0].widths if test else (0, 0)
        if widths[0] != widths[1]:
            raise UserError(f"baseline {name}: the clip and text features are {widths[0]} and {widths[1]} wide: "
                            "features of different widths share no space (zero-shot alignment needs one, e.g. a "
                            "vision-language encoder's)")
        fit = DTWFit.fit([] if name == "zero-shot" else train, val)
        result = evaluate_alignments(test, [fit.align(e) for e in test])
        prior = fit.embedding.prior
        result.update(parameter="drop_cost", parameter_value=fit.drop_cost,
                      prior="identity" if prior == float("inf") else prior)  # JSON has no infinity
        return result
    if name not in ALIGNERS:
        raise UserError(f"baseline must be one of {list(METHODS)}, got {name!r}")
    embedding = RidgeMap.fit(train)  # the ridge-regression joint embedding (data/ridge.py)
    parameter = tune(name, embedding, val)
    predictions = [ALIGNERS[name](embedding.similarity(e), parameter) for e in test]
    result = evaluate_alignments(test, predictions)
    result["parameter"] = PARAMETERS[name]
    result["parameter_value"] = parameter
    return result
