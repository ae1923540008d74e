"""Typed experiment configs, grouped as Model Garden's are (docs/experiments.md).

``ExperimentConfig(model, optimizer, schedule, task, trainer, data, init_from)``:
frozen dataclasses whose fields are typed (``Literal`` for choices) and
checked when the config is made, so a bad value fails at once with a line
naming the field (``model.normalization: expected one of [...]``).

One override path: ``config.override({"model.normalization": "sbn"})`` with
dotted field paths (the ``--set`` flag and every command-line option go
through it); a field name alone (``learning_rate``) stands for the first group
that has it, in the order model, optimizer, schedule, trainer, data.

``init_from``: a first stage (a whole experiment config) whose best checkpoint
by validation clip accuracy initializes this one, as Model Garden's
``init_checkpoint`` does; ``our_pretraining`` is two registered stages linked
this way.
"""

from __future__ import annotations

import dataclasses
import json
import typing

from tfalign.data.datasets import DataConfig
from tfalign.data.decoding_choice import Decoding
from tfalign.data.features import feature_widths
from tfalign.errors import UserError
from tfalign.validation import check_fields, check_ranges

# Trainable parameters of the paper's code (docs/network.md). The first six are the
# paper's figures; the last three follow from the same layers (Full + 2LN/4LN
# add the LN cells' 12,000 / 12,560; LXMERT's video input is 768-d, not 2048).
PAPER_PARAMETER_COUNTS = {
    ("rp", "sbn"): 3_408_415, ("rp", "none"): 3_407_215, ("full", "none"): 4_252_015,
    ("full", "sbn"): 4_253_215, ("rp", "2ln"): 3_419_215, ("rp", "4ln"): 3_419_775,
    ("full", "2ln"): 4_264_015, ("full", "4ln"): 4_264_575, ("lxmert", "none"): 3_868_015,
}


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The network. Every field after ``encoder_dropout`` is one of tfalign's
    own techniques (docs/recipe.md), at the paper's value by default."""

    encoder: typing.Literal["full", "rp", "lxmert"] = "rp"
    # The input feature widths, from the data (None: the encoder's paper widths, full 2048/768,
    # rp 300/300, lxmert 768/768). RP takes any width: inputs not 300 wide go through the fixed
    # random projection (seeded by projection_seed; the text side by projection_seed + 1) in the graph.
    clip_dim: int | None = None
    text_dim: int | None = None
    projection_seed: int = 0
    normalization: typing.Literal["none", "sbn", "2ln", "4ln"] = "none"
    dropout: float = 0.0  # on the decoder's dense layers
    encoder_dropout: float = 0.0  # on the encoders' dense layers
    # The way of aligning: with history, the paper's decoder (NeuMatchAligner: action and matched
    # stacks); without, the classifier sees only what the cursors point at, and the lattice can be
    # scored and searched exactly (LatticeAligner).
    history: bool = True
    position: typing.Literal["paper", "normalized"] = "paper"  # the classifier's position features
    similarity_units: int = 0  # joint embedding width; 0 = no similarity features
    # Where the joint embeddings read: the SBN-standardized input features through linear heads
    # ("input"), the encoded elements ("encoder"), the stack outputs ("stacks"); "both" = encoder +
    # stacks, "all" = all three (a channel of similarity features each).
    similarity_source: typing.Literal["input", "encoder", "stacks", "both", "all"] = "encoder"
    stack_features: bool = True  # the classifier reads the stack tops v, s (the paper's)
    hidden_units: int = 300  # the classifier's hidden layer (the paper's 300)
    stack_dropout: float = 0.0  # on the stack outputs the decoder reads
    # The DTW baseline's similarity (a ridge map fitted on the training videos) as a fixed channel
    # of the classifier's similarity window: the learned model starts from what DTW sees.
    ridge_similarity: bool = False
    # The lattice's scores start as the DTW baseline's own (its ridge similarity, its tuned drop cost)
    # plus learned corrections that are zero at the start: a drop cost from each clip's similarity row,
    # a linear function of the similarities around each node, and the classifier behind a gate at 0
    # (layers/dtw_potentials.py). Needs history=False and task.path_loss="crf".
    dtw_start: bool = False

    def __post_init__(self):
        check_fields(self, "model.")
        check_ranges(self, [("clip_dim", 1, None, False, False), ("text_dim", 1, None, False, False),
                            ("projection_seed", 0, None, False, False),
                            ("dropout", 0, 1, False, True), ("encoder_dropout", 0, 1, False, True),
                            ("similarity_units", 0, None, False, False), ("hidden_units", 1, None, False, False),
                            ("stack_dropout", 0, 1, False, True)], "model.")
        if not self.stack_features and not self.similarity_units:
            raise UserError("model.stack_features=False: needs model.similarity_units > 0 (the decoder would see "
                            "no content)")
        if self.dtw_start and self.history:
            raise UserError("model.dtw_start: needs model.history=False (a cursor-only decoder)")
        if not self.history and self.dropout:
            raise UserError("model.dropout: a cursor-only decoder is scored on the whole lattice; use "
                            "model.stack_dropout")

    def check_learns_from_unlabelled(self, field: str) -> None:
        """The one rule for unlabelled videos, wherever they are given (``field``): only a model
        that starts at DTW learns from them (its closed form's self-training)."""
        if not self.dtw_start:
            raise UserError(f"{field}: only a model that starts at DTW (model.dtw_start, the recipe's) learns from "
                            f"unlabelled videos", field=None if "." in field else field)

    @property
    def input_widths(self) -> tuple[int, int]:
        """(clip, text) feature widths the model takes: the recorded ones, else the encoder's paper widths."""
        clip, text = feature_widths(self.encoder)
        return (self.clip_dim or clip, self.text_dim or text)

    def with_input_widths(self, clip_dim: int, text_dim: int) -> ModelConfig:
        """This config with the data's feature widths recorded."""
        return dataclasses.replace(self, clip_dim=int(clip_dim), text_dim=int(text_dim))

    @property
    def architecture(self) -> dict:
        """The fields that shape the weights (dropout rates aside): equal for stages that share weights."""
        values = {k: v for k, v in dataclasses.asdict(self).items() if "dropout" not in k}
        values["clip_dim"], values["text_dim"] = self.input_widths
        return values


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    name: typing.Literal["adam", "lars", "lamb"] = "adam"
    learning_rate: float = 1e-3  # for LARS the product lr * eta
    weight_decay: float = 0.0  # L2 added to the gradient, as PyTorch's Adam does
    clip_global_norm: float = 2.0
    weight_averaging: float = 0.0  # EMA momentum of the weights used for validation, test and export; 0 = off

    def __post_init__(self):
        check_fields(self, "optimizer.")
        check_ranges(self, [("learning_rate", 0, None, True, False), ("weight_decay", 0, None, False, False),
                            ("clip_global_norm", 0, None, True, False), ("weight_averaging", 0, 0.9999, False, False)],
                     "optimizer.")


