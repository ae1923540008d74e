"""Training from Python: ``tfalign.train(...)`` and the ``TrainingRun`` it returns.

``train`` is what ``python -m tfalign.train`` runs, on the experiment's own
data or on episodes in memory (any feature widths); the run itself is
tfalign.run's ``train_into`` (the stages, the run folder, the final test).
"""

from __future__ import annotations

import dataclasses
import functools
import pathlib

from tfalign.configs import ExperimentConfig
from tfalign.data.datasets import MEMORY, training_subset, unlabelled_videos
from tfalign.data.episode import Episode, validate_episodes
from tfalign.errors import UserError
from tfalign.experiments import configure
from tfalign.run import episodes_digest, train_into
from tfalign.training.loop import StageData
from tfalign.training.preemption import DEFAULT_GRACE_SECONDS
from tfalign.training.run_folder import RunFolder, RunState, check_run_folder, run_folder_name


def _checked_split(episodes, name: str) -> list[Episode] | None:
    if episodes is None:
        return None
    if isinstance(episodes, Episode) or not all(isinstance(e, Episode) for e in episodes):
        raise UserError(f"{name}: expected a list of tfalign.Episode", field=name)
    if name == "train" and not list(episodes):
        return []  # no labelled video: learning from unlabelled ones alone (checked with them)
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
        from tfalign.api.aligner import Aligner

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
    unlabelled = list(unlabelled)
    if not unlabelled:
        raise UserError("unlabelled: an empty list; give at least one video (or leave unlabelled out)",
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
            With ``train=[]`` (no labelled video; features in one space, e.g. a
            vision-language encoder's) the recipe starts from zero-shot DTW,
            self-trains its closed form on them and trains its network on their
            pseudo-labels; ``val`` (labelled) still chooses the epochs and the drop cost.
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
            (``**{"model.hidden_units": 32}``); see ``tfalign.configure``.

    Returns:
        A ``TrainingRun``: its ``folder``, ``config``, ``metrics``, ``history``
        and ``aligner`` (the best checkpoint's ``tfalign.Aligner``).

    Example:
    >>> run = tfalign.train("tfalign_rp_sbn", train=train_episodes, val=val_episodes,  # doctest: +SKIP
    ...                     output_dir="runs/mine", epochs=2)
    >>> run.aligner.align(clip_features, text_features).clip_to_text                  # doctest: +SKIP
    """
    config = configure(experiment, overrides)
    config, data, digest = _data_in_memory(config, train, val, test, unlabelled)
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


def _data_in_memory(config, train, val, test, unlabelled):
    """(config, StageData, digest) of episodes given from Python, checked; (config, None,
    None) when none are: the run reads the splits its data config names."""
    train_split, val_split, test_split = (_checked_split(e, n) for e, n in ((train, "train"), (val, "val"),
                                                                              (test, "test")))
    unlabelled_split = _checked_unlabelled(unlabelled)
    if unlabelled_split:
        config.model.check_learns_from_unlabelled("unlabelled")
    if train_split is None and val_split is None:
        if test_split is not None or unlabelled_split:
            what = "test" if test_split is not None else "unlabelled"
            raise UserError(f"{what}: {what} episodes need training and validation episodes beside them", field=what)
        return config, None, None
    if train_split is None or val_split is None:
        raise UserError("val: give the training and the validation episodes together (validation chooses the "
                        "checkpoints)", field="val")
    if not train_split and not (unlabelled_split and config.model.dtw_start):
        raise UserError("train: an empty list: without labelled videos a run learns from unlabelled ones alone; "
                        "give unlabelled=[...] to a model that starts at DTW (the recipe's)", field="train")
    unlabelled_split = unlabelled_videos(config.data, train_split, unlabelled_split or ())
    data = StageData(train=training_subset(train_split, config.data), val=val_split, test=test_split,
                     unlabelled=unlabelled_split or None)
    digest = episodes_digest(train_split, val_split, test_split, unlabelled_split)
    return config.override({"data.dataset": MEMORY}), data, digest
