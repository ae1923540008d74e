"""Is a clip's confidence a probability? The figures that say, and the temperature that makes it one.

A clip's confidence is the lattice CRF's posterior probability of its assignment
(``clip_confidence``). A temperature T divides the lattice's scores where the
marginals are read: the paths do not change, the confidences do. ``fit_confidence_
temperature`` picks T on validation videos (the grid's value with the lowest
negative log-likelihood of "this clip's assignment is right"); a run stores it in
the model's ``confidence_temperature`` weight, so that every confidence the model
gives after (in process, a preset, a ``.keras`` file, the SavedModel) is the
recalibrated one (docs/decoding.md). The figures: ECE, the accuracy of the most
confident clips (risk-coverage) and per-video AUROC.
"""

from __future__ import annotations

import numpy as np

from tfalign.data.batching import network_inputs, padded_requests

TEMPERATURES = np.round(np.geomspace(0.1, 10.0, 21), 4)  # 0.1 to 10 (1.0 among them), a ratio of 1.26 a step
BINS = 10
COVERAGES = (0.1, 0.25, 0.5, 0.75, 0.9, 1.0)
# A video is flagged when its mean clip confidence is below this quantile of the validation videos'.
LOW_VIDEO_QUANTILE = 0.1


def clip_outcomes(model, episodes, decoding: str = "exact", temperatures=(1.0,)):
    """Every clip's confidence at each temperature, whether its assignment is right, and
    which video it belongs to: the model's ``align`` decodes (``decoding``), the marginals
    are the lattice's scores divided by each temperature (the model's own is not read).

    Returns:
        ({temperature: [clips] confidences}, [clips] booleans, [clips] video indices).
    """
    import tensorflow as tf

    from tfalign.dp.lattice import clip_confidence, posterior_marginals

    align = model.make_align_function(decoding, confidence=False)
    marginals = tf.function(lambda scores, clips, texts: posterior_marginals(scores, clips, texts)[1])
    confidences, right, video = {float(t): [] for t in temperatures}, [], []
    for start, request in padded_requests([e.clip_features for e in episodes], [e.text_features for e in episodes]):
        assignment = align(request)["clip_to_text"]
        inputs = network_inputs(request)
        lengths = inputs["clip_lengths"], inputs["text_lengths"]
        scores = model.lattice_scores(model.encode_stacks(inputs, training=False))
        rows = list(enumerate(episodes[start:start + len(request["clip_lengths"])]))
        for row, episode in rows:
            right.append(assignment.numpy()[row, :episode.num_clips] == episode.clip_to_text)
            video.append(np.full(episode.num_clips, start + row))
        for temperature in confidences:
            confidence = clip_confidence(marginals(scores / temperature, *lengths), assignment).numpy()
            confidences[temperature] += [confidence[row, :episode.num_clips] for row, episode in rows]
    return ({t: np.concatenate(c) for t, c in confidences.items()}, np.concatenate(right),
            np.concatenate(video))


def fit_confidence_temperature(model, episodes, decoding: str = "exact") -> dict:
    """The temperature of ``TEMPERATURES`` under which the clips' confidences best predict
    whether their assignments are right (the lowest negative log-likelihood) on labelled
    ``episodes`` (validation videos), decoded as the model will be (``decoding``).

    Returns:
        {"temperature", "nll_before" (at 1), "nll_after", "videos", "video_confidence_floor"}:
        the floor is the ``LOW_VIDEO_QUANTILE`` quantile of the validation videos' mean clip
        confidences at that temperature; ``tfalign.align`` warns about a video below it.

    Example:
    >>> fit = fit_confidence_temperature(model, val_episodes)          # doctest: +SKIP
    >>> model.confidence_temperature.assign(fit["temperature"])        # doctest: +SKIP
    """
    confidences, right, video = clip_outcomes(model, episodes, decoding, TEMPERATURES)
    fits = {t: negative_log_likelihood(c, right) for t, c in confidences.items()}
    best = min(fits, key=fits.get)
    means = [confidences[best][video == v].mean() for v in np.unique(video)]
    return {"temperature": best, "nll_before": fits[1.0], "nll_after": fits[best], "videos": len(episodes),
            "video_confidence_floor": float(np.quantile(means, LOW_VIDEO_QUANTILE))}


def negative_log_likelihood(confidence, right) -> float:
    """The mean negative log-likelihood of the outcomes ``right`` under the probabilities ``confidence``."""
    p = np.clip(confidence, 1e-6, 1 - 1e-6)
    return float(-np.mean(np.where(right, np.log(p), np.log(1 - p))))


def expected_calibration_error(confidence, right, bins: int = BINS) -> float:
    """The gap between confidence and accuracy in ``bins`` equal-width bins, weighted by their clips."""
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    return float(sum(abs(confidence[which == b].mean() - right[which == b].mean()) * np.mean(which == b)
                     for b in range(bins) if np.any(which == b)))


def auroc(scores, positive) -> float | None:
    """P(score of a positive > score of a negative), ties counted half (Mann-Whitney)."""
    positive = np.asarray(positive, bool)
    pos, neg = np.asarray(scores)[positive], np.asarray(scores)[~positive]
    if not len(pos) or not len(neg):
        return None
    return float(((pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])).mean())


def calibration_figures(confidence, right, video) -> dict:
    """ECE, NLL, mean confidence against accuracy, the accuracy of the most confident x% of the
    clips (risk-coverage) and the per-video AUROC of "this video is below the median video
    accuracy" scored by one minus its mean confidence."""
    order = np.argsort(-confidence, kind="stable")
    videos = np.unique(video)
    accuracies = np.array([right[video == v].mean() for v in videos])
    means = np.array([confidence[video == v].mean() for v in videos])
    return {"clips": int(len(confidence)), "accuracy": float(right.mean()), "mean_confidence": float(confidence.mean()),
            "ece": expected_calibration_error(confidence, right), "nll": negative_log_likelihood(confidence, right),
            "risk_coverage": {f"{c:g}": float(right[order[:max(1, int(round(c * len(order))))]].mean())
                              for c in COVERAGES},
            "video_auroc": auroc(1 - means, accuracies < np.median(accuracies))}
