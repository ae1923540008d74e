"""Compare experiments: train each over several seeds, then tabulate and plot them.

Examples:
  python -m tfalign.compare --experiments rp_lars_sbn,rp_adam_sbn --seeds 0,1 --epochs 40
  python -m tfalign.compare --paper --seeds 0,1 --epochs 30 --pretrain-epochs 10 --lsmdc-scale 3 \\
      --output-dir runs/paper          # the README's ablation: 26 runs, about 1.5 hours on 2 cores
  python -m tfalign.compare --paper --seeds 0,1 --epochs 30 --pretrain-epochs 10 --lsmdc-scale 3 \\
      --output-dir runs/paper --report-only    # the table and plot again, training nothing
  tensorboard --logdir runs/paper      # HParams: every run's config and figures in one table

Every run is a train run (python -m tfalign.train) in its own folder of
--output-dir, named <experiment>[-<changed options>]-<hash>, with the options
given here shared by all runs. Run it again and it goes on where it stopped:
finished runs are skipped, a killed run is resumed from its last epoch, and a
larger --epochs trains the finished runs on.

It writes, in --output-dir:
  index.csv     every run folder: experiment, options, status, test figures
  results.csv   one row per run of this comparison (experiment, seed, figures)
  results.md    per experiment: test clip accuracy and sentence IoU as mean ± standard
                deviation over the seeds, the best epoch, the wall time of a run
  results.png   the figures as bars with their spread, and the validation curves
The test figures are those of the best checkpoint by validation clip accuracy.
"""

from __future__ import annotations

import argparse
import csv
import io
import pathlib
import subprocess
import sys
import time

from tfalign import cli, console
from tfalign.train import add_run_options, resolve_config, build_parser as build_train_parser
from tfalign.errors import UserError
from tfalign.files import atomic_file, write_text_atomic
from tfalign.training.run_folder import check_run_folder, has_run

COLUMNS = ("experiment", "seed", "folder", "status", "epochs_done", "best_epoch", "val_clip_accuracy",
           "test_clip_accuracy", "test_sentence_iou", "wall_seconds", "train_loss_last", "val_loss_min",
           "val_step_accuracy_max")
# Train options every run of a comparison shares (the experiment and seed are the comparison's own).
SHARED_OPTIONS = ("epochs", "lr", "batch_size", "label_smoothing", "optimizer", "precision", "pretrain_epochs",
                  "lsmdc_scale", "max_steps_per_epoch", "preemption_grace", "dataset", "features", "difficulty",
                  "data_seed", "feature_file", "annotation_dir", "train_videos", "unlabelled_videos",
                  "unlabelled_file")


def paper_experiments() -> list[str]:
    from tfalign.experiments import PAPER_EXPERIMENTS

    return list(PAPER_EXPERIMENTS)


def build_parser() -> argparse.ArgumentParser:
    parser = cli.make_parser("python -m tfalign.compare", __doc__)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--experiments", help="comma-separated experiment names (python -m tfalign.train --list)")
    which.add_argument("--paper", action="store_true",
                       help="the paper's experiments: Table 7's Adam/LARS x SBN/2LN/4LN rows and full_adam, "
                            "rp_adam_warmup_sbn, lxmert_features, our_pretraining")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds; each experiment runs once per seed")
    parser.add_argument("--output-dir", default="runs", help="where the run folders and the results go")
    parser.add_argument("--report-only", action="store_true",
                        help="train nothing: write the table and plot from the runs already there")
    parser.add_argument("--export", action="store_true", help="also export each run's SavedModel (default: none)")
    add_run_options(parser)  # shared by every run
    cli.add_data_arguments(parser)
    return parser


def parse_list(text: str, option: str, kind=str) -> list:
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise UserError(f"{option}: expected a comma-separated list, got {text!r}")
    try:
        values = [kind(item) for item in items]
    except ValueError:
        raise UserError(f"{option}: expected integers >= 0, got {text!r}") from None
    if kind is int and min(values) < 0:
        raise UserError(f"{option}: expected integers >= 0, got {text!r}")
    if len(set(values)) < len(values):
        raise UserError(f"{option}: {text!r} names one twice")
    return values


def train_argv(args, experiment: str, seed: int) -> list[str]:
    """The train command line of one run."""
    argv = ["--experiment", experiment, "--seed", str(seed), "--runs-dir", args.output_dir]
    from tfalign.experiments import get_experiment

    staged = get_experiment(experiment).init_from is not None
    for option in SHARED_OPTIONS:
        value = getattr(args, option)
        if value is not None and not (option in ("pretrain_epochs", "lsmdc_scale") and not staged):
            argv += [f"--{option.replace('_', '-')}", str(value)]
    for setting in args.set:
        argv += ["--set", setting]
    if not args.export:
        argv.append("--no-export")
    if args.verbose:
        argv.append("--verbose")
    return argv