@dataclasses.dataclass(frozen=True)
class ScheduleConfig:
    """Linear warm-up (off when ``warmup_epochs`` is 0), then halve-on-plateau of the training loss."""

    warmup_start_lr: float | None = None
    warmup_epochs: int = 0
    plateau_factor: float = 0.5
    plateau_patience: int = 10
    plateau_threshold: float = 1e-4  # relative

    def __post_init__(self):
        check_fields(self, "schedule.")
        check_ranges(self, [("warmup_start_lr", 0, None, True, False), ("warmup_epochs", 0, None, False, False),
                            ("plateau_factor", 0, 1, True, True), ("plateau_patience", 1, None, False, False),
                            ("plateau_threshold", 0, 1, False, True)], "schedule.")
        if self.warmup_epochs and self.warmup_start_lr is None:
            raise UserError("schedule.warmup_start_lr: expected a value > 0 when schedule.warmup_epochs > 0")


@dataclasses.dataclass(frozen=True)
class TaskConfig:
    """What is learned and how it is judged (training/task.py): the samples of an
    epoch, the loss terms beside the path's cross-entropy, and the decoding that
    validation, test and export use."""

    max_train_actions: int = 100
    # Samples: "paper" = fixed cuts of <= max_train_actions; "crops" = random
    # crops at text boundaries, drawn anew each epoch, some videos whole.
    sampling: typing.Literal["paper", "crops"] = "paper"
    crop_min_actions: int = 30
    whole_video_fraction: float = 0.0
    contrastive_weight: float = 0.0  # InfoNCE on the joint embedding, within each video
    contrastive_temperature: float = 0.1
    lattice_weight: float = 0.0  # cross-entropy at every lattice node, beside the path's
    # The path's term: "cross_entropy" of each action (the paper's), or "crf": -log p(gold path) among
    # all complete paths of the lattice, what exact decoding maximizes (a cursor-only decoder).
    path_loss: typing.Literal["cross_entropy", "crf"] = "cross_entropy"
    # L2-SP: this weight times the squared distance of the lattice's learned corrections from the
    # DTW start (model.dtw_start).
    start_penalty: float = 0.0
    # Every epoch holds at least this many optimizer steps (fresh crops are drawn until it does), so
    # that --epochs is a budget of steps whatever the number of training videos; 0: one pass.
    epoch_steps: int = 0
    # The unlabelled videos in the training set (a CRF, model.dtw_start): each round the teacher (the
    # model, with its averaged weights) aligns them, the pseudo_label_fraction of their clips it is
    # surest of are kept, and their partial-label CRF loss (the paths through the kept assignments)
    # is weighted by unlabelled_weight, ramped up over the pseudo_label_rounds (training/pseudo_labels.py).
    # 0: the unlabelled videos only shape the closed form that the model starts from.
    unlabelled_weight: float = 0.0
    pseudo_label_fraction: float = 0.5
    pseudo_label_rounds: int = 4
    # For validation, test and export. "auto": checkpoints are selected decoded exactly, then
    # the better of greedy and exact on validation decodes the test split and the export.
    decoding: typing.Literal[Decoding.names(auto=True)] = "greedy"

    def __post_init__(self):
        check_fields(self, "task.")
        check_ranges(self, [
            ("max_train_actions", 2, None, False, False), ("crop_min_actions", 1, None, False, False),
            ("whole_video_fraction", 0, 1, False, False), ("contrastive_weight", 0, None, False, False),
            ("contrastive_temperature", 0, None, True, False), ("lattice_weight", 0, None, False, False),
            ("start_penalty", 0, None, False, False), ("epoch_steps", 0, None, False, False),
            ("unlabelled_weight", 0, None, False, False), ("pseudo_label_fraction", 0, 1, True, False),
            ("pseudo_label_rounds", 1, None, False, False)], "task.")
        if self.crop_min_actions > self.max_train_actions:
            raise UserError(f"task.crop_min_actions: expected <= task.max_train_actions "
                            f"({self.max_train_actions}), got {self.crop_min_actions}")

    @property
    def validation_decoding(self) -> str:
        """The decoding that selects checkpoints: "auto" selects them decoded exactly."""
        return Decoding.EXACT.value if self.decoding == Decoding.AUTO.value else self.decoding


