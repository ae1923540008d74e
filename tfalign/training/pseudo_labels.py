"""Unlabelled videos in the training set: the teacher's pseudo-labels, trusted where it is surest.

A model that starts at DTW (a CRF) learns from unlabelled videos twice: its
closed form is self-trained on them before training (data/classical.py), and
with ``task.unlabelled_weight`` the CRF itself trains on them. A few times a
run (``task.pseudo_label_rounds``) the teacher, the model with the optimizer's
averaged weights (a moving-average teacher; the model itself without weight
averaging), aligns every unlabelled video exactly; the
``task.pseudo_label_fraction`` of all their clips with the highest posterior
confidence keep their assignment (``Episode.known_clips``), the others are
left open. Their loss is the partial-label CRF's: -log of the probability of
every path through the kept assignments (model/objective.py), weighted by
``unlabelled_weight`` times (round + 1) / rounds: a ramp, as the teacher gets
better.
"""

from __future__ import annotations

import numpy as np

from tfalign.data.batching import padded_requests


def round_of(epoch: int, epochs: int, rounds: int) -> int:
    """The round an epoch belongs to: round r begins at epoch floor(r * epochs / rounds).

    Example:
    >>> [round_of(e, 8, 4) for e in range(8)]
    [0, 0, 1, 1, 2, 2, 3, 3]
    """
    rounds = max(1, min(rounds, epochs))
    return max(r for r in range(rounds) if r * epochs // rounds <= epoch)


def round_weight(weight: float, round_index: int, rounds: int) -> float:
    """The unlabelled videos' loss weight in a round: ramped linearly to ``weight``."""
    return weight * (round_index + 1) / rounds


def pseudo_labelled(model, videos, fraction: float, truth: dict | None = None) -> list:
    """The unlabelled ``videos`` with the teacher's pseudo-labels.

    Args:
        model: a LatticeAligner with ``dtw_start`` (the teacher, as it is now).
        videos: unlabelled ``Episode``s.
        fraction: the share of all their clips kept (``known_clips``): those whose
            assignment the teacher is surest of (its clip confidence).
        truth: the ceiling of the method: {video_id: the true clip_to_text}, which
            then fills the same kept clips instead of the teacher's guesses
            (benchmarks/pseudo_labels.py); None in training.

    Returns:
        ``Episode``s with ``clip_to_text`` (the teacher's exact alignment) and
        ``known_clips``.

    Example:
    >>> episodes = pseudo_labelled(aligner, unlabelled, fraction=0.5)  # doctest: +SKIP
    >>> float(np.mean(np.concatenate([e.known_clips for e in episodes])))  # doctest: +SKIP
    0.5
    """
    videos = list(videos)
    if not videos:
        return []
    align = model.make_align_function("exact", confidence=True)
    assignments, confidences = [], []
    for start, request in padded_requests([v.clip_features for v in videos], [v.text_features for v in videos]):
        out = align(request)
        for row, video in enumerate(videos[start:start + len(request["clip_lengths"])]):
            assignments.append(out["clip_to_text"].numpy()[row, :video.num_clips])
            confidences.append(out["clip_confidence"].numpy()[row, :video.num_clips])
    threshold = np.quantile(np.concatenate(confidences), 1.0 - fraction)
    labelled = []
    for video, assignment, confidence in zip(videos, assignments, confidences):
        if truth is not None:
            assignment = np.asarray(truth[video.video_id])
        labelled.append(video.replace(clip_to_text=assignment, known_clips=confidence >= threshold))
    return labelled


def kept_accuracy(episodes, truth: dict) -> float:
    """The share of the kept clips whose pseudo-label is right (``truth``: {video_id: clip_to_text})."""
    right = [(e.clip_to_text == np.asarray(truth[e.video_id]))[e.known_clips] for e in episodes]
    return float(np.mean(np.concatenate(right))) if right else float("nan")
