"""The classical aligners on the ridge embedding (data/ridge.py): minimum
distance and monotone DTW with a drop cost, their one parameter tuned on
validation videos, and the cross-fitted similarities that let a learned model
see training videos as it will see new ones.

MD and DTW work on cosine similarity between clips and texts: each clip to its
most similar text above a threshold (MD), or the monotone assignment of least
total cost sum(1 - cos), a dropped clip costing ``drop_cost`` (DTW). The
parameter is the one of 13 candidates (quantiles of the clips' best
similarities) with the best validation clip accuracy. ``DTWFit`` is the whole
closed form: the map fitted on the training videos and the tuned drop cost, the
start of tfalign's lattice CRF (layers/dtw_potentials.py). When clips and texts
already share a space (data/ridge.py ``shares_space``: a vision-language
encoder's features) the map is pulled toward the identity, with the strength of
``PRIOR_STRENGTHS`` (or none, or the identity itself) that DTW scores best on
validation; with no labelled training video at all it is the identity: zero-shot
DTW, which self-training on unlabelled videos then refits.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from tfalign.data.metrics import evaluate_alignments
from tfalign.dp.dtw import dtw_with_drop, minimum_distance
from tfalign.data.ridge import RidgeMap, shares_space

# Training videos are split into at most this many folds for cross-fitting.
MAX_FOLDS = 5
# Rounds of self-training of the closed form on unlabelled videos (more rounds measured no better).
SELF_TRAINING_ROUNDS = 2
# Pulls toward the identity (per matched clip; data/ridge.py) tried on validation when the features share a space.
PRIOR_STRENGTHS = (0.03, 0.1, 0.3, 1.0, 3.0)
# The drop cost of zero-shot DTW with no labelled video to tune it on: a clip is dropped when its best
# centred cosine is below this quantile of the video's clips' best ones (YMS leaves about 15% unmatched).
ZERO_SHOT_DROP_QUANTILE = 0.15


ALIGNERS = {"md": minimum_distance, "dtw": dtw_with_drop}
PARAMETERS = {"md": "threshold", "dtw": "drop_cost"}


def tune(name: str, embedding: RidgeMap, episodes) -> float:
    """The threshold (md) or drop cost (dtw) with the best clip accuracy on ``episodes``."""
    sims = [embedding.similarity(e) for e in episodes]
    pooled = np.concatenate([s.max(axis=1) for s in sims])
    candidates = np.quantile(pooled, np.linspace(0.0, 0.6, 13))
    if name == "dtw":
        candidates = 1.0 - candidates  # a drop costs as much as a match at that similarity
    scores = [evaluate_alignments(episodes, [ALIGNERS[name](s, c) for s in sims])["clip_accuracy"]
              for c in candidates]
    return float(candidates[int(np.argmax(scores))])


def zero_shot_drop_cost(similarities) -> float:
    """The untuned drop cost of zero-shot DTW: one minus the ``ZERO_SHOT_DROP_QUANTILE``
    quantile of the clips' best similarities (``similarities``: one [T_v, T_s] array a video)."""
    return float(1.0 - np.quantile(np.concatenate([s.max(axis=1) for s in similarities]), ZERO_SHOT_DROP_QUANTILE))