@dataclasses.dataclass(frozen=True)
class TrainerConfig:
    """How the loop runs: epochs, batches, the seed, label smoothing, early stopping, precision."""

    epochs: int = 350
    batch_size: int = 32
    # Budgets of a training batch (0 = none): padded lattice nodes (batch x clips x texts) and
    # padded actions (batch x (clips + texts), a token budget). Long videos come in smaller
    # batches, so memory follows the budgets, not the longest video (data/batching.py: bucket_plan).
    batch_nodes: int = 0
    batch_actions: int = 0
    seed: int = 0
    label_smoothing: float = 0.03
    early_stopping_patience: int = 0  # epochs without a better validation clip accuracy; 0 = off
    # The model as it starts is validated as "epoch 0" and is the best checkpoint until an epoch beats it.
    validate_start: bool = False
    # The model's math: fp32, or keras.mixed_precision's bf16 / fp16 (float32 weights; fp16 with loss scaling).
    precision: typing.Literal["fp32", "bf16", "fp16"] = "fp32"

    def __post_init__(self):
        check_fields(self, "trainer.")
        check_ranges(self, [
            ("epochs", 1, None, False, False), ("batch_size", 1, None, False, False),
            ("batch_nodes", 0, None, False, False), ("batch_actions", 0, None, False, False),
            ("seed", 0, None, False, False),
            ("label_smoothing", 0, 1, False, True), ("early_stopping_patience", 0, None, False, False)],
            "trainer.")


