"""An experiment end to end: its stages, the final test figures, the export.

``train`` is what ``tfalign.train(...)`` and ``python -m tfalign.train`` do:
``run_experiment`` wires the parts together (the trainer, training/, gets the
evaluation's ``evaluate_model`` as its validation function), ``train_into``
adds the run folder's bookkeeping around it. With the command-line tools, this
is the one module that imports serving/.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import pathlib
import shutil
import tempfile

import numpy as np

from tfalign import console
from tfalign.configs import ExperimentConfig
from tfalign.data.datasets import (MEMORY, describe_data, episode_widths, load_episodes, load_unlabelled,
                                   training_subset, unlabelled_subset)
from tfalign.errors import UserError
from tfalign.evaluation.prediction import evaluate_model
from tfalign.data.episode import Episode, validate_episodes
from tfalign.experiments import configure
from tfalign.files import DiskFullError, removed_on_failure, write_json_atomic
from tfalign.training import diagnostics
from tfalign.training.checkpoints import intact_line
from tfalign.training.loop import StageData, Trainer
from tfalign.training.preemption import DEFAULT_GRACE_SECONDS, Preempted
from tfalign.training.run_folder import (BEST_METRICS, RunFolder, RunState, check_run_folder, has_run,
                                        marked_running, run_folder_name, update_index)
from tfalign.training.strategy import is_chief


def load_stage_data(config: ExperimentConfig, with_test=True) -> StageData:
    """A stage's splits, as its data config names them."""
    return StageData(train=load_episodes(config.data, "train"), val=load_episodes(config.data, "val"),
                     test=load_episodes(config.data, "test") if with_test else None,
                     unlabelled=load_unlabelled(config.data) or None)


def with_data_widths(config: ExperimentConfig, data: StageData) -> ExperimentConfig:
    """``config`` with its model's feature widths those of the data (every split must
    share them; a width the config already records must be theirs)."""
    widths = episode_widths({"train": data.train, "val": data.val, "test": data.test,
                             "unlabelled": data.unlabelled}, config.data.dataset)
    for field, recorded, found in zip(("clip_dim", "text_dim"), (config.model.clip_dim, config.model.text_dim),
                                      widths):
        if recorded is not None and recorded != found:
            raise UserError(f"model.{field}: {recorded}, but the episodes of {config.data.dataset} are {found} wide")
    return config.override({"model.clip_dim": widths[0], "model.text_dim": widths[1]})


def run_experiment(config: ExperimentConfig, run_dir, strategy=None, resume=False, log=print,
                   max_steps_per_epoch=None, export=True, runtime: dict | None = None,
                   data: StageData | None = None, preemption_grace: float = DEFAULT_GRACE_SECONDS) -> dict:
    """Trains the stages of ``config`` into ``run_dir`` (a first stage, ``init_from``,
    into ``run_dir/pretraining``), tests both best checkpoints on the test split
    (when there is one), exports the SavedModel. ``data``: the episodes (default:
    the splits ``config.data`` names); the model takes their feature widths."""
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
        trainer = train_stages(config, data, work_dir, final_dir, resume, options)
        if config.task.decoding == "auto":
            trainer.load_best("clip_accuracy")
            log(f"choosing the decoding on {len(data.val)} validation videos (exact and greedy)")
        decoding = choose_decoding(config, trainer.model, data.val, log)
        summary = {"experiment": config.name, "run_dir": str(final_dir), "epochs_trained": trainer.state.epoch,
                   "decoding": decoding, **test_best_checkpoints(trainer, data.test, decoding, log, chief)}
        if chief:
            write_json_atomic(work_dir / "metrics.json", summary)
            diagnostics.write_final_figures(work_dir / "tensorboard", summary, step=trainer.state.epoch)
            if export:
                from tfalign.serving.export import export_saved_model
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


def train_stages(config, data, work_dir, final_dir, resume, options) -> Trainer:
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
    trainer = Trainer(config, work_dir, restore_dir=final_dir, **options)
    if initial_weights is not None and not (resume and (final_dir / "state.json").exists()):
        trainer.model.set_weights(initial_weights)
    trainer.fit(data, config.trainer.epochs, resume=resume)
    return trainer


