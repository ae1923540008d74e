"""An experiment end to end: its stages, the final test figures, the export.

What ``tfalign.train(...)`` (tfalign.api.training) and ``python -m tfalign.train``
run: ``run_experiment`` wires the parts together (the trainer, training/, gets
the evaluation's ``evaluate_model`` as its validation function), ``train_into``
adds the run folder's bookkeeping around it.
"""

from __future__ import annotations

import hashlib
import pathlib
import shutil
import tempfile

import numpy as np

from tfalign import console
from tfalign.configs import ExperimentConfig
from tfalign.data.datasets import (check_unlabelled_widths, describe_data, episode_widths, load_episodes,
                                   load_unlabelled)
from tfalign.errors import UserError
from tfalign.data.metrics import evaluate_alignments
from tfalign.evaluation.prediction import evaluate_model
from tfalign.files import DiskFullError, removed_on_failure, write_json_atomic
from tfalign.training import diagnostics
from tfalign.training.checkpoints import intact_line
from tfalign.training.loop import StageData, Trainer
from tfalign.training.preemption import DEFAULT_GRACE_SECONDS, Preempted
from tfalign.training.run_folder import (BEST_METRICS, RunFolder, RunState, check_run_folder, has_run,
                                        marked_running, update_index)
from tfalign.training.strategy import is_chief


def load_stage_data(config: ExperimentConfig, with_test=True) -> StageData:
    """A stage's splits, as its data config names them."""
    return StageData(train=load_episodes(config.data, "train"), val=load_episodes(config.data, "val"),
                     test=load_episodes(config.data, "test") if with_test else None,
                     unlabelled=load_unlabelled(config.data) or None)


def with_data_widths(config: ExperimentConfig, data: StageData) -> ExperimentConfig:
    """``config`` with its model's feature widths those of the data (every split must
    share them; a width the config already records must be theirs)."""
    widths = episode_widths({"train": data.train, "val": data.val, "test": data.test}, config.data.dataset)
    check_unlabelled_widths(data.unlabelled, widths, config.data)
    for field, recorded, found in zip(("clip_dim", "text_dim"), (config.model.clip_dim, config.model.text_dim),
                                      widths):
        if recorded is not None and recorded != found:
            raise UserError(f"model.{field}: {recorded}, but the episodes of {config.data.dataset} are {found} wide")
    return config.override({"model.clip_dim": widths[0], "model.text_dim": widths[1]})


def run_experiment(config: ExperimentConfig, run_dir, strategy=None, resume=False, log=print,
                   max_steps_per_epoch=None, export=True, runtime: dict | None = None,
                   data: StageData | None = None, preemption_grace: float = DEFAULT_GRACE_SECONDS,
                   make_task=None) -> dict:
    """Trains the stages of ``config`` into ``run_dir`` (a first stage, ``init_from``,
    into ``run_dir/pretraining``), tests both best checkpoints on the test split
    (when there is one), exports the SavedModel. ``data``: the episodes (default:
    the splits ``config.data`` names); the model takes their feature widths.
    ``make_task(config)``: the last stage's task (default ``AlignmentTask``; a
    measurement's own, e.g. benchmarks/pseudo_labels.py)."""
    import tensorflow as tf

    strategy = strategy or tf.distribute.get_strategy()
    chief = is_chief(strategy)
    final_dir = pathlib.Path(run_dir)
    # Non-chief workers write into a temporary folder that is removed afterwards.
    work_dir = final_dir if chief else pathlib.Path(tempfile.mkdtemp(prefix="tfalign-worker-"))
    options = dict(strategy=strategy, chief=chief, log=log, max_steps_per_epoch=max_steps_per_epoch,
                   evaluate=evaluate_model, runtime=runtime, preemption_grace=preemption_grace)
    try:
        # The data first: a missing file or widths that do not fit fail before any model is built.
        if data is None:
            log(f"loading the data: {describe_data(config.data)}")
            data = load_stage_data(config)
        config = with_data_widths(config, data)
        trainer = train_stages(config, data, work_dir, final_dir, resume, options, make_task)
        if config.task.decoding == "auto":
            trainer.load_best("clip_accuracy")
            log(f"choosing the decoding on {len(data.val)} validation videos (exact and greedy)")
        decoding = choose_decoding(config, trainer.model, data.val, log)
        summary = {"experiment": config.name, "run_dir": str(final_dir), "epochs_trained": trainer.state.epoch,
                   "decoding": decoding, **test_best_checkpoints(trainer, data.test, decoding, log, chief)}
        if chief:
            for metric, fit in calibrate_best_checkpoints(trainer, data.val, decoding, log).items():
                summary[f"best_{metric}"]["confidence_temperature"] = fit
        standing = where_it_stands(config, summary, data)
        if standing:
            summary["standing"] = standing
            log(standing["line"])
        if chief:
            write_json_atomic(work_dir / "metrics.json", summary)
            diagnostics.write_final_figures(work_dir / "tensorboard", summary, step=trainer.state.epoch)
            if export:
                from tfalign.serving.saved_model import export_saved_model
                from tfalign.serving.model_card import export_assets

                trainer.load_best("clip_accuracy")
                log(f"exporting the SavedModel to {final_dir / 'saved_model'} (the best checkpoint by validation "
                    f"clip accuracy, {decoding} decoding)")
                export_saved_model(trainer.model, work_dir / "saved_model", decoding=decoding,
                                   assets=export_assets(config.to_dict(), summary, trainer.model.input_widths))
        return summary
    finally:
        if not chief:
            shutil.rmtree(work_dir, ignore_errors=True)


