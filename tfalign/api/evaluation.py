"""Evaluation from Python: ``tfalign.evaluate(aligner, episodes)``."""

from __future__ import annotations

from tfalign.api.aligner import Aligner


def evaluate(aligner, episodes, decoding: str | None = None) -> dict:
    """Clip accuracy and sentence IoU of an aligner on labelled episodes.

    What ``python -m tfalign.evaluate --run`` reports for a run's split, for any
    aligner and any labelled episodes in memory.

    Args:
        aligner: a ``tfalign.Aligner`` (or a tfalign Keras aligner).
        episodes: a list of labelled ``tfalign.Episode`` (their ``clip_to_text``
            is the ground truth; the aligner does not read it).
        decoding: "greedy" or "exact"; default: the aligner's.

    Returns:
        {"clip_accuracy", "sentence_iou", "videos", "per_video", "decoding"}:
        fractions in [0, 1], averaged over videos, with per-video figures.

    Example:
    >>> run = tfalign.train("tfalign_rp_sbn", train=train_episodes, val=val_episodes)  # doctest: +SKIP
    >>> tfalign.evaluate(run.aligner, test_episodes)["clip_accuracy"]                 # doctest: +SKIP
    0.81
    """
    return (aligner if isinstance(aligner, Aligner) else Aligner(aligner)).evaluate(episodes, decoding)
