"""Is a clip's confidence a probability, and does a temperature fitted on validation make it one?

For each run folder of the lattice CRF recipe: its best checkpoint (by validation
clip accuracy) decodes its validation and test videos exactly; a clip's confidence
is the CRF's posterior probability of its assignment (``clip_confidence``). A
temperature T divides the lattice's scores: the best path does not change, the
marginals do. T is fitted on the validation videos (the grid's value with the
lowest negative log-likelihood of "this clip's assignment is right"). For the
test split, before and after: ECE (10 equal-width bins), mean confidence against
accuracy, the accuracy of the most confident half of the clips, the risk-coverage
curve (accuracy of the most confident x% of clips), and per-video AUROC of "this
video is below the median video accuracy" scored by one minus its mean confidence.
With ``--png``, the reliability diagram of every run's test clips pooled, before
and after. With ``--recalibrations``, what else was tried beyond the temperature
(fitted on the same validation clips, scored on the test clips): histogram
binning (equal-mass bins, made monotone) and isotonic regression after the
temperature, and other per-video scores than the mean confidence (median, 10th
percentile, share of clips above 0.8, mean log confidence); and the sampling
floor of the figures on this test split: the ECE a perfectly calibrated model
with the same confidences would show (each clip right with its confidence's
probability, 200 draws: mean and 95th percentile) and the standard error of
the per-video AUROC at this many videos (Hanley and McNeil). Run from the
repository root:

    python benchmarks/calibration.py --runs 'runs/data-efficiency/recipe-v8-*' \\
        'runs/data-efficiency/recipe+uall-v8-*' 'runs/data-efficiency/recipe-v66-*' \\
        --json benchmarks/results/calibration.json --png benchmarks/results/calibration.png
"""

import argparse
import glob
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import report, stats  # noqa: E402

import numpy as np  # noqa: E402

from tfalign.evaluation.calibration import (BINS, TEMPERATURES, auroc, calibration_figures, clip_outcomes,  # noqa: E402
                                            expected_calibration_error, fit_confidence_temperature)



def measure(run_dir, recalibrations: bool = False) -> tuple[dict, dict]:
    """A run's best checkpoint on its validation and test videos, exactly decoded: the temperature
    fitted on validation, and the test figures before (temperature 1) and after it (and with
    ``recalibrations`` what else was tried, ``recalibration_figures``)."""
    from tfalign.data.datasets import load_episodes
    from tfalign.training.checkpoints import load_model

    config, model = load_model(run_dir, "clip_accuracy")
    val, test = (load_episodes(config.data, split) for split in ("val", "test"))
    fit = fit_confidence_temperature(model, val)
    temperature = fit["temperature"]
    confidences, right, video = clip_outcomes(model, test, "exact", (1.0, temperature))
    row = {"run": os.path.basename(os.path.normpath(run_dir)), "temperature": temperature,
           "val_nll": {"before": fit["nll_before"], "after": fit["nll_after"]},
           "test": {name: calibration_figures(confidences[t], right, video)
                    for name, t in (("before", 1.0), ("after", temperature))}}
    if recalibrations:
        val_confidences, val_right, _ = clip_outcomes(model, val, "exact", (temperature,))
        row["recalibrations"] = recalibration_figures((val_confidences[temperature], val_right),
                                                      (confidences[temperature], right, video))
    return row, {"before": (confidences[1.0], right), "after": (confidences[temperature], right)}


VIDEO_SCORES = {"mean": np.mean, "median": np.median, "p10": lambda c: np.quantile(c, 0.1),
                "share_above_0.8": lambda c: np.mean(c > 0.8),
                "mean_log": lambda c: np.mean(np.log(np.maximum(c, 1e-6)))}


def isotonic(x, y, weight=None):
    """The least-squares nondecreasing fit of ``y`` on ``x`` (pool adjacent violators): its
    knots (the blocks' weighted mean x, their fitted y), to interpolate between."""
    order = np.argsort(x, kind="stable")
    weight = np.ones(len(x)) if weight is None else np.asarray(weight, float)
    blocks = []  # [sum w*x, sum w*y, sum w]
    for i in order:
        blocks.append([weight[i] * x[i], weight[i] * y[i], weight[i]])
        while len(blocks) > 1 and blocks[-2][1] / blocks[-2][2] > blocks[-1][1] / blocks[-1][2]:
            last = blocks.pop()
            blocks[-1] = [a + b for a, b in zip(blocks[-1], last)]
    return np.array([b[0] / b[2] for b in blocks]), np.array([b[1] / b[2] for b in blocks])


def binned(confidence, right, bins: int = BINS):
    """Histogram binning's knots: equal-mass bins of the confidences, each bin's mean confidence
    and accuracy, made nondecreasing."""
    chunks = np.array_split(np.argsort(confidence, kind="stable"), bins)
    return isotonic(np.array([confidence[c].mean() for c in chunks]), np.array([right[c].mean() for c in chunks]),
                    [len(c) for c in chunks])


def recalibrated(knots, confidence):
    """``confidence`` mapped through the knots (piecewise linear, 0 -> 0 and 1 -> 1 at the ends)."""
    x, y = knots
    return np.interp(confidence, np.concatenate([[0.0], x, [1.0]]), np.concatenate([[0.0], y, [1.0]]))