def train_stages(config, data, work_dir, final_dir, resume, options, make_task=None) -> Trainer:
    """Trains the first stage (``init_from``), if any, then ``config`` from its best
    checkpoint; returns the second stage's trainer."""
    log, initial_weights = options["log"], None
    if config.init_from is not None:
        first = config.init_from
        log(f"stage 1/2: {first.name} on {describe_data(first.data)}")
        first_data = load_stage_data(first, with_test=False)
        first = with_data_widths(first, first_data)
        if first.model.architecture != config.model.architecture:
            raise UserError(f"init_from: the first stage ({first.name}) builds another network than "
                            f"{config.name} on this data (feature widths {first.model.input_widths} against "
                            f"{config.model.input_widths})")
        pre = Trainer(first, work_dir / "pretraining", restore_dir=final_dir / "pretraining", **options)
        pre.fit(first_data, first.trainer.epochs, resume=resume)
        pre.load_best("clip_accuracy")
        initial_weights = pre.model.get_weights()
        log(f"stage 2/2: {config.name}")
    log(f"building the model ({config.name})")
    trainer = Trainer(config, work_dir, restore_dir=final_dir, task=make_task(config) if make_task else None,
                      **options)
    if initial_weights is not None and not (resume and (final_dir / "state.json").exists()):
        trainer.model.set_weights(initial_weights)
    trainer.fit(data, config.trainer.epochs, resume=resume)
    return trainer


def test_best_checkpoints(trainer, test, decoding, log, chief) -> dict:
    """{"best_<metric>": its epoch, validation figure, checkpoint and (given test episodes) test figures}."""
    summary, tested = {}, {}  # an epoch's test figures: once when both metrics pick its weights
    for metric in BEST_METRICS:
        best = trainer.state.best[metric]
        summary[f"best_{metric}"] = {"epoch": best.epoch, "val": best.value, "checkpoint": best.path}
        if not test:  # episodes given without a test split
            continue
        checkpoint = best.epoch if best.path else "last"
        if checkpoint not in tested:
            trainer.load_best(metric)
            log(f"testing the best checkpoint by validation {metric} on {len(test)} test videos ({decoding})")
            progress = console.Progress(len(test), "test videos", enabled=chief)
            tested[checkpoint] = evaluate_model(trainer.model, test, decoding, progress=progress)
            progress.close()
        result = tested[checkpoint]
        summary[f"best_{metric}"]["test"] = {"clip_accuracy": result["clip_accuracy"],
                                             "sentence_iou": result["sentence_iou"], "videos": result["videos"]}
        log(f"best val {metric} (epoch {best.epoch}): test clip accuracy {result['clip_accuracy']:.4f}, "
            f"sentence IoU {result['sentence_iou']:.4f}")
    return summary


def calibrate_best_checkpoints(trainer, val, decoding, log) -> dict:
    """For a model whose clips have confidences (a ``LatticeAligner``): each best checkpoint's
    ``confidence_temperature`` fitted on the validation videos (evaluation/calibration.py) and
    written into that checkpoint, so that the run's aligner, exports and presets give the
    recalibrated confidences. Returns {metric: the fit}."""
    from tfalign.evaluation.calibration import fit_confidence_temperature
    from tfalign.model import LatticeAligner
    from tfalign.training.checkpoints import save_weights
    from tfalign.training.run_folder import WEIGHTS_SUFFIX

    if not isinstance(trainer.model, LatticeAligner) or not val:
        return {}
    fits, fits_by_epoch = {}, {}
    for metric in BEST_METRICS:
        path = trainer.folder.checkpoint_path(trainer.state.checkpoint_name(metric))
        if not path.endswith(WEIGHTS_SUFFIX):  # no best checkpoint (the last one stands in): nothing to write
            continue
        trainer.load_best(metric)
        epoch = trainer.state.best[metric].epoch
        fit = fits_by_epoch.get(epoch) or fit_confidence_temperature(trainer.model, val, decoding)
        fits_by_epoch[epoch] = fit
        trainer.model.confidence_temperature.assign(fit["temperature"])
        save_weights(trainer.model, path)
        fits[metric] = fit
        log(f"clip confidence of the best checkpoint by validation {metric}: temperature {fit['temperature']:g} "
            f"fitted on {fit['videos']} validation videos (NLL {fit['nll_before']:.3f} -> {fit['nll_after']:.3f})")
    return fits