def test_best_checkpoints(trainer, test, decoding, log, chief) -> dict:
    """{"best_<metric>": its epoch, validation figure, checkpoint and (given test episodes) test figures}."""
    summary = {}
    for metric in BEST_METRICS:
        best = trainer.state.best[metric]
        summary[f"best_{metric}"] = {"epoch": best.epoch, "val": best.value, "checkpoint": best.path}
        if not test:  # episodes given without a test split
            continue
        trainer.load_best(metric)
        log(f"testing the best checkpoint by validation {metric} on {len(test)} test videos ({decoding})")
        progress = console.Progress(len(test), "test videos", enabled=chief)
        result = evaluate_model(trainer.model, test, decoding, progress=progress)
        progress.close()
        summary[f"best_{metric}"]["test"] = {"clip_accuracy": result["clip_accuracy"],
                                             "sentence_iou": result["sentence_iou"], "videos": result["videos"]}
        log(f"best val {metric} (epoch {best.epoch}): test clip accuracy {result['clip_accuracy']:.4f}, "
            f"sentence IoU {result['sentence_iou']:.4f}")
    return summary


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


def _checked_split(episodes, name: str) -> list[Episode] | None:
    if episodes is None:
        return None
    if isinstance(episodes, Episode) or not all(isinstance(e, Episode) for e in episodes):
        raise UserError(f"{name}: expected a list of tfalign.Episode", field=name)
    return validate_episodes(episodes)


@dataclasses.dataclass
class TrainingRun:
    """A finished training run.

    Attributes:
        folder: the run folder (config.json, state.json, checkpoints, tensorboard/, metrics.json).
        config: the resolved experiment config (feature widths recorded).
        metrics: the run's figures (metrics.json): per best checkpoint its epoch,
            validation figure and (with a test split) test clip accuracy and
            sentence IoU; the decoding chosen.
        state: the run's state (epochs done, the history of every epoch's figures).
    """

    folder: pathlib.Path
    config: ExperimentConfig
    metrics: dict
    state: RunState

    @property
    def history(self) -> list[dict]:
        """One dict of figures per epoch (loss, validation clip accuracy, ...)."""
        return self.state.history

    @functools.cached_property
    def aligner(self):
        """The ``Aligner`` of the best checkpoint by validation clip accuracy, decoding as the run chose."""
        return self.load_aligner()

    def load_aligner(self, checkpoint: str = "clip_accuracy"):
        """The ``Aligner`` of a checkpoint: "clip_accuracy", "sentence_iou" (the best by
        that validation figure) or "last"."""
        from tfalign.serving.aligner import Aligner

        return Aligner.from_run(self.folder, checkpoint)

    def __repr__(self) -> str:
        best = self.metrics.get("best_clip_accuracy", {})
        return f"TrainingRun({str(self.folder)!r}, epochs={self.state.epoch}, best={best})"


def _checked_unlabelled(unlabelled) -> list[Episode] | None:
    """Unlabelled videos given from Python: episodes (their labels, if any, are not read) or
    (clips, texts) pairs of feature arrays; a bad one is one line naming it."""
    if unlabelled is None:
        return None
    if isinstance(unlabelled, Episode) or isinstance(unlabelled, (str, bytes)) or not hasattr(unlabelled, "__iter__"):
        raise UserError("unlabelled: expected a list of tfalign.Episode or of (clips, texts) pairs",
                        field="unlabelled")
    episodes = []
    for index, item in enumerate(unlabelled):
        if isinstance(item, Episode):
            episodes.append(item.without_labels())
        elif isinstance(item, (tuple, list)) and len(item) == 2:
            try:
                episodes.append(Episode(video_id=f"unlabelled-{index}", clip_features=item[0],
                                        text_features=item[1]))
            except UserError as error:
                raise UserError(f"unlabelled: item {index}: {error}", field="unlabelled") from None
        else:
            raise UserError(f"unlabelled: item {index}: expected a tfalign.Episode or a (clips, texts) pair, got "
                            f"{type(item).__name__}", field="unlabelled")
    return episodes