# Fields that were the trainer's before the task group existed: their old dotted
# paths (older config.json files, --set trainer.X) still name them.
MOVED_TO_TASK = tuple(f.name for f in dataclasses.fields(TaskConfig))
# The model's fields renamed to the constructor arguments they are (model/builder.py): the old
# names (older config.json files, --set model.decoder_units=...) still name them.
RENAMED_MODEL_FIELDS = {"decoder_history": "history", "position_features": "position",
                        "decoder_units": "hidden_units"}


GROUPS = {"model": ModelConfig, "optimizer": OptimizerConfig, "schedule": ScheduleConfig, "task": TaskConfig,
          "trainer": TrainerConfig, "data": DataConfig}
# A field name alone stands for the first group that has it ("seed" is trainer.seed; data.seed is spelled out).
FIELD_PATHS: dict[str, str] = {}
for _group, _cls in GROUPS.items():
    for _field in dataclasses.fields(_cls):
        FIELD_PATHS.setdefault(_field.name, f"{_group}.{_field.name}")


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """One experiment (or one stage of it)."""

    name: str
    description: str
    family: typing.Literal["paper", "tfalign"] = "paper"
    model: ModelConfig = ModelConfig()
    optimizer: OptimizerConfig = OptimizerConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    task: TaskConfig = TaskConfig()
    trainer: TrainerConfig = TrainerConfig()
    data: DataConfig = DataConfig()
    init_from: ExperimentConfig | None = None

    def __post_init__(self):
        check_fields(self)
        for group, cls in GROUPS.items():
            if not isinstance(getattr(self, group), cls):
                raise UserError(f"{group}: expected a {cls.__name__}, got {getattr(self, group)!r}")
        model, task = self.model, self.task
        if task.contrastive_weight and not model.similarity_units:
            raise UserError("task.contrastive_weight: needs model.similarity_units > 0 (the joint embedding it "
                            "trains)")
        if model.history and (task.lattice_weight or task.path_loss == "crf"):
            raise UserError("task.lattice_weight and task.path_loss 'crf' need model.history=False (a "
                            "cursor-only decoder)")
        Decoding.check(task.decoding, model.history, field="task.decoding", auto=True, model=self.name)
        if model.dtw_start and task.path_loss != "crf":
            raise UserError("model.dtw_start: its scores are a CRF's; needs task.path_loss='crf'")
        if self.data.unlabelled_videos or self.data.unlabelled_file:
            model.check_learns_from_unlabelled("data.unlabelled_videos and data.unlabelled_file")
        if self.data.train_videos == 0 and not (model.dtw_start and (self.data.unlabelled_videos or
                                                                      self.data.unlabelled_file)):
            raise UserError("data.train_videos: 0 (no labelled video) learns from unlabelled videos alone: needs "
                            "data.unlabelled_videos or data.unlabelled_file, and a model that starts at DTW "
                            "(model.dtw_start, the recipe's)")
        if task.unlabelled_weight:
            model.check_learns_from_unlabelled("task.unlabelled_weight")
            if task.sampling != "crops":
                raise UserError("task.unlabelled_weight: the pseudo-labels change every round; needs "
                                "task.sampling='crops' (the paper's cuts are made once)")
        if task.start_penalty and not model.dtw_start:
            raise UserError("task.start_penalty: pulls toward the DTW start; needs model.dtw_start=true")
        first = self.init_from
        if first is not None:
            if not isinstance(first, ExperimentConfig):
                raise UserError(f"init_from: expected an experiment config or none, got {first!r}")
            if first.init_from is not None:
                raise UserError("init_from: a first stage cannot have a first stage of its own")
            if first.model.architecture != model.architecture:
                raise UserError(f"init_from: the first stage ({first.name}) must build the same network (model "
                                f"fields other than dropout, feature widths {first.model.input_widths} against "
                                f"{model.input_widths})")

    @property
    def paper_parameter_count(self) -> int | None:
        if self.family != "paper" or self.model.input_widths != feature_widths(self.model.encoder):
            return None  # the paper's figures hold at its widths
        return PAPER_PARAMETER_COUNTS.get((self.model.encoder, self.model.normalization))

    # ------------------------------------------------------------ dict / JSON
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, values: dict) -> ExperimentConfig:
        """The config of a ``to_dict``, as config.json holds it (one-line errors
        name the field). config.json written before the groups existed (flat
        fields and a ``pretraining`` section) is read too."""
        if not isinstance(values, dict):
            raise UserError(f"config: expected an object, got {type(values).__name__}")
        values = {k: v for k, v in values.items() if k != "runtime"}  # what ran it, not what it is
        if "model" not in values and "encoder" in values:
            values = _from_flat({RENAMED_MODEL_FIELDS.get(k, k): v for k, v in values.items()})
        values = _model_fields_renamed(_task_fields_moved(values))
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise UserError(f"config: unknown field(s) {sorted(unknown)}")
        try:
            for group, group_cls in GROUPS.items():
                section = values.get(group, {})
                if not isinstance(section, dict):
                    raise UserError(f"config: {group}: expected an object, got {section!r}")
                unknown = set(section) - {f.name for f in dataclasses.fields(group_cls)}
                if unknown:
                    raise UserError(f"config: unknown field(s) {sorted(f'{group}.{k}' for k in unknown)}")
                values[group] = group_cls(**section)
            if values.get("init_from") is not None:
                values["init_from"] = cls.from_dict(values["init_from"])
            return cls(**values)
        except TypeError as error:  # a missing field
            raise UserError(f"config: {error}") from None

    # -------------------------------------------------------------- overrides
    def override(self, changes: dict | None = None, /, **fields) -> ExperimentConfig:
        """A copy with fields replaced, checked as a new config is. Keys are dotted
        paths (``model.normalization``, ``init_from.trainer.epochs``) or a field
        name alone (see FIELD_PATHS); None values are left out (unset options)."""
        values = self.to_dict()
        for key, value in {**(changes or {}), **fields}.items():
            if value is None:
                continue
            *parents, name = resolve_path(self, key).split(".")
            section = values
            for part in parents:
                section = section[part]
            section[name] = value
        return ExperimentConfig.from_dict(values)

    def get(self, path: str):
        """The value at a dotted path (``optimizer.learning_rate``)."""
        value = self
        for part in resolve_path(self, path).split("."):
            value = getattr(value, part)
        return value


