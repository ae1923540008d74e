"""Model quality: tfalign's recipe, each of its techniques switched off in turn,
over several seeds, beside the classical baselines and the trivial references.

Every run trains the recipe (or an ablation) on the chosen data, keeps the best
validation checkpoint by clip accuracy, and reports test clip accuracy and
sentence IoU decoded greedily and (decoders without history) exactly. The
table gives the mean and the spread (half the range over seeds) of each.

    python benchmarks/quality.py --seeds 0,1 --epochs 40
    python benchmarks/quality.py --seeds 0 --epochs 40 --only recipe --difficulty 0.8 --data-seed 3

Runs land in ``--output-dir`` (default runs/quality-<data>), one folder each;
a rerun skips the runs that finished (and resumes a killed one), so the table
can be built up piece by piece, but only runs of the same config and the same
code (``tfalign/``'s hash): any other is trained again (``--refuse-stale``:
refused in one line instead). Writes ``quality.json`` and ``quality.md``
there (and with ``--results`` a copy of both, e.g. into benchmarks/results/).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import code_hash, config_hash, machine  # noqa: E402

import numpy as np  # noqa: E402

from tfalign.files import write_json_atomic  # noqa: E402

# Each ablation switches one technique of the recipe back to the paper's
# setting (a few need a companion change to stay a valid config). "paper" is
# the paper's own best experiment, unchanged, at the same budget.
ABLATIONS = {
    "recipe": ("tfalign's recipe", None, {}),
    "no_contrastive": ("no contrastive loss", None, {"contrastive_weight": 0.0}),
    "stack_tops": ("the classifier also reads the stack tops v, s (the paper's input)", None,
                   {"stack_features": True}),
    "no_similarity": ("no similarity features: the classifier reads the stack tops (no joint embedding)", None,
                      {"similarity_units": 0, "contrastive_weight": 0.0, "stack_features": True}),
    "no_input_channel": ("no similarity channel on the SBN-standardized inputs (encoders and stacks only)", None,
                         {"similarity_source": "both"}),
    "input_channel_only": ("only the input channel (no encoder or stack similarity)", None,
                           {"similarity_source": "input"}),
    "no_lattice": ("no lattice loss (trained on the ground-truth path only)", None, {"lattice_weight": 0.0}),
    "paper_positions": ("the paper's 10 absolute position features", None, {"position": "paper"}),
    "paper_samples": ("the paper's fixed <= 100-action samples instead of random crops", None,
                      {"sampling": "paper", "max_train_actions": 100, "whole_video_fraction": 0.0}),
    "no_averaging": ("no weight averaging", None, {"weight_averaging": 0.0}),
    "no_encoder_dropout": ("no encoder dropout", None, {"encoder_dropout": 0.0}),
    "history_decoder": ("the paper's decoder with history (action and matched stacks; greedy only)", None,
                        {"history": True, "lattice_weight": 0.0, "decoding": "greedy"}),
    "paper": ("the paper's rp_lars_sbn, unchanged", "rp_lars_sbn", {}),
    "our_pretraining": ("the paper's remedy: our_pretraining (LSMDC stand-in, then finetuning; Full features)",
                        "our_pretraining", {}),
}
REFERENCES = ("dtw", "md", "even", "unmatched")


IDENTITY_FILE = "benchmark_identity.json"  # in a run folder: the config and code hashes it was trained with


def run_identity(config) -> dict:
    return {"config_hash": config_hash(config.to_dict()), "code_hash": code_hash()}


def reusable(run_dir, identity: dict, refuse_stale: bool, log) -> bool:
    """Whether ``run_dir`` holds (part of) a run of this config and code; a folder of
    another is removed (trained again) or, with ``refuse_stale``, refused."""
    if not run_dir.exists():
        return False
    found = run_dir / IDENTITY_FILE
    recorded = json.loads(found.read_text()) if found.exists() else {}
    if recorded == identity:
        return True
    what = ", ".join(k.replace("_hash", "") for k in identity if recorded.get(k) != identity[k])
    if refuse_stale:
        raise SystemExit(f"error: {run_dir}: trained with another {what} than this one (--refuse-stale); remove "
                         f"the folder or rerun without --refuse-stale to train it again")
    log(f"  {run_dir.name}: trained with another {what}: training it again")
    shutil.rmtree(run_dir)
    return False


def run_one(config, run_dir, log, refuse_stale: bool = False, make_task=None):
    """Trains (or resumes) one run; returns test figures of its best checkpoint, both decodings.
    A finished or partial run in ``run_dir`` is reused only if its config and the
    code are this one's (``reusable``). ``make_task``: the run's task (``run_experiment``'s)."""
    from tfalign.data.datasets import load_episodes
    from tfalign.evaluation.prediction import evaluate_model
    from tfalign.run import run_experiment
    from tfalign.training.checkpoints import load_model

    import tensorflow as tf

    identity = run_identity(config)
    result_file = run_dir / "quality.json"
    if reusable(run_dir, identity, refuse_stale, log) and result_file.exists():
        result = json.loads(result_file.read_text())
        if "chosen" not in result:  # runs measured before the validation-chosen decoding existed
            result["chosen"] = chosen_decoding(config, run_dir, result)
            write_json_atomic(result_file, result)
        return result
    started = time.time()
    resume = (run_dir / "state.json").exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(run_dir / IDENTITY_FILE, identity)
    run_experiment(config, run_dir, tf.distribute.get_strategy(), resume=resume, export=False,
                   log=lambda *_: None, make_task=make_task)
    _, model = load_model(run_dir, "clip_accuracy")
    test = load_episodes(config.data, "test")
    state = json.loads((run_dir / "state.json").read_text())
    result = {"seconds": round(time.time() - started, 1), "best_epoch": state["best"]["clip_accuracy"]["epoch"],
              "epochs": state["epoch"]}
    for decoding in ("greedy", "exact"):
        if decoding == "exact" and config.model.history:
            continue
        figures = evaluate_model(model, test, decoding)
        result[decoding] = {"clip_accuracy": figures["clip_accuracy"], "sentence_iou": figures["sentence_iou"]}
    result["chosen"] = chosen_decoding(config, run_dir, result)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(result_file, result)
    log(f"  {run_dir.name}: " + ", ".join(f"{d} {result[d]['clip_accuracy']:.4f} / {result[d]['sentence_iou']:.4f}"
                                         for d in ("greedy", "exact") if d in result) + f" ({result['seconds']} s)")
    return result


def chosen_decoding(config, run_dir, result) -> dict:
    """The test figures of the decoding the run itself uses: its config's, or with
    "auto" the better of greedy and exact on validation (as tfalign.train chooses)."""
    from tfalign.data.datasets import load_episodes
    from tfalign.run import choose_decoding
    from tfalign.training.checkpoints import load_model

    metrics = run_dir / "metrics.json"
    decoding = json.loads(metrics.read_text()).get("decoding") if metrics.exists() else None
    if decoding is None:  # a run trained before the choice was recorded: choose as tfalign.train does
        _, model = load_model(run_dir, "clip_accuracy")
        decoding = choose_decoding(config, model, load_episodes(config.data, "val"), log=lambda *_: None)
    return {"decoding": decoding, **result[decoding]}


def references(data_config):
    from tfalign.data.datasets import load_episodes
    from tfalign.evaluation.baselines import run_baseline

    splits = {s: load_episodes(data_config, s) for s in ("train", "val", "test")}
    out = {}
    for name in REFERENCES:
        r = run_baseline(name, splits["train"], splits["val"], splits["test"])
        out[name] = {"clip_accuracy": r["clip_accuracy"], "sentence_iou": r["sentence_iou"]}
    return out


def summarize(values):
    values = np.asarray(values, float)
    return {"mean": float(values.mean()), "spread": float((values.max() - values.min()) / 2), "n": len(values)}


def markdown(report) -> str:
    lines = [f"Test split of `{report['data']['dataset']}` (difficulty {report['data']['difficulty']}, data seed "
             f"{report['data']['seed']}); {report['epochs']} epochs, seeds {report['seeds']}; mean ± half-range. "
             "The run's decoding is what `tfalign.train` reports: for the recipe (`decoding=auto`) greedy or exact, "
             "whichever scores better on validation.",
             "",
             "| method | clip acc (run's decoding) | sentence IoU (run's decoding) | greedy clip acc "
             "| greedy sentence IoU | exact clip acc | exact sentence IoU | best epoch |",
             "|---|---|---|---|---|---|---|---|"]
    cell = lambda s: f"{s['mean']:.3f} ± {s['spread']:.3f}" if s else "-"
    for name, row in report["runs"].items():
        g, e, c = row.get("greedy", {}), row.get("exact", {}), row.get("chosen", {})
        lines.append(f"| {row['label']} | {cell(c.get('clip_accuracy'))} | {cell(c.get('sentence_iou'))} | "
                     f"{cell(g.get('clip_accuracy'))} | {cell(g.get('sentence_iou'))} | "
                     f"{cell(e.get('clip_accuracy'))} | {cell(e.get('sentence_iou'))} | "
                     f"{row['best_epoch']['mean']:.0f} |")
    labels = {"dtw": "DTW baseline (ridge embedding, tuned drop cost)", "md": "MD baseline",
              "even": "trivial: clips spread evenly over the texts", "unmatched": "trivial: every clip unmatched"}
    for name, figures in report["references"].items():
        lines.append(f"| {labels[name]} | {figures['clip_accuracy']:.3f} | {figures['sentence_iou']:.3f} | | | | | |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiment", default="tfalign_rp_sbn", help="the recipe to ablate")
    parser.add_argument("--seeds", default="0,1", help="model seeds, comma-separated")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--only", help=f"comma-separated subset of: {', '.join(ABLATIONS)}")
    parser.add_argument("--difficulty", type=float, help="synthetic feature difficulty (default: the recipe's)")
    parser.add_argument("--data-seed", type=int, help="seed of the synthetic features")
    parser.add_argument("--dataset", help="dataset (default: the recipe's, yms-synthetic)")
    parser.add_argument("--pretrain-epochs", type=int, default=10,
                        help="our_pretraining: epochs of its first stage (the paper's 100 do not fit a CPU budget)")
    parser.add_argument("--lsmdc-scale", type=float, default=2.0,
                        help="our_pretraining: size of the LSMDC stand-in relative to YMS training clips")
    parser.add_argument("--output-dir", help="where runs and tables go (default runs/quality-<data>)")
    parser.add_argument("--results", help="also copy quality.json and quality.md into this folder")
    parser.add_argument("--refuse-stale", action="store_true",
                        help="refuse (one line) a run folder trained with another config or code instead of training "
                             "it again")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    from tfalign.experiments import get_experiment

    recipe = get_experiment(args.experiment)
    data_changes = {k: v for k, v in {"difficulty": args.difficulty, "seed": args.data_seed,
                                      "dataset": args.dataset}.items() if v is not None}
    data = dataclasses.replace(recipe.data, **data_changes)
    seeds = [int(s) for s in args.seeds.split(",")]
    names = args.only.split(",") if args.only else list(ABLATIONS)
    unknown = set(names) - set(ABLATIONS)
    if unknown:
        parser.error(f"--only: unknown {sorted(unknown)}; expected some of {list(ABLATIONS)}")
    out_dir = pathlib.Path(args.output_dir or f"runs/quality-{data.dataset}-d{data.difficulty}-s{data.seed}")
    total, done, started = len(names) * len(seeds), 0, time.time()
    report = {"experiment": recipe.name, "data": dataclasses.asdict(data), "epochs": args.epochs, "seeds": seeds,
              "machine": machine(), "runs": {}, "references": references(data)}
    for name in names:
        label, base, changes = ABLATIONS[name]
        results = []
        for seed in seeds:
            config = (get_experiment(base) if base else recipe).override(
                changes, epochs=args.epochs, seed=seed, **{f"data.{k}": v for k, v in data_changes.items()})
            if config.init_from is not None:
                config = config.override({"init_from.trainer.epochs": args.pretrain_epochs,
                                          "init_from.data.lsmdc_scale": args.lsmdc_scale,
                                          "init_from.trainer.seed": seed})
            elapsed = time.time() - started
            left = f", about {elapsed / done * (total - done) / 60:.0f} min left" if done else ""
            print(f"[{done + 1}/{total}] {name} seed {seed}{left}", flush=True)
            results.append(run_one(config, out_dir / f"{name}-e{args.epochs}-seed{seed}", print,
                                   refuse_stale=args.refuse_stale))
            done += 1
        row = {"label": label, "changes": changes, "best_epoch": summarize([r["best_epoch"] for r in results]),
               "per_seed": results}
        for decoding in ("greedy", "exact", "chosen"):
            if all(decoding in r for r in results):
                row[decoding] = {m: summarize([r[decoding][m] for r in results])
                                 for m in ("clip_accuracy", "sentence_iou")}
        report["runs"][name] = row
    table = markdown(report)
    out_dir.mkdir(parents=True, exist_ok=True)
    for folder in filter(None, [out_dir, args.results and pathlib.Path(args.results)]):
        folder.mkdir(parents=True, exist_ok=True)
        write_json_atomic(folder / "quality.json", report)
        (folder / "quality.md").write_text(table)
    print(table)
    print(f"wrote {out_dir}/quality.json and quality.md")


if __name__ == "__main__":
    main()