def train(experiment, train=None, val=None, test=None, output_dir=None, *, unlabelled=None, resume: bool = False,
          export: bool = False, runs_dir="runs", strategy=None, log=print, max_steps_per_epoch: int | None = None,
          preemption_grace: float = DEFAULT_GRACE_SECONDS, **overrides) -> TrainingRun:
    """Trains an experiment, on its own data or on episodes in memory.

    Args:
        experiment: an experiment's name (``tfalign.list_experiments()``;
            ``"tfalign_rp_sbn"`` is tfalign's recipe) or an ``ExperimentConfig``.
        train, val: lists of ``tfalign.Episode`` (any feature widths, the same in
            every split) to train on and to choose checkpoints with; default:
            the splits the experiment's data config names.
        test: a list of episodes to report test figures on (default: none with
            episodes given, the data config's test split otherwise).
        unlabelled: videos with their narration that nobody aligned: a list of
            ``tfalign.Episode`` without ``clip_to_text`` (labels, if any, are not
            read) or of ``(clips, texts)`` feature pairs. The recipe's closed form
            learns from them (``data.classical.self_trained_fit``); needs
            ``model.dtw_start`` and episodes given for ``train`` and ``val``.
        output_dir: the run folder; default ``runs_dir/<experiment>[-<changed
            options>]-<hash>`` (the hash covers the config and the episodes).
        resume: continue the run in the folder (also to more epochs).
        export: also write the run's SavedModel into ``output_dir/saved_model``.
        runs_dir: where named run folders go (with ``index.csv`` listing them).
        strategy: a ``tf.distribute`` strategy (default: the current one).
        log: where progress lines go (``print``; ``lambda *_: None`` for none).
        max_steps_per_epoch: cap the steps of an epoch (quick trials).
        preemption_grace: on SIGTERM or SIGINT, the seconds left to save a checkpoint at
            the next step before the run stops without one (it then raises ``Preempted``).
        **overrides: config changes as on the command line: ``epochs=2``,
            ``seed=1``, ``lr=1e-3``, or any field by name or dotted path
            (``**{"model.decoder_units": 32}``); see ``tfalign.configure``.

    Returns:
        A ``TrainingRun``: its ``folder``, ``config``, ``metrics``, ``history``
        and ``aligner`` (the best checkpoint's ``tfalign.Aligner``).

    Example:
    >>> run = tfalign.train("tfalign_rp_sbn", train=train_episodes, val=val_episodes,  # doctest: +SKIP
    ...                     output_dir="runs/mine", epochs=2)
    >>> run.aligner.align(clip_features, text_features).clip_to_text                  # doctest: +SKIP
    """
    config = configure(experiment, overrides)
    train_split, val_split, test_split = (_checked_split(e, n) for e, n in ((train, "train"), (val, "val"),
                                                                              (test, "test")))
    unlabelled_split = _checked_unlabelled(unlabelled)
    data = digest = None
    if unlabelled_split and not config.model.dtw_start:
        raise UserError("unlabelled: only a model that starts at DTW (model.dtw_start, the recipe's) learns from "
                        "unlabelled videos", field="unlabelled")
    if train_split is not None or val_split is not None:
        if train_split is None or val_split is None:
            raise UserError("val: give the training and the validation episodes together (validation chooses the "
                            "checkpoints)", field="val")
        unlabelled_split = (unlabelled_split or []) + unlabelled_subset(train_split, config.data)
        data = StageData(train=training_subset(train_split, config.data), val=val_split, test=test_split,
                         unlabelled=unlabelled_split or None)
        config = config.override({"data.dataset": MEMORY})
        digest = episodes_digest(train_split, val_split, test_split, unlabelled_split)
    elif test_split is not None or unlabelled_split:
        what = "test" if test_split is not None else "unlabelled"
        raise UserError(f"{what}: {what} episodes need training and validation episodes beside them", field=what)
    run_dir = pathlib.Path(output_dir or pathlib.Path(runs_dir) / run_folder_name(config, max_steps_per_epoch,
                                                                                  data_digest=digest))
    note = check_run_folder(run_dir, resume, config)
    if note:
        log(note)
    summary = train_into(config, run_dir, strategy, resume=resume, runs_dir=None if output_dir else runs_dir,
                         log=log, max_steps_per_epoch=max_steps_per_epoch, export=export, data=data,
                         preemption_grace=preemption_grace)
    folder = RunFolder(run_dir)
    return TrainingRun(folder=run_dir, config=folder.read_config(), metrics=summary, state=folder.read_state())


__all__ = ["TrainingRun", "check_run_folder", "choose_decoding", "load_stage_data", "run_experiment", "train",
           "train_into"]