# A run whose test clip accuracy is at most this above the all-unmatched level ends "at" that level.
AT_LEVEL_MARGIN = 0.01
RECIPE = "tfalign_rp_sbn"


def where_it_stands(config, summary: dict, data) -> dict | None:
    """For a run that ends at or below the all-unmatched level of its test split (its
    best checkpoint's test clip accuracy at most ``AT_LEVEL_MARGIN`` above calling
    every clip unmatched): that level, and the recipe that does better on the data
    (it starts at the DTW baseline, fitted here on the same videos); None otherwise."""
    from tfalign.evaluation.baselines import all_unmatched, run_baseline

    tested = (summary.get("best_clip_accuracy") or {}).get("test")
    if not tested or not data.test:
        return None
    level = evaluate_alignments(data.test, [all_unmatched(e.num_clips, e.num_texts) for e in data.test])
    if tested["clip_accuracy"] > level["clip_accuracy"] + AT_LEVEL_MARGIN:
        return None
    standing = {"all_unmatched": level["clip_accuracy"], "test_clip_accuracy": tested["clip_accuracy"]}
    line = (f"this run ends at the level of calling every clip unmatched: test clip accuracy "
            f"{tested['clip_accuracy']:.3f} against {level['clip_accuracy']:.3f}")
    if config.name != RECIPE and data.train and data.val:
        dtw = run_baseline("dtw", data.train, data.val, data.test)["clip_accuracy"]
        standing.update(recipe=RECIPE, recipe_start=dtw)
        line += (f"; on this data {RECIPE} does better: it starts where the DTW baseline ends ({dtw:.3f} test clip "
                 f"accuracy here): python -m tfalign.train --experiment {RECIPE} (with the same data options)")
    standing["line"] = line
    return standing


def choose_decoding(config, model, val, log=print) -> str:
    """The run's decoding: the config's, or with "auto" the better of greedy and
    exact on the validation split for ``model`` (the best checkpoint; exact on a tie)."""
    if config.task.decoding != "auto":
        return config.task.decoding
    figures = {d: evaluate_model(model, val, d)["clip_accuracy"] for d in ("exact", "greedy")}
    decoding = "greedy" if figures["greedy"] > figures["exact"] else "exact"
    log(f"decoding: {decoding} (validation clip accuracy: exact {figures['exact']:.4f}, "
        f"greedy {figures['greedy']:.4f})")
    return decoding


def train_into(config: ExperimentConfig, run_dir, strategy=None, resume=False, runs_dir=None, log=print,
               **options) -> dict:
    """``run_experiment`` with the run folder's bookkeeping. The folder's config.json is
    written first, so that a run stopped before its first save can be resumed by
    the same command; a fresh folder that fails before its first epoch is saved is
    removed, unless a signal or a full disk stopped it (then the same command with
    --resume starts it again). The folder says which process trains it, and
    ``runs_dir``'s index (when given) lists it at the start and the end."""
    import contextlib
    import sys

    import tensorflow as tf

    strategy = strategy or tf.distribute.get_strategy()
    chief = is_chief(strategy)
    runs_dir = runs_dir if chief else None  # the chief alone marks and indexes the run
    marking = marked_running(run_dir) if chief else contextlib.nullcontext()
    stopped = lambda: isinstance(sys.exc_info()[1], (Preempted, DiskFullError))
    try:
        with removed_on_failure(run_dir, keep=lambda: has_run(run_dir) or stopped()), marking:
            if chief and not has_run(run_dir):
                RunFolder(run_dir).write_config(config, options.get("runtime"))
            if runs_dir:
                update_index(runs_dir)
            return run_experiment(config, run_dir, strategy, resume=resume, log=log, **options)
    except DiskFullError as error:
        if "the same command" in str(error):  # the trainer said what to do already
            raise
        state = RunFolder(run_dir).read_state() if RunFolder(run_dir).has_state() else RunState()
        raise DiskFullError(f"{error}; {intact_line(state.describe())}") from None
    finally:
        if runs_dir and pathlib.Path(runs_dir).is_dir():  # not a runs folder removed with a failed first run
            update_index(runs_dir)


def episodes_digest(*splits) -> str:
    """A short hash of episodes' contents (features and labels): the name of a run on them."""
    digest = hashlib.sha1()
    for split in splits:
        for e in split or ():
            for array in (e.clip_features, e.text_features, e.clip_to_text, e.clip_times):
                if array is not None:  # an unlabelled episode has no clip_to_text
                    digest.update(np.ascontiguousarray(array).tobytes())
        digest.update(b"|")
    return digest.hexdigest()[:8]


__all__ = ["check_run_folder", "choose_decoding", "episodes_digest", "load_stage_data", "run_experiment",
           "train_into"]