@dataclasses.dataclass
class DTWFit:
    """The DTW baseline fitted: the ridge map of the training videos and the drop cost tuned on validation."""

    embedding: RidgeMap
    drop_cost: float

    @classmethod
    def fit(cls, train, val, shared: bool | None = None, centre_on=()) -> DTWFit:
        """Fits the map on ``train`` (labelled episodes) and tunes the drop cost on ``val``.

        Args:
            train: labelled (or pseudo-labelled) episodes; none: the identity (zero-shot).
            val: labelled episodes that tune the drop cost and choose the prior (none,
                with no training video either: ``zero_shot_drop_cost`` on ``centre_on``).
            shared: whether clips and texts share a space (then the map is pulled toward
                the identity, with the strength validation prefers); None: ``shares_space``
                of ``train`` and ``val``.
            centre_on: more episodes (unlabelled) whose features the identity centres on
                when there is no training video.

        Returns:
            The fitted ``DTWFit``.

        Example:
        >>> from tfalign.data.datasets import DataConfig, load_episodes
        >>> data = DataConfig(features="joint", train_videos=4)
        >>> fit = DTWFit.fit(load_episodes(data, "train"), load_episodes(data, "val"))
        >>> fit.embedding.prior > 0, fit.align(load_episodes(data, "test")[0]).shape
        (True, (202,))
        """
        if not train:
            embedding = RidgeMap.identity([*val, *centre_on])
            if val:
                return cls(embedding, tune("dtw", embedding, val))
            return cls(embedding, zero_shot_drop_cost([embedding.similarity(e) for e in centre_on]))
        if shared is None:
            shared = shares_space([*train, *val])
        candidates = [RidgeMap.fit(train)]
        if shared:
            candidates += [RidgeMap.fit(train, prior=p) for p in (*PRIOR_STRENGTHS, np.inf)]
        fits = [cls(c, tune("dtw", c, val)) for c in candidates]
        if len(fits) == 1:
            return fits[0]
        scores = [evaluate_alignments(val, [f.align(e) for e in val])["clip_accuracy"] for f in fits]
        return fits[int(np.argmax(scores))]

    def align(self, episode) -> np.ndarray:
        """The DTW baseline's clip_to_text of one episode."""
        return dtw_with_drop(self.embedding.similarity(episode), self.drop_cost)


def self_trained_fit(train, val, unlabelled=()) -> tuple[DTWFit, list]:
    """The closed form fitted on the labelled videos, then refitted on them and on the
    unlabelled videos as it aligns them (pseudo-labels), ``SELF_TRAINING_ROUNDS`` times.

    A ridge map fitted on few labelled videos is the weak part of DTW; DTW's own
    alignments of videos nobody labelled, noisy as they are, give it many more
    pairs. With 8 labelled videos (data seed 0) and the other 58 unlabelled, DTW's
    test clip accuracy rose from 0.584 to 0.714 (0.730 with all 66 labelled).
    With no labelled video the first alignments are zero-shot DTW's (features in
    one space).

    Returns:
        (the ``DTWFit``, the unlabelled episodes with the pseudo-labels of the last
        round; empty without unlabelled videos).
    """
    shared = shares_space([*train, *val])
    fit, pseudo = DTWFit.fit(train, val, shared, centre_on=unlabelled), []
    for _ in range(SELF_TRAINING_ROUNDS if unlabelled else 0):
        pseudo = [e.replace(clip_to_text=fit.align(e)) for e in unlabelled]
        fit = DTWFit.fit(list(train) + pseudo, val, shared)
    return fit, pseudo


def fold_of(index: int, num_videos: int) -> int:
    """The cross-fitting fold of the ``index``-th of ``num_videos`` training videos."""
    return index % min(MAX_FOLDS, num_videos)


def cross_fitted_maps(train, extra=(), prior: float = 0.0) -> list[RidgeMap]:
    """One ridge map per fold, each fitted on the training videos outside its fold
    (and on ``extra``, pseudo-labelled unlabelled videos, in every fold).

    A map fitted on a video has seen its pairs: its similarities there are
    cleaner than on any new video, and a model trained on them learns to trust
    them too much (at 8 training videos a CRF trained on in-sample similarities
    fell from DTW's 0.58 to 0.45 test clip accuracy, and rose to 0.66 on
    cross-fitted ones). Each training video is seen through the map of its
    fold (``fold_of``); a single video has no other to fit on and keeps the full map.
    ``prior``: the full map's pull toward the identity (data/ridge.py), kept in every fold.
    """
    folds = min(MAX_FOLDS, len(train))
    if folds < 2:
        return []
    return [RidgeMap.fit([e for i, e in enumerate(train) if fold_of(i, len(train)) != k] + list(extra), prior=prior)
            for k in range(folds)]
