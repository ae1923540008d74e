"""Data efficiency: test figures against the number of training videos.

Trains tfalign's recipe (and the paper's ``rp_lars_sbn`` at the same budget) on
subsets of the training split (``data.train_videos``: a subset drawn with the
data seed), fits the DTW and MD baselines on the very same subsets, and writes
the learning curve: ``data_efficiency.json``, ``data_efficiency.md`` (a table)
and ``data_efficiency.png`` (clip accuracy and sentence IoU against training
videos).

    python benchmarks/data_efficiency.py --sizes 8,16,33,66 --seeds 0,1 --data-seeds 0,1 \\
        --results benchmarks/results

On features in one space (``--features joint``: a vision-language encoder's)
the baselines are zero-shot DTW (no training: the identity map, the drop cost
tuned on validation), DTW on the ridge map fitted from zero and DTW on the map
pulled toward the identity (``dtw-prior``); size 0 trains the recipe on the
unlabelled videos alone (``--unlabelled all``):

    python benchmarks/data_efficiency.py --features joint --paper '' --sizes 0,8,66 \\
        --unlabelled all --unlabelled-at 0,8 --epochs 40 --tag _joint
    python benchmarks/data_efficiency.py --features joint --paper '' --sizes 16,33 --seeds 0 \\
        --unlabelled all --unlabelled-at 0,8 --epochs 40 --tag _joint --merge --results benchmarks/results

Two model seeds at every size and every data seed: below the whole split a
data seed draws another subset of the training videos (and other synthetic
features); at the whole split it draws other synthetic features of the same
videos. Runs land in
``--output-dir`` (default runs/data-efficiency), one folder each; a rerun
skips the finished ones, so the curve can be built up piece by piece; a run
folder trained with another config or another code (``tfalign/``'s hash) is
trained again (``--refuse-stale``: refused in one line).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import provenance, spread as cell, stats  # noqa: E402
from quality import run_one  # noqa: E402

import numpy as np  # noqa: E402

from tfalign.files import write_json_atomic  # noqa: E402

METRICS = ("clip_accuracy", "sentence_iou")


def baselines(data, size, unlabelled=()):
    """DTW and MD fitted on the subset of ``size`` training videos, tuned on validation;
    on features in one space zero-shot DTW and DTW with the prior (``dtw-prior``) too;
    for each count of ``unlabelled`` videos, DTW self-trained on them (``dtw+u<count>``)."""
    from tfalign.data.classical import DTWFit, self_trained_fit
    from tfalign.data.datasets import load_episodes, load_unlabelled
    from tfalign.data.metrics import evaluate_alignments
    from tfalign.data.ridge import shares_space
    from tfalign.evaluation.baselines import run_baseline

    data = dataclasses.replace(data, train_videos=size)
    splits = {s: load_episodes(data, s) for s in ("train", "val", "test")}
    figures = lambda fit: {m: v for m, v in evaluate_alignments(splits["test"], [fit.align(e) for e in
                                                                                 splits["test"]]).items()
                           if m in METRICS}
    out = {}
    if splits["train"]:
        out = {name: {m: run_baseline(name, splits["train"], splits["val"], splits["test"])[m] for m in METRICS}
               for name in ("dtw", "md")}
    if shares_space(splits["val"]):
        out["zero-shot"] = figures(DTWFit.fit([], splits["val"]))
        if splits["train"]:
            out["dtw-prior"] = figures(DTWFit.fit(splits["train"], splits["val"]))
    for count in unlabelled:
        extra = load_unlabelled(dataclasses.replace(data, unlabelled_videos=count))
        out[f"dtw+u{count}"] = figures(self_trained_fit(splits["train"], splits["val"], extra)[0])
    return out


def curve(args, recipe, paper, full_size) -> dict:
    """Every run and baseline of the curve, by size."""
    sizes, seeds, data_seeds = (_ints(args.sizes), _ints(args.seeds), _ints(args.data_seeds))
    jobs = [(size, ds) for size in sizes for ds in data_seeds]
    unlabelled = _counts(args.unlabelled)
    takes_unlabelled = lambda size: size < full_size and (args.unlabelled_at is None or
                                                          size in _ints(args.unlabelled_at))
    total = sum((len(seeds) + (1 if paper else 0) if size else 0)
                + (len(seeds) * len(unlabelled) if takes_unlabelled(size) else 0) for size, _ in jobs)
    done, started, rows = 0, time.time(), {}
    for size, data_seed in jobs:
        row = rows.setdefault(size, {})
        videos = None if size >= full_size else size
        data = dataclasses.replace(recipe.data, seed=data_seed, train_videos=videos)
        with_unlabelled = takes_unlabelled(size)
        for name, figures in baselines(data, videos, unlabelled if with_unlabelled else ()).items():
            row.setdefault(name, []).append(figures)
        runs = ([("recipe", recipe, seed) for seed in seeds] + ([("paper", paper, seeds[0])] if paper else [])
                if size else [])  # no labelled video: the recipe learns from the unlabelled ones alone
        runs += [(f"recipe+u{count}", recipe.override({"data.train_videos": videos, "data.unlabelled_videos": count}),
                  seed)
                 for count in (unlabelled if with_unlabelled else ()) for seed in seeds]
        for name, base, seed in runs:
            left = f", about {(time.time() - started) / done * (total - done) / 60:.0f} min left" if done else ""
            print(f"[{done + 1}/{total}] {name} on {size} videos, data seed {data_seed}, seed {seed}{left}", flush=True)
            config = base.override({"data.seed": data_seed, "data.train_videos": videos}, epochs=args.epochs,
                                   seed=seed)
            difficulty = f"-x{config.data.difficulty:g}" if config.data.difficulty != 0.5 else ""
            features = f"-{config.data.features}" if config.data.features != "rp" else ""
            folder = (pathlib.Path(args.output_dir)
                      / f"{name}-v{size}-d{data_seed}{difficulty}{features}-e{args.epochs}-seed{seed}")
            result = run_one(config, folder, print, refuse_stale=args.refuse_stale)
            row.setdefault(name, []).append({m: result["chosen"][m] for m in METRICS})
            done += 1
    return {size: {name: {m: stats([r[m] for r in results]) for m in METRICS} for name, results in row.items()
                   if results} for size, row in rows.items()}


def markdown(report) -> str:
    names = _names(report)
    labels = {n: _label(report, n) for n in names}
    lines = [f"Test split of `{report['data']['dataset']}` (difficulty {report['data']['difficulty']}, "
             f"{report['data']['features']} features); {report['epochs']} epochs; clip accuracy / sentence IoU, "
             "mean ± sample standard deviation (n runs; for two, their range) over the model "
             f"seeds {report['seeds']} and the data seeds {report['data_seeds']} (each draws other synthetic "
             "features and, below the whole split, another subset of the training videos). The baselines are "
             "fitted on the same videos. Command: `" + report["command"] + "`.", "",
             "| training videos | " + " | ".join(f"{labels[n]} clip acc | {labels[n]} IoU" for n in names) + " |",
             "|---|" + "---|---|" * len(names)]
    for size, row in sorted(report["curve"].items(), key=lambda kv: int(kv[0])):
        lines.append(f"| {size} | " + " | ".join(f"{cell(row[n]['clip_accuracy'])} | {cell(row[n]['sentence_iou'])}"
                                                 if n in row else "- | -" for n in names) + " |")
    return "\n".join(lines) + "\n"


def plot(report, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted(int(s) for s in report["curve"])
    position = lambda size: max(size, 2)  # 0 labelled videos, drawn at 2 on the log axis
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    base = {"recipe": ("tab:blue", "o-"), "dtw": ("tab:orange", "s--"), "md": ("tab:green", "^:"),
            "paper": ("tab:red", "d-."), "zero-shot": ("black", "x:"), "dtw-prior": ("tab:olive", "v--")}
    shades = {"recipe": ["tab:purple", "tab:cyan", "navy"], "dtw": ["tab:brown", "gold", "peru"]}
    styles, labels = {}, {}
    for name in _names(report):
        head, _, count = name.partition("+u")
        extra = [n for n in _names(report) if n.startswith(head + "+u")]
        color = shades[head][extra.index(name) % 3] if count else base[head][0]
        styles[name], labels[name] = (color, base[head][1]), _label(report, name)
    for ax, metric in zip(axes, METRICS):
        for name, (color, style) in styles.items():
            points = [(s, report["curve"][str(s)][name][metric]) for s in sizes if name in report["curve"][str(s)]]
            if not points:
                continue
            means = np.array([p[1]["mean"] for p in points])
            stds = np.array([p[1]["std"] for p in points])
            xs = [position(p[0]) for p in points]
            ax.plot(xs, means, style, color=color, label=labels[name])
            ax.fill_between(xs, means - stds, means + stds, color=color, alpha=0.15)
        ax.set_xscale("log", base=2)
        ax.set_xticks([position(s) for s in sizes], [str(s) for s in sizes])
        ax.set_xlabel("training videos")
        ax.set_title(f"test {metric.replace('_', ' ')}")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def _counts(text: str) -> list:
    """Counts of unlabelled videos: integers or "all"."""
    return [v.strip() if v.strip() == "all" else int(v) for v in (text or "").split(",") if v.strip()]


def _names(report) -> list[str]:
    """The methods of a report, in a fixed order: recipe rows, then the baselines, then the paper's."""
    found = {n for row in report["curve"].values() for n in row}
    order = ["recipe", *sorted(n for n in found if n.startswith("recipe+")), "zero-shot", "dtw-prior", "dtw",
             *sorted(n for n in found if n.startswith("dtw+")), "md", "paper"]
    return [n for n in order if n in found]


