"""Clip accuracy and sentence IoU, as NeuMATCH and Wang et al. define them.

Both are computed per video and then averaged over videos; both are fractions
in [0, 1].
"""

from __future__ import annotations

import numpy as np

from tfalign.data.oracle import actions_to_alignment


def _overlap(spans_a: np.ndarray, spans_b: np.ndarray) -> np.ndarray:
    """Pairwise overlap in seconds between [N, 2] and [M, 2] spans -> [N, M]."""
    start = np.maximum(spans_a[:, None, 0], spans_b[None, :, 0])
    end = np.minimum(spans_a[:, None, 1], spans_b[None, :, 1])
    return np.maximum(end - start, 0.0)


def _merge(spans: np.ndarray) -> np.ndarray:
    """Union of intervals as sorted, disjoint intervals."""
    if len(spans) == 0:
        return spans.reshape(0, 2)
    spans = spans[np.argsort(spans[:, 0], kind="stable")]
    merged = [list(spans[0])]
    for start, end in spans[1:]:
        if start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return np.asarray(merged, np.float64)


def clip_accuracy(episode, predicted_clip_to_text) -> float:
    """Share of clip time assigned correctly in one video.

    A clip assigned to text j earns its overlap with text j's ground-truth
    span; a clip predicted unmatched earns its overlap with the ground-truth
    unmatched spans.
    """
    predicted = np.asarray(predicted_clip_to_text)
    clip_times = episode.clip_times
    durations = clip_times[:, 1] - clip_times[:, 0]
    total = durations.sum()
    if total <= 0:
        return 0.0
    earned = np.zeros(len(clip_times))
    matched = predicted >= 0
    if matched.any():
        spans = episode.text_spans[predicted[matched]]
        start = np.maximum(clip_times[matched, 0], spans[:, 0])
        end = np.minimum(clip_times[matched, 1], spans[:, 1])
        earned[matched] = np.maximum(end - start, 0.0)
    unmatched_spans = _merge(episode.unmatched_spans)
    if (~matched).any() and len(unmatched_spans):
        earned[~matched] = _overlap(clip_times[~matched], unmatched_spans).sum(axis=1)
    return float(earned.sum() / total)


def sentence_iou(episode, predicted_clip_to_text) -> float:
    """Mean over texts of the temporal IoU between the union of the clips
    assigned to a text and the text's ground-truth span (0 for no clips)."""
    predicted = np.asarray(predicted_clip_to_text)
    scores = np.zeros(episode.num_texts)
    for text in np.unique(predicted[predicted >= 0]):
        union = _merge(episode.clip_times[predicted == text])
        truth = episode.text_spans[text : text + 1]
        intersection = _overlap(union, truth).sum()
        union_length = (union[:, 1] - union[:, 0]).sum() + (truth[0, 1] - truth[0, 0]) - intersection
        scores[text] = intersection / union_length if union_length > 0 else 0.0
    return float(scores.mean())


def evaluate_alignments(episodes, predicted_clip_to_text) -> dict:
    """Per-video metrics averaged over videos, for predicted assignments."""
    episodes = list(episodes)
    predicted = list(predicted_clip_to_text)
    if len(episodes) != len(predicted):
        raise ValueError(f"got {len(predicted)} predictions for {len(episodes)} episodes")
    if not episodes:
        raise ValueError("no episodes to evaluate")
    accuracies = [clip_accuracy(e, p) for e, p in zip(episodes, predicted)]
    ious = [sentence_iou(e, p) for e, p in zip(episodes, predicted)]
    return {
        "clip_accuracy": float(np.mean(accuracies)),
        "sentence_iou": float(np.mean(ious)),
        "videos": len(episodes),
        "per_video": [
            {"video_id": e.video_id, "clip_accuracy": a, "sentence_iou": s}
            for e, a, s in zip(episodes, accuracies, ious)
        ],
    }


def evaluate_actions(episodes, predicted_actions) -> dict:
    """Like evaluate_alignments, for predicted action sequences."""
    episodes = list(episodes)
    alignments = [actions_to_alignment(a, e.num_clips, e.num_texts) for e, a in zip(episodes, predicted_actions)]
    return evaluate_alignments(episodes, alignments)
