"""Train a NeuMATCH aligner: one of the paper's experiments, or tfalign's recipe, by name.

Examples:
  python -m tfalign.train --list
  python -m tfalign.train --experiment tfalign_rp_sbn --epochs 40        # tfalign's recipe, ~10 min on 2 cores
  python -m tfalign.train --experiment rp_lars_sbn --dry-run
  python -m tfalign.train --experiment rp_lars_sbn --epochs 12
  python -m tfalign.train --experiment rp_lars_sbn --epochs 12 --resume  # after an interruption
  python -m tfalign.train --experiment tfalign_rp_sbn --set data.difficulty=0.8 --epochs 2
Episodes of your own, written by pipelines.prepare into episodes/:
  python -m tfalign.train --experiment full_adam --dataset tfrecord:episodes --features full

The run folder (default runs/<experiment>[-<changed options>]-<hash>, e.g.
runs/rp_lars_sbn-seed1-3f2a9c1e; the hash covers the resolved config but not
--epochs, so --resume with more --epochs trains the same run on) holds
config.json, state.json (progress, history, the final weights' digest),
checkpoints (last, best by validation clip accuracy and by sentence IoU),
TensorBoard logs (tensorboard --logdir runs), metrics.json with the test
figures of each best checkpoint, and saved_model/.

From Python, the same as a function (tfalign.api.training; its docstring: help(tfalign.train)):
  tfalign.train("tfalign_rp_sbn", train=episodes, val=val_episodes, output_dir="runs/mine", epochs=2)

Memory: before TensorFlow starts, the command turns oneDNN's graph rewrites off and fixes glibc's
mmap threshold at 32 MB: the README's run then holds about 1.45 GB between epochs instead of
growing to 2 GB (peak 1.65 GB), 5-12% slower. TF_ENABLE_ONEDNN_OPTS=1 or MALLOC_MMAP_THRESHOLD_
set by you are kept (tfalign.runtime; from Python, call tfalign.runtime.lean_training_process()
before importing TensorFlow).
"""

from __future__ import annotations

import argparse
import pathlib
import sys

from tfalign import cli, console, runtime
from tfalign.errors import UserError
from tfalign.experiments import EXPERIMENTS, configure, get_experiment

EXIT_TRAINING_ERROR = 3


FEATURE_NAMES = {"rp": "RP 300/300", "full": "Full 2048/768", "lxmert": "LXMERT 768/768"}
OPTIMIZER_NAMES = {"adam": "Adam", "lars": "AdamLARS", "lamb": "LAMB"}


