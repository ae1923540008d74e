"""The baselines and trivial references on the test split, each on the data it is
for: MD, DTW and the two trivial references on the default ``rp`` features;
zero-shot DTW, DTW on the ridge map and DTW with the prior on the ``joint``
features (one space, as a vision-language encoder's). No training: a minute.

    python benchmarks/baselines.py --json benchmarks/results/baselines.json

Each figure is what ``python -m tfalign.evaluate --baseline NAME --split test
[--features joint]`` prints.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import write  # noqa: E402

RUNS = {"rp": ("md", "dtw", "unmatched", "even"), "joint": ("zero-shot", "dtw", "dtw-prior")}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", default="benchmarks/results/baselines.json", help="where the results go")
    args = parser.parse_args(argv)

    from tfalign.data.datasets import DataConfig, load_episodes
    from tfalign.evaluation.baselines import run_baseline

    results = {}
    for features, names in RUNS.items():
        data = DataConfig(features=features)
        splits = {s: load_episodes(data, s) for s in ("train", "val", "test")}
        for name in names:
            figures = run_baseline(name, splits["train"], splits["val"], splits["test"])
            results.setdefault(features, {})[name] = {k: v for k, v in figures.items() if k != "per_video"}
            print(f"{features} {name}: clip accuracy {figures['clip_accuracy']:.4f}, sentence IoU "
                  f"{figures['sentence_iou']:.4f}", flush=True)
    write({"benchmark": "baselines", "split": "test", "config": {f: DataConfig(features=f).__dict__ for f in RUNS},
           "results": results}, args.json)


if __name__ == "__main__":
    main()