class Run:
    """One run of the comparison: its train command line, config and folder."""

    def __init__(self, args, experiment: str, seed: int):
        from tfalign.training.run_folder import run_folder_name

        self.experiment, self.seed = experiment, seed
        self.argv = train_argv(args, experiment, seed)
        self.config = resolve_config(build_train_parser().parse_args(self.argv))
        self.folder = pathlib.Path(args.output_dir) / run_folder_name(self.config, args.max_steps_per_epoch)

    def state(self) -> dict:
        from tfalign.training.run_folder import read_json_or_empty

        return read_json_or_empty(self.folder / "state.json")

    def todo(self) -> str | None:
        """None when finished; else "resume" or "start"."""
        from tfalign.training.run_folder import run_status

        status = run_status(self.folder)
        if status == "running":
            raise UserError(f"{self.folder} is being trained by another process; wait for it or stop it")
        if status == "finished" and self.state().get("epoch", 0) >= self.config.trainer.epochs:
            return None
        return "resume" if has_run(self.folder) else "start"


def run_all(runs: list[Run]) -> list[str]:
    """Trains the runs that are not finished, each in a fresh process (TensorFlow
    keeps what a run compiled until its process ends: one process for every run
    would grow by gigabytes); returns the failures (one line each)."""
    todo = [(run, run.todo()) for run in runs]
    todo = [(run, action) for run, action in todo if action]
    done = len(runs) - len(todo)
    if done:
        console.say(f"{done} of {len(runs)} runs already finished: skipped")
    failures, durations = [], []
    for number, (run, action) in enumerate(todo, 1):
        left = f", ~{console.duration(sum(durations) / len(durations) * (len(todo) - number + 1))} left" \
            if durations else ""
        console.say(f"run {number}/{len(todo)}: {run.experiment} seed {run.seed} "
                    f"({'resuming' if action == 'resume' else 'starting'} {run.folder}{left})")
        started = time.time()
        argv = [sys.executable, "-m", "tfalign.train", *run.argv, *(["--resume"] if action == "resume" else [])]
        sys.stdout.flush()  # our lines before the run's
        done = subprocess.run(argv, stderr=subprocess.PIPE, text=True)
        sys.stderr.write(done.stderr)
        if done.returncode:
            lines = [line for line in done.stderr.splitlines() if line.strip()]
            message = lines[-1] if lines else f"the train command exited with {done.returncode}"
            if done.returncode == cli.EXIT_PREEMPTED:  # stopped by a signal, saved: so does the comparison
                print(f"error: the comparison stopped with run {number}/{len(todo)} ({message.removeprefix('error: ')}"
                      f"); the same command continues it", file=sys.stderr)
                raise SystemExit(cli.EXIT_PREEMPTED)
            failures.append(f"{run.folder.name}: {message}")
            console.warn(f"run {number}/{len(todo)} failed: {message}")
            if done.returncode < 0 or done.returncode == 130:  # interrupted: stop the comparison too
                raise KeyboardInterrupt
        durations.append(time.time() - started)
    return failures


def collect(runs: list[Run]) -> list[dict]:
    from tfalign.training.run_folder import index_row

    rows = []
    for run in runs:
        row = index_row(run.folder) or {"status": "missing"}
        history = run.state().get("history", [])
        # How well it fits (the optimization the paper argues about), beside how well it aligns.
        curves = {key: [h[key] for h in history if key in h] for key in ("loss", "val_loss", "val_step_accuracy")}
        row.update(train_loss_last=curves["loss"][-1] if curves["loss"] else "",
                   val_loss_min=min(curves["val_loss"], default=""),
                   val_step_accuracy_max=max(curves["val_step_accuracy"], default=""))
        rows.append({"experiment": run.experiment, "seed": run.seed, "folder": run.folder.name,
                     **{k: _rounded(row.get(k, "")) for k in COLUMNS[3:]}})
    return rows


def _rounded(value):
    return f"{value:.4f}" if isinstance(value, float) else value


def _stats(values: list[float]) -> tuple[float, float] | None:
    import numpy as np

    if not values:
        return None
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def summarize(rows: list[dict]) -> list[dict]:
    """Per experiment (in the order given): mean and spread of the finished runs' figures."""
    summary = []
    for experiment in dict.fromkeys(row["experiment"] for row in rows):
        finished = [r for r in rows if r["experiment"] == experiment and r["status"] == "finished"]
        figures = lambda key: [float(r[key]) for r in finished if r[key] != ""]
        summary.append({"experiment": experiment, "runs": len(finished),
                        "of": sum(r["experiment"] == experiment for r in rows),
                        **{key: _stats(figures(key)) for key in COLUMNS[5:] if key != "val_clip_accuracy"}})
    return summary