def build_parser() -> argparse.ArgumentParser:
    parser = cli.make_parser("python -m tfalign.train", __doc__)
    parser.add_argument("--experiment", help="experiment name (see --list); required unless --list")
    parser.add_argument("--list", action="store_true", help="list the experiments and exit")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the run folder, the resolved config as JSON and the trainable parameter count; "
                             "train nothing")
    parser.add_argument("--seed", type=cli.number(int, 0),
                        help="seed of the model's initialization and of the data order (default: the experiment's, 0)")
    add_run_options(parser)
    parser.add_argument("--output-dir", help="run folder (default: <runs-dir>/<experiment>[-<changed options>]-<hash>)")
    parser.add_argument("--runs-dir", default="runs",
                        help="where named run folders go, with index.csv listing them (not used with --output-dir)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run of this experiment, data and options (also with a new --epochs: "
                             "training goes on to it); fails if there is none")
    parser.add_argument("--no-export", action="store_true", help="do not write saved_model/ at the end")
    parser.add_argument("--strategy", choices=["auto", "default", "mirrored", "multiworker"], default="auto",
                        help="tf.distribute strategy: auto = mirrored over several GPUs, else one device; "
                             "multiworker reads TF_CONFIG")
    parser.add_argument("--cpu-replicas", type=cli.number(int, 0), default=0,
                        help="split the CPU into N logical devices, to try mirrored training without GPUs "
                             "(0: no split)")
    parser.add_argument("--collective-timeout", type=cli.number(float, 0, low_open=True), default=300.0,
                        help="seconds before a collective operation gives up (multiworker: a dead worker)")
    cli.add_data_arguments(parser)
    return parser


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """The options that change a run's config or its epochs (train's, and compare's for every run)."""
    parser.add_argument("--epochs", type=cli.number(int, 1),
                        help="epochs to train (default: the experiment's; the paper's 350)")
    parser.add_argument("--lr", type=cli.number(float, 0, low_open=True),
                        help="initial learning rate, for LARS the product lr * eta (default: the experiment's)")
    parser.add_argument("--batch-size", type=cli.number(int, 1),
                        help="global batch size (default: the experiment's; the paper's 32)")
    parser.add_argument("--batch-nodes", type=cli.number(int, 0),
                        help="budget of padded lattice nodes (batch x clips x texts) a training batch: long "
                             "videos in smaller batches, memory bounded by it; 0 = none (default: the "
                             "experiment's)")
    parser.add_argument("--batch-actions", type=cli.number(int, 0),
                        help="budget of padded actions (batch x (clips + texts)) a training batch, a token "
                             "budget: bounds the encoders' memory as --batch-nodes the lattice's; 0 = none "
                             "(default: the experiment's)")
    parser.add_argument("--label-smoothing", type=cli.number(float, 0, 1, high_open=True),
                        help="label smoothing epsilon (default: the experiment's)")
    parser.add_argument("--optimizer", choices=["adam", "lars", "lamb"],
                        help="override the experiment's optimizer (default: the experiment's)")
    parser.add_argument("--precision", choices=["fp32", "bf16", "fp16"],
                        help="the model's math (trainer.precision): fp32, or keras.mixed_precision's bf16 or fp16 "
                             "(float32 weights; fp16 with dynamic loss scaling, one replica) (default: fp32)")
    parser.add_argument("--pretrain-epochs", type=cli.number(int, 1),
                        help="an experiment with a first stage (our_pretraining) only: epochs of that stage "
                             "(init_from.trainer.epochs; default 100)")
    parser.add_argument("--lsmdc-scale", type=cli.number(float, 0, low_open=True),
                        help="our_pretraining only: size of the LSMDC stand-in relative to YMS training clips "
                             "(init_from.data.lsmdc_scale; default 20)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="override any config field by its dotted path, e.g. --set model.stack_dropout=0.3 "
                             "--set data.difficulty=0.8 --set init_from.trainer.epochs=5 (a field name alone "
                             "names the first group that has it: learning_rate = optimizer.learning_rate); "
                             "repeatable; --dry-run shows the fields; default: none")
    parser.add_argument("--max-steps-per-epoch", type=cli.number(int, 1),
                        help="cap the steps of an epoch, for quick trials (default: every batch)")
    parser.add_argument("--preemption-grace", type=cli.number(float, 0, low_open=True), default=20.0,
                        help="on SIGTERM or SIGINT: seconds to save a checkpoint at the next step before stopping "
                             "without one; either way the command exits 75 and the same command with --resume "
                             "continues (keep it below the scheduler's wait before SIGKILL)")


def print_experiments() -> None:
    """The paper's experiments, the stages they train first, tfalign's own recipes: tables as the README's."""
    from tfalign.experiments import PAPER_EXPERIMENTS, RECIPES, STAGES

    width = max(map(len, EXPERIMENTS))
    header = f"  {'experiment':<{width}}  {'features':<14}  {'optimizer':<9}  {'normalization':<13}  {'lr':<7}  what"
    for names, title in ((PAPER_EXPERIMENTS, "The paper's 13 experiments (a reproduction: their numerics stay as "
                                             "published)"),
                         (STAGES, "Stages the paper's experiments train first (init_from; each trains alone too)"),
                         (RECIPES, "tfalign's own recipes (the paper's network plus tfalign's techniques)")):
        print(title)
        print(header)
        for name, e in EXPERIMENTS.items():
            if name in names:
                normalization = e.model.normalization
                print(f"  {name:<{width}}  {FEATURE_NAMES[e.model.encoder]:<14}  "
                      f"{OPTIMIZER_NAMES[e.optimizer.name]:<9}  "
                      f"{normalization.upper() if normalization != 'none' else 'none':<13}  "
                      f"{e.optimizer.learning_rate:<7g}  {e.description}")
        if names is PAPER_EXPERIMENTS:
            print("(On the embedded data, yms-synthetic, they end at or near the level of calling every clip "
                  "unmatched:\ndocs/results.md. tfalign_rp_sbn, below, starts where the DTW baseline ends. A run "
                  "that ends there says so.)")
        print()


