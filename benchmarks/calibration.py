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
and after. Run from the repository root:

    python benchmarks/calibration.py --runs 'runs/data-efficiency/recipe-v8-*' \\
        'runs/data-efficiency/recipe+uall-v8-*' 'runs/data-efficiency/recipe-v66-*' \\
        --json benchmarks/results/calibration.json --png benchmarks/results/calibration.png
"""

import argparse
import glob
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import report  # noqa: E402

import numpy as np  # noqa: E402

TEMPERATURES = np.round(np.geomspace(0.1, 10.0, 21), 4)  # 0.1 to 10 (1.0 among them), a ratio of 1.26 a step
BINS = 10
COVERAGES = (0.1, 0.25, 0.5, 0.75, 0.9, 1.0)


def decoded_scores(model, episodes):
    """Per video: (the exact assignment, the lattice's scores and lengths to recompute the marginals from)."""
    import tensorflow as tf

    from tfalign.data.batching import pad_batch, to_natural

    out = []
    for episode in episodes:
        request = pad_batch([episode.clip_features], [episode.text_features])
        lengths = tf.constant(request["clip_lengths"]), tf.constant(request["text_lengths"])
        inputs = {"clip_features": to_natural(tf.constant(request["clip_features"], tf.float32), lengths[0]),
                  "text_features": to_natural(tf.constant(request["text_features"], tf.float32), lengths[1]),
                  "clip_lengths": lengths[0], "text_lengths": lengths[1]}
        assignment = model.align(request, decoding="exact")["clip_to_text"]  # as every exact alignment is read
        stacks = model.encode_stacks(inputs, training=False)
        out.append((assignment, model.lattice_scores(stacks), lengths, episode))
    return out


def clips_at(decoded, temperature):
    """Every clip's (confidence, right) at ``temperature``, and each video's (mean confidence, accuracy)."""
    from tfalign.dp.lattice import clip_confidence, posterior_marginals

    confidence, right, videos = [], [], []
    for assignment, scores, lengths, episode in decoded:
        marginals = posterior_marginals(scores / temperature, *lengths)[1]
        conf = clip_confidence(marginals, assignment).numpy()[0, :episode.num_clips]
        hit = assignment.numpy()[0, :episode.num_clips] == episode.clip_to_text
        confidence.append(conf)
        right.append(hit)
        videos.append((float(conf.mean()), float(hit.mean())))
    return np.concatenate(confidence), np.concatenate(right), videos


def negative_log_likelihood(confidence, right):
    p = np.clip(confidence, 1e-6, 1 - 1e-6)
    return float(-np.mean(np.where(right, np.log(p), np.log(1 - p))))


def expected_calibration_error(confidence, right, bins=BINS):
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    return float(sum(abs(confidence[which == b].mean() - right[which == b].mean()) * np.mean(which == b)
                     for b in range(bins) if np.any(which == b)))


def auroc(scores, positive):
    """P(score of a positive > score of a negative), ties counted half (Mann-Whitney)."""
    positive = np.asarray(positive, bool)
    pos, neg = np.asarray(scores)[positive], np.asarray(scores)[~positive]
    if not len(pos) or not len(neg):
        return None
    return float(((pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])).mean())


def figures(confidence, right, videos) -> dict:
    order = np.argsort(-confidence, kind="stable")
    accuracies = np.array([a for _, a in videos])
    below = accuracies < np.median(accuracies)
    return {"clips": int(len(confidence)), "accuracy": float(right.mean()), "mean_confidence": float(confidence.mean()),
            "ece": expected_calibration_error(confidence, right), "nll": negative_log_likelihood(confidence, right),
            "risk_coverage": {f"{c:g}": float(right[order[:max(1, int(round(c * len(order))))]].mean())
                              for c in COVERAGES},
            "video_auroc": auroc([1 - m for m, _ in videos], below)}


def measure(run_dir) -> tuple[dict, dict]:
    from tfalign.data.datasets import load_episodes
    from tfalign.training.checkpoints import load_model

    config, model = load_model(run_dir, "clip_accuracy")
    val, test = (decoded_scores(model, load_episodes(config.data, split)) for split in ("val", "test"))
    fits = {float(t): negative_log_likelihood(*clips_at(val, t)[:2]) for t in TEMPERATURES}  # 1.0 among them
    temperature = min(fits, key=fits.get)
    before, after = clips_at(test, 1.0), clips_at(test, temperature)
    row = {"run": os.path.basename(os.path.normpath(run_dir)), "temperature": temperature,
           "val_nll": {"before": fits[1.0], "after": fits[temperature]},
           "test": {"before": figures(*before), "after": figures(*after)}}
    return row, {"before": before[:2], "after": after[:2]}


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
    args = parser.parse_args(argv)
    folders = sorted({f for pattern in args.runs for f in glob.glob(pattern) if os.path.isdir(f)})
    if not folders:
        raise SystemExit(f"error: --runs: no run folder matches {args.runs}")
    rows, pooled = [], {"before": [], "after": []}
    for index, folder in enumerate(folders, 1):
        row, clips = measure(folder)
        rows.append(row)
        for name in pooled:
            pooled[name].append(clips[name])
        test = row["test"]
        print(f"{index}/{len(folders)} {row['run']}: T {row['temperature']:g}; test ECE "
              f"{test['before']['ece']:.3f} -> {test['after']['ece']:.3f}, confident half "
              f"{test['before']['risk_coverage']['0.5']:.3f}, video AUROC {test['before']['video_auroc']}", flush=True)
    if args.png:
        reliability_png(pooled, args.png)
    report({"benchmark": "calibration", "config": {"runs": args.runs, "temperatures": TEMPERATURES.tolist()},
            "runs": rows}, args.json)


if __name__ == "__main__":
    main()