def ece_if_calibrated(confidence, draws: int = 200, seed: int = 0) -> dict:
    """The ECE of a perfectly calibrated model with these confidences on this many clips: each
    clip right with probability its confidence, independently (clips of one video are not, so
    the real floor is higher). Mean and 95th percentile over ``draws``."""
    rng = np.random.default_rng(seed)
    values = [expected_calibration_error(confidence, rng.random(len(confidence)) < confidence) for _ in range(draws)]
    return {"mean": float(np.mean(values)), "p95": float(np.quantile(values, 0.95))}


def auroc_standard_error(area: float, positives: int, negatives: int) -> float:
    """Hanley and McNeil (1982): the standard error of an AUROC of ``area`` measured on this many
    positives and negatives."""
    q1, q2 = area / (2 - area), 2 * area * area / (1 + area)
    variance = (area * (1 - area) + (positives - 1) * (q1 - area * area)
                + (negatives - 1) * (q2 - area * area)) / (positives * negatives)
    return float(np.sqrt(variance))


def recalibration_figures(val, test) -> dict:
    """Test ECE after the temperature, then binning or isotonic regression fitted on the
    validation clips; per-video AUROC of each of ``VIDEO_SCORES`` on the test videos; the
    sampling floor of both on this split."""
    (val_confidence, val_right), (confidence, right, video) = val, test
    ece = {"temperature": expected_calibration_error(confidence, right)}
    for name, knots in (("binning", binned(val_confidence, val_right)),
                        ("isotonic", isotonic(val_confidence, val_right.astype(float)))):
        ece[f"temperature+{name}"] = expected_calibration_error(recalibrated(knots, confidence), right)
    videos = np.unique(video)
    accuracies = np.array([right[video == v].mean() for v in videos])
    low = accuracies < np.median(accuracies)
    aurocs = {name: auroc(-np.array([score(confidence[video == v]) for v in videos]), low)
              for name, score in VIDEO_SCORES.items()}
    floor = {"ece_if_calibrated": ece_if_calibrated(confidence),
             "auroc_standard_error_at_0.8": auroc_standard_error(0.8, int(low.sum()), int((~low).sum()))}
    return {"test_ece": ece, "test_video_auroc": aurocs, "sampling_floor": floor}


def reliability_png(pooled, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="calibrated")
    for name, color in (("before", "tab:red"), ("after", "tab:blue")):
        confidence = np.concatenate([c for c, _ in pooled[name]])
        right = np.concatenate([r for _, r in pooled[name]])
        which = np.minimum((confidence * BINS).astype(int), BINS - 1)
        bins = [b for b in range(BINS) if np.any(which == b)]
        ax.plot([confidence[which == b].mean() for b in bins], [right[which == b].mean() for b in bins], "o-",
                color=color, label=f"{name} (ECE {expected_calibration_error(confidence, right):.3f})")
    ax.set_xlabel("clip confidence")
    ax.set_ylabel("share of clips assigned right")
    ax.set_title("test clips, every run pooled")
    ax.legend(loc="upper left")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", required=True, help="run folders or glob patterns")
    parser.add_argument("--json", help="write the result here")
    parser.add_argument("--png", help="write the reliability diagram here")
    parser.add_argument("--recalibrations", action="store_true",
                        help="also try binning and isotonic regression after the temperature, and other video scores")
    args = parser.parse_args(argv)
    folders = sorted({f for pattern in args.runs for f in glob.glob(pattern) if os.path.isdir(f)})
    if not folders:
        raise SystemExit(f"error: --runs: no run folder matches {args.runs}")
    rows, pooled = [], {"before": [], "after": []}
    for index, folder in enumerate(folders, 1):
        row, clips = measure(folder, args.recalibrations)
        rows.append(row)
        for name in pooled:
            pooled[name].append(clips[name])
        test = row["test"]
        print(f"{index}/{len(folders)} {row['run']}: T {row['temperature']:g}; test ECE "
              f"{test['before']['ece']:.3f} -> {test['after']['ece']:.3f}, confident half "
              f"{test['before']['risk_coverage']['0.5']:.3f}, video AUROC {test['before']['video_auroc']}", flush=True)
    if args.png:
        reliability_png(pooled, args.png)
    summary = recalibration_summary(rows) if args.recalibrations else None
    if summary:
        print("recalibrations, mean over the runs:", json.dumps(summary))
    report({"benchmark": "calibration", "config": {"runs": args.runs, "temperatures": TEMPERATURES.tolist(),
                                                   "recalibrations": args.recalibrations},
            "runs": rows, **({"recalibrations": summary} if summary else {})}, args.json)


def recalibration_summary(rows) -> dict:
    """Each recalibration's test ECE and each video score's AUROC: mean and range over the runs."""
    def spread_of(values):  # a run's AUROC is None when its videos are all on one side of the median
        return stats([v for v in values if v is not None])
    figures = [r["recalibrations"] for r in rows]
    summary = {kind: {name: spread_of([f[kind][name] for f in figures]) for name in figures[0][kind]}
               for kind in ("test_ece", "test_video_auroc")}
    floors = [f["sampling_floor"] for f in figures]
    summary["sampling_floor"] = {
        "ece_if_calibrated_mean": spread_of([f["ece_if_calibrated"]["mean"] for f in floors]),
        "ece_if_calibrated_p95": spread_of([f["ece_if_calibrated"]["p95"] for f in floors]),
        "auroc_standard_error_at_0.8": spread_of([f["auroc_standard_error_at_0.8"] for f in floors])}
    return summary


if __name__ == "__main__":
    main()
