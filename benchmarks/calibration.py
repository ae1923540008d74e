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

from tfalign.evaluation.calibration import (BINS, TEMPERATURES, calibration_figures, clip_outcomes,  # noqa: E402
                                            expected_calibration_error, fit_confidence_temperature)



def measure(run_dir) -> tuple[dict, dict]:
    """A run's best checkpoint on its validation and test videos, exactly decoded: the temperature
    fitted on validation, and the test figures before (temperature 1) and after it."""
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
    return row, {"before": (confidences[1.0], right), "after": (confidences[temperature], right)}


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