def settable_fields(config: ExperimentConfig, prefix: str = "") -> dict[str, type]:
    """{dotted path: type hint} of every field ``--set`` may change."""
    paths = {}
    for group, group_cls in GROUPS.items():
        for name, hint in typing.get_type_hints(group_cls).items():
            paths[f"{prefix}{group}.{name}"] = hint
    if config.init_from is not None:
        paths.update(settable_fields(config.init_from, prefix + "init_from."))
    return paths


def resolve_path(config: ExperimentConfig, key: str) -> str:
    """A dotted path to a field, or a UserError naming the key and the choices."""
    key = key.strip()
    head, _, name = key.rpartition(".")
    if name in RENAMED_MODEL_FIELDS and head.rpartition(".")[2] in ("model", ""):  # an old name of a model field
        name = RENAMED_MODEL_FIELDS[name]
    path = FIELD_PATHS.get(name, name) if not head else f"{head}.{name}"
    head, _, name = path.rpartition(".")
    if head.rpartition(".")[2] == "trainer" and name in MOVED_TO_TASK:  # trainer.sampling: task.sampling now
        path = f"{head.rpartition('.')[0] + '.' if '.' in head else ''}task.{name}"
    if path.startswith("init_from.") and config.init_from is None:
        raise UserError(f"{key}: {config.name} has no first stage (init_from)")
    if path not in settable_fields(config):
        groups = ", ".join(f"{g}.<field>" for g in GROUPS)
        raise UserError(f"{key}: unknown field; expected {groups}"
                        + (", init_from.<group>.<field>" if config.init_from is not None else "")
                        + " or a field name alone (e.g. learning_rate)")
    return path