def resolve_config(args):
    """The registered experiment with the command line's changes, all through
    ``ExperimentConfig.override`` (dotted paths): --set first, then the options."""
    from tfalign.configs import parse_setting

    config = get_experiment(args.experiment)
    if config.init_from is None and (args.pretrain_epochs or args.lsmdc_scale):
        raise UserError(f"--pretrain-epochs and --lsmdc-scale apply to an experiment with a first stage "
                        f"(our_pretraining), not {config.name}")
    changes = {}
    for setting in args.set:
        changes.update(parse_setting(config, setting))
    options = {"trainer.epochs": args.epochs, "optimizer.learning_rate": args.lr,
               "trainer.batch_size": args.batch_size, "trainer.batch_nodes": args.batch_nodes,
               "trainer.batch_actions": args.batch_actions,
               "trainer.seed": args.seed,
               "trainer.label_smoothing": args.label_smoothing, "optimizer.name": args.optimizer,
               "trainer.precision": args.precision, "init_from.trainer.epochs": args.pretrain_epochs,
               "init_from.data.lsmdc_scale": args.lsmdc_scale,
               **{f"data.{k}": v for k, v in cli.data_changes_from_args(args).items()}}
    return configure(config, {**changes, **options})  # an option not given (None) changes nothing


def main(argv=None) -> int:
    runtime.lean_training_process()  # before cli.parse starts TensorFlow
    parser = build_parser()
    args = cli.parse(parser, argv)
    if args.list:
        print_experiments()
        return 0
    if not args.experiment:
        parser.error("--experiment is required (or --list)")
    config = resolve_config(args)
    from tfalign.training.run_folder import run_folder_name

    run_dir = args.output_dir or str(pathlib.Path(args.runs_dir) / run_folder_name(config, args.max_steps_per_epoch))
    warmup, epochs = config.schedule.warmup_epochs, config.trainer.epochs
    if warmup and warmup >= epochs:
        console.warn(f"the warm-up ({warmup} epochs) is as long as the run or longer ({epochs} epochs): the "
                     f"learning rate never reaches {config.optimizer.learning_rate:g}")
    if args.dry_run:
        from tfalign.model import build_model, count_trainable

        print(f"run folder: {run_dir}" + (" (holds a run: --resume continues it)"
                                          if (pathlib.Path(run_dir) / "state.json").exists() else ""))
        print(config.to_json())
        count = count_trainable(build_model(config.model))
        expected = config.paper_parameter_count
        print(f"trainable parameters: {count:,}" + (f" (paper code: {expected:,})" if expected else ""))
        return 0

    from tfalign.training.run_folder import check_run_folder

    note = check_run_folder(run_dir, args.resume, config)
    if note:
        console.say(note)
    runs_dir = None if args.output_dir else args.runs_dir  # only named runs are indexed
    return train_run(config, run_dir, args, runs_dir)


def train_run(config, run_dir, args, runs_dir=None) -> int:
    """Trains ``config`` into ``run_dir``; ``runs_dir``: the runs folder whose index.csv lists it."""
    import tensorflow as tf

    from tfalign.run import train_into
    from tfalign.training.loop import TrainingError
    from tfalign.training.strategy import describe_strategy, make_strategy

    strategy = make_strategy(args.strategy, args.cpu_replicas, args.collective_timeout)
    console.say(f"experiment {config.name} -> {run_dir} ({strategy.num_replicas_in_sync} replica(s))")
    try:
        summary = train_into(config, run_dir, strategy, resume=args.resume, runs_dir=runs_dir,
                             max_steps_per_epoch=args.max_steps_per_epoch, export=not args.no_export,
                             runtime=describe_strategy(strategy), preemption_grace=args.preemption_grace)
    except TrainingError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_TRAINING_ERROR
    except (tf.errors.DeadlineExceededError, tf.errors.UnavailableError, tf.errors.CancelledError,
            tf.errors.AbortedError) as error:
        print(f"error: a collective operation failed ({type(error).__name__}: {error.message.splitlines()[0]}); "
              f"a worker may have died or be unreachable. Restart every worker with --resume to continue from "
              f"the last completed epoch.", file=sys.stderr)
        return EXIT_TRAINING_ERROR
    console.say(f"wrote {run_dir}/metrics.json")
    if summary and summary.get("standing"):  # the last line: where a run that learned nothing stands
        console.warn(summary["standing"]["line"])
    return 0 if summary else 1


if __name__ == "__main__":
    sys.exit(cli.run(main))