def markdown_table(summary: list[dict], command: str) -> str:
    def cell(stats, scale=100.0, digits=1):
        if stats is None:
            return "–"
        mean, spread = stats
        return f"{mean * scale:.{digits}f} ± {spread * scale:.{digits}f}"

    lines = [f"`{command}`", "",
             "| experiment | runs | test clip accuracy (%) | test sentence IoU (%) | best epoch | "
             "final train loss | lowest val loss | best val step accuracy (%) | wall time |",
             "|---|---|---|---|---|---|---|---|---|"]
    for s in summary:
        wall = console.duration(s["wall_seconds"][0]) if s["wall_seconds"] else "–"
        best = f"{s['best_epoch'][0]:.1f}".removesuffix(".0") if s["best_epoch"] else "–"
        lines.append(f"| `{s['experiment']}` | {s['runs']}/{s['of']} | {cell(s['test_clip_accuracy'])} | "
                     f"{cell(s['test_sentence_iou'])} | {best} | {cell(s['train_loss_last'], 1, 3)} | "
                     f"{cell(s['val_loss_min'], 1, 3)} | {cell(s['val_step_accuracy_max'])} | {wall} |")
    lines += ["", "Mean ± standard deviation over the seeds. Test figures: the best checkpoint by validation clip "
              "accuracy. The losses are the label-smoothed cross-entropy of the oracle's actions (validation: "
              "teacher-forced on the validation videos cut as the training ones); step accuracy: the oracle's "
              "action predicted at each step of the true path. Wall time: training and validation of one run."]
    return "\n".join(lines) + "\n"


def plot(summary: list[dict], runs: list[Run], path: pathlib.Path) -> None:
    """Bars with their spread (per figure), and each experiment's validation clip accuracy curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    figure, axes = plt.subplots(1, 3, figsize=(18, 5.5))
    names = [s["experiment"] for s in summary]
    for ax, key, title in ((axes[0], "test_clip_accuracy", "test clip accuracy"),
                           (axes[1], "test_sentence_iou", "test sentence IoU")):
        means = [s[key][0] if s[key] else np.nan for s in summary]
        spreads = [s[key][1] if s[key] else 0.0 for s in summary]
        ax.barh(names, means, xerr=spreads, color="tab:blue", alpha=0.8, capsize=3)
        ax.invert_yaxis()
        ax.set_title(f"{title} (mean ± std over seeds)")
        ax.grid(axis="x", alpha=0.3)
    axes[1].set_yticklabels([])
    curves = axes[2]
    colors = plt.get_cmap("tab10")
    for i, name in enumerate(names):
        histories = [[h["val_clip_accuracy"] for h in run.state().get("history", [])]
                     for run in runs if run.experiment == name]
        histories = [h for h in histories if h]
        if histories:
            length = min(map(len, histories))
            curves.plot(np.arange(1, length + 1), np.mean([h[:length] for h in histories], axis=0),
                        label=name, color=colors(i % 10), linestyle=("-", "--", ":")[i // 10 % 3])
    curves.set_title("validation clip accuracy (mean over seeds)")
    curves.set_xlabel("epoch")
    curves.grid(alpha=0.3)
    if curves.lines:
        curves.legend(fontsize=7, loc="best")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    plt.close(figure)
    with atomic_file(path) as tmp:
        tmp.write_bytes(buffer.getvalue())


def write_results(runs: list[Run], out: pathlib.Path, command: str) -> list[dict]:
    from tfalign.training.run_folder import update_index

    rows = collect(runs)
    text = io.StringIO()
    writer = csv.DictWriter(text, COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(out / "results.csv", text.getvalue())
    summary = summarize(rows)
    write_text_atomic(out / "results.md", markdown_table(summary, command))
    plot(summary, runs, out / "results.png")
    update_index(out)
    return summary


def main(argv=None) -> int:
    parser = build_parser()
    args = cli.parse(parser, argv)
    from tfalign.experiments import EXPERIMENTS

    experiments = paper_experiments() if args.paper else parse_list(args.experiments, "--experiments")
    unknown = [e for e in experiments if e not in EXPERIMENTS]
    if unknown:
        raise UserError(f"--experiments: unknown {', '.join(unknown)}; python -m tfalign.train --list shows them")
    seeds = parse_list(args.seeds, "--seeds", int)
    check_run_folder(pathlib.Path(args.output_dir), resume=False)
    runs = [Run(args, experiment, seed) for seed in seeds for experiment in experiments]
    out = pathlib.Path(args.output_dir)
    command = "python -m tfalign.compare " + " ".join(sys.argv[1:] if argv is None else argv)
    failures = []
    if args.report_only and not any((run.folder / "config.json").exists() for run in runs):
        raise UserError(f"--report-only: none of the {len(runs)} runs of this comparison is in {out} (they are "
                        f"named by the experiment and the options given: give the ones they were trained with)")
    if not args.report_only:
        console.say(f"{len(experiments)} experiment(s) x {len(seeds)} seed(s) = {len(runs)} runs into {out}")
        failures = run_all(runs)
    out.mkdir(parents=True, exist_ok=True)
    summary = write_results(runs, out, command)
    missing = [run for run in runs if not (run.folder / "config.json").exists()]
    if missing:
        console.warn(f"{len(missing)} of {len(runs)} runs are not in {out} (not trained yet, or trained with other "
                     f"options), e.g. {missing[0].folder.name}")
    print(markdown_table(summary, command), end="")
    console.say(f"wrote {out / 'results.md'}, {out / 'results.csv'}, {out / 'results.png'} and {out / 'index.csv'}")
    for failure in failures:
        console.warn(f"failed: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