def parse_setting(config: ExperimentConfig, setting: str) -> dict:
    """``field=value`` (``model.normalization=sbn``, ``learning_rate=0.01``) ->
    {dotted path: value} for ``override``, the value converted to the field's
    type; one-line errors name the field."""
    key, sep, text = setting.partition("=")
    key = key.strip()
    if not sep or not key:
        raise UserError(f"--set {setting!r}: expected FIELD=VALUE, e.g. --set model.stack_dropout=0.3")
    try:
        path = resolve_path(config, key)
    except UserError as error:
        raise UserError(f"--set {error}") from None
    hint, text = settable_fields(config)[path], text.strip()
    options = set(typing.get_args(hint)) or {hint}
    if text.lower() == "none" and type(None) in options:
        return {path: None}
    words = {w for o in options if typing.get_origin(o) is typing.Literal for w in typing.get_args(o)}
    if text in words:  # data.unlabelled_videos=all: a number or a word
        return {path: text}
    try:
        if bool in options:
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError
            value = text.lower() in ("true", "1")
        elif int in options and float not in options:
            value = int(text)
        elif float in options:
            value = float(text)
        else:
            value = text
    except ValueError:
        expected = "true or false" if bool in options else ("an integer" if int in options and float not in options
                                                             else "a number")
        raise UserError(f"--set {key}: expected {expected}, got {text!r}") from None
    return {path: value}


def _task_fields_moved(values: dict) -> dict:
    """A config dict of an older tfalign, whose trainer held the task's fields, as today's."""
    trainer = values.get("trainer")
    if not isinstance(trainer, dict) or not any(k in MOVED_TO_TASK for k in trainer):
        return values
    task = {**{k: v for k, v in trainer.items() if k in MOVED_TO_TASK}, **(values.get("task") or {})}
    return {**values, "trainer": {k: v for k, v in trainer.items() if k not in MOVED_TO_TASK}, "task": task}


def _model_fields_renamed(values: dict) -> dict:
    """A config dict whose model group holds fields under their old names, as today's."""
    model = values.get("model")
    if not isinstance(model, dict) or not set(model) & set(RENAMED_MODEL_FIELDS):
        return values
    return {**values, "model": {RENAMED_MODEL_FIELDS.get(k, k): v for k, v in model.items()}}


# Where each field of the flat config (before the groups) went.
_FLAT_GROUPS = {name: path.split(".")[0] for name, path in FIELD_PATHS.items() if not path.startswith("data.")}
_FLAT_GROUPS["optimizer"] = "optimizer"


def _from_flat(values: dict) -> dict:
    """A flat config.json (tfalign before the groups) as grouped values."""
    grouped = {"name": values.get("name"), "description": values.get("description", ""),
               "family": values.get("family", "paper"), "data": values.get("data", {})}
    for name, value in values.items():
        if name in ("name", "description", "family", "data", "pretraining"):
            continue
        if name not in _FLAT_GROUPS:
            raise UserError(f"config: unknown field(s) [{name!r}]")
        target = "name" if name == "optimizer" else name
        grouped.setdefault(_FLAT_GROUPS[name], {})[target] = value
    stage = values.get("pretraining")
    if stage:  # the first stage as our_pretraining derived it from the finetuning config
        first = json.loads(json.dumps(grouped))
        first.update(name=f"{grouped['name']}_stage1", description="first stage", init_from=None)
        first.setdefault("optimizer", {}).update(learning_rate=stage.get("learning_rate", 1e-3),
                                                 weight_decay=stage.get("weight_decay", 1e-6))
        first.setdefault("model", {}).update(dropout=stage.get("dropout", 0.1),
                                             encoder_dropout=stage.get("dropout", 0.1))
        first.setdefault("trainer", {}).update(epochs=stage.get("epochs", 100),
                                               early_stopping_patience=stage.get("early_stopping_patience", 10))
        first["data"] = {**grouped["data"], "dataset": stage.get("dataset", "synthetic-lsmdc"),
                         "lsmdc_scale": stage.get("lsmdc_scale", 20.0)}
        grouped["init_from"] = first
    return grouped