def _label(report, name: str) -> str:
    base = {"recipe": report["experiment"], "dtw": "DTW", "md": "MD", "paper": report["paper"] or "",
            "zero-shot": "zero-shot DTW", "dtw-prior": "DTW with the prior"}
    head, _, count = name.partition("+u")
    return f"{base[head]} + {count} unlabelled" if count else base[head]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiment", default="tfalign_rp_sbn", help="the recipe")
    parser.add_argument("--paper", default="rp_lars_sbn", help="the paper's experiment beside it ('' for none)")
    parser.add_argument("--sizes", default="8,16,33,66", help="training videos, comma-separated")
    parser.add_argument("--seeds", default="0,1", help="model seeds")
    parser.add_argument("--data-seeds", default="0,1", help="data seeds (each draws another subset)")
    parser.add_argument("--epochs", type=int, help="epochs of every run (default: each experiment's)")
    parser.add_argument("--difficulty", type=float, help="synthetic feature difficulty (default: the recipe's)")
    parser.add_argument("--features", help="synthetic features: rp, full, lxmert or joint (one space for both "
                        "sides, as a vision-language encoder's) (default: the recipe's)")
    parser.add_argument("--output-dir", default="runs/data-efficiency", help="where the runs and results go")
    parser.add_argument("--results", help="also copy the results into this folder (e.g. benchmarks/results)")
    parser.add_argument("--unlabelled", default="",
                        help="also train the recipe with these counts of the other training videos given without "
                             "labels (comma-separated, e.g. all or 16,all), beside DTW self-trained on them (below "
                             "the whole split)")
    parser.add_argument("--unlabelled-at", help="the training-video counts that get the --unlabelled runs, "
                        "comma-separated (default: every count below the whole split)")
    parser.add_argument("--refuse-stale", action="store_true",
                        help="refuse (one line) a run folder trained with another config or code instead of training "
                             "it again (a finished run is reused only when both match)")
    parser.add_argument("--merge", action="store_true",
                        help="keep the other sizes of the curve already written under this tag (an earlier "
                             "invocation with other seeds, say) and add this invocation's")
    parser.add_argument("--tag", default="", help="a suffix of the result files (data_efficiency<tag>.json, ...), "
                        "e.g. _difficulty0.2 for a curve at another difficulty")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    from tfalign.data.datasets import SPLIT_SIZES
    from tfalign.experiments import get_experiment

    recipe = get_experiment(args.experiment)
    if args.difficulty is not None:
        recipe = recipe.override({"data.difficulty": args.difficulty})
    if args.features:
        recipe = recipe.override({"data.features": args.features})
    args.epochs = args.epochs or recipe.trainer.epochs
    paper = get_experiment(args.paper).override({"data.difficulty": recipe.data.difficulty}) if args.paper else None
    report = {"experiment": recipe.name, "paper": args.paper or None, "data": dataclasses.asdict(recipe.data),
              "epochs": args.epochs, "seeds": _ints(args.seeds), "data_seeds": _ints(args.data_seeds),
              **provenance({"recipe": recipe.to_dict(), "paper": paper and paper.to_dict(), "epochs": args.epochs,
                            "sizes": args.sizes, "unlabelled": args.unlabelled, "unlabelled_at": args.unlabelled_at})}
    report["curve"] = {str(k): v for k, v in curve(args, recipe, paper, SPLIT_SIZES["train"]).items()}
    if args.merge:  # the sizes an earlier invocation of the same experiment, data and epochs measured stay
        earlier_path = pathlib.Path(args.output_dir) / f"data_efficiency{args.tag}.json"
        earlier = json.loads(earlier_path.read_text()) if earlier_path.exists() else None
        if not earlier or any(earlier[k] != report[k] for k in ("experiment", "data", "epochs")):
            raise SystemExit(f"error: --merge: {earlier_path} holds no curve of this experiment, data and epochs")
        report["curve"] = dict(sorted({**earlier["curve"], **report["curve"]}.items(), key=lambda kv: int(kv[0])))
        report["command"] = f"{earlier['command']} ; {report['command']}"
    table = markdown(report)
    for folder in filter(None, [pathlib.Path(args.output_dir), args.results and pathlib.Path(args.results)]):
        folder.mkdir(parents=True, exist_ok=True)
        write_json_atomic(folder / f"data_efficiency{args.tag}.json", report)
        (folder / f"data_efficiency{args.tag}.md").write_text(table)
        plot(report, folder / f"data_efficiency{args.tag}.png")
    print(table)


if __name__ == "__main__":
    main()
