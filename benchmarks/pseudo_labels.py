"""The CRF trained on unlabelled videos: the teacher's pseudo-labels against the ceiling.

Trains tfalign's recipe on a subset of labelled training videos with every
other training video unlabelled, three ways:

- ``closed-form``: the unlabelled videos only self-train the closed form the
  CRF starts from (``task.unlabelled_weight`` 0, the recipe's default);
- ``teacher``: the CRF trains on them too, with the teacher's pseudo-labels
  (``task.unlabelled_weight``, training/pseudo_labels.py);
- ``ceiling``: the same kept clips, filled with their true labels: what the
  partial-label loss could give with a perfect teacher at that mask.

Each over model seeds and data seeds (a data seed draws another subset and other
synthetic features); the test figures of the checkpoint validation picks, in the
decoding the run chooses, and for the teacher how right its kept pseudo-labels
were in each round (``pseudo_labels.json`` in each run folder).

    python benchmarks/pseudo_labels.py --labelled 8 --variants teacher,ceiling \\
        --seeds 0,1 --data-seeds 0,1 --results benchmarks/results

Runs land in ``--output-dir`` (default runs/pseudo-labels), one folder each; a
rerun reuses the finished ones of the same config and code.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import provenance, spread, stats  # noqa: E402
from quality import run_one  # noqa: E402


from tfalign.files import write_json_atomic  # noqa: E402

VARIANTS = ("closed-form", "teacher", "ceiling")
METRICS = ("clip_accuracy", "sentence_iou")


def config_of(args, variant, seed, data_seed):
    from tfalign.experiments import configure

    weight = 0.0 if variant == "closed-form" else args.weight
    return configure(args.experiment, {
        "epochs": args.epochs, "seed": seed, "data.seed": data_seed, "data.train_videos": args.labelled,
        "data.unlabelled_videos": "all", "task.unlabelled_weight": weight, "data.features": args.features,
        "task.pseudo_label_fraction": args.fraction, "task.pseudo_label_rounds": args.rounds})


def true_labels(config) -> dict:
    """{video_id: clip_to_text} of the whole training split (the unlabelled videos among them)."""
    from tfalign.data.datasets import load_episodes

    whole = dataclasses.replace(config.data, train_videos=None, unlabelled_videos=None)
    return {e.video_id: e.clip_to_text for e in load_episodes(whole, "train")}


def one_run(args, variant, seed, data_seed) -> dict:
    """The run's test figures, and the kept pseudo-labels' accuracy in each round."""
    from tfalign.training.task import AlignmentTask

    config = config_of(args, variant, seed, data_seed)
    features = f"-{args.features}" if args.features else ""
    run_dir = (pathlib.Path(args.output_dir)
               / f"{variant}-v{args.labelled}-d{data_seed}{features}-e{args.epochs}-seed{seed}")
    truth, tasks = true_labels(config), []

    def make_task(final_config):  # given the truth, the task scores each round's kept clips (task.rounds)
        task = AlignmentTask(final_config)
        task.truth, task.ceiling = truth, variant == "ceiling"
        tasks.append(task)
        return task

    result = run_one(config, run_dir, print, make_task=make_task)
    record = run_dir / "pseudo_labels.json"
    if tasks and tasks[-1].rounds:  # trained now, not reused
        write_json_atomic(record, {"rounds": tasks[-1].rounds})
    result["rounds"] = json.loads(record.read_text())["rounds"] if record.exists() else []
    return result


def markdown(report) -> str:
    features = f" ({report['features']} features)" if report.get("features") else ""
    lines = [f"Test split of `yms-synthetic`{features}; {report['labelled']} labelled training videos, the other "
             f"{report['unlabelled']} unlabelled; {report['epochs']} epochs; weight {report['weight']:g}, "
             f"{report['fraction']:.0%} of the clips kept, {report['rounds']} rounds. Mean ± sample standard "
             f"deviation over model seeds {report['seeds']} and data seeds {report['data_seeds']}. Command: "
             f"`{report['command']}`.", "",
             "| variant | clip accuracy | sentence IoU | kept pseudo-labels right (first round -> last) |",
             "|---|---|---|---|"]
    for variant, row in report["variants"].items():
        kept = row.get("kept_accuracy")
        kept = f"{kept['first']['mean']:.3f} -> {kept['last']['mean']:.3f}" if kept else "-"
        lines.append(f"| {variant} | {spread(row['clip_accuracy'])} | {spread(row['sentence_iou'])} | {kept} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiment", default="tfalign_rp_sbn", help="the recipe")
    parser.add_argument("--labelled", type=int, default=8, help="labelled training videos (the rest: unlabelled)")
    parser.add_argument("--variants", default="closed-form,teacher,ceiling", help=f"of {', '.join(VARIANTS)}")
    parser.add_argument("--seeds", default="0,1", help="model seeds")
    parser.add_argument("--data-seeds", default="0,1", help="data seeds (each draws another subset)")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--features", help="synthetic features: rp (default: the recipe's), full, lxmert or joint "
                                           "(one space for both, as a vision-language encoder's)")
    parser.add_argument("--weight", type=float, default=1.0, help="task.unlabelled_weight")
    parser.add_argument("--fraction", type=float, default=0.5, help="task.pseudo_label_fraction")
    parser.add_argument("--rounds", type=int, default=4, help="task.pseudo_label_rounds")
    parser.add_argument("--output-dir", default="runs/pseudo-labels", help="where the runs and results go")
    parser.add_argument("--results", help="also copy the results into this folder (e.g. benchmarks/results)")
    parser.add_argument("--tag", default="", help="a suffix of the result files (pseudo_labels<tag>.json)")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from tfalign.data.datasets import SPLIT_SIZES

    variants = [v for v in args.variants.split(",") if v]
    if set(variants) - set(VARIANTS):
        parser.error(f"--variants: expected some of {', '.join(VARIANTS)}, got {args.variants!r}")
    seeds, data_seeds = ([int(x) for x in s.split(",")] for s in (args.seeds, args.data_seeds))
    report = {"labelled": args.labelled, "unlabelled": SPLIT_SIZES["train"] - args.labelled, "epochs": args.epochs,
              "weight": args.weight, "fraction": args.fraction, "rounds": args.rounds, "seeds": seeds,
              "data_seeds": data_seeds, "features": args.features, "variants": {}}
    report.update(provenance({"config": config_of(args, "teacher", 0, 0).to_dict(), **report}))
    for variant in variants:
        results = [one_run(args, variant, seed, data_seed) for data_seed in data_seeds for seed in seeds]
        row = {m: stats([r["chosen"][m] for r in results]) for m in METRICS}
        row["runs"] = [{"chosen": r["chosen"], "best_epoch": r["best_epoch"], "rounds": r["rounds"]} for r in results]
        if all(r["rounds"] for r in results) and variant == "teacher":
            row["kept_accuracy"] = {"first": stats([r["rounds"][0]["kept_accuracy"] for r in results]),
                                    "last": stats([r["rounds"][-1]["kept_accuracy"] for r in results])}
        report["variants"][variant] = row
    table = markdown(report)
    for folder in filter(None, [pathlib.Path(args.output_dir), args.results and pathlib.Path(args.results)]):
        folder.mkdir(parents=True, exist_ok=True)
        write_json_atomic(folder / f"pseudo_labels{args.tag}.json", report)
        (folder / f"pseudo_labels{args.tag}.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
