"""The registry of the paper's experiments as typed configs (DESIGN.md 3).

Every experiment: batch 32, halve-on-plateau of the training loss, gradients
clipped to global norm 2, 350 epochs, best validation checkpoints by clip
accuracy and by sentence IoU. The "lr" of a LARS row is the product lr * eta.
"""

from __future__ import annotations

import dataclasses
import json
import typing

from tfalign.data.datasets import DataConfig
from tfalign.errors import UserError
from tfalign.validation import check_fields, check_ranges

# Trainable parameters of the paper's code (DESIGN.md 2). The first six are the
# paper's figures; the last three follow from the same layers (Full + 2LN/4LN
# add the LN cells' 12,000 / 12,560; LXMERT's video input is 768-d, not 2048).
PAPER_PARAMETER_COUNTS = {
    ("rp", "sbn"): 3_408_415, ("rp", "none"): 3_407_215, ("full", "none"): 4_252_015,
    ("full", "sbn"): 4_253_215, ("rp", "2ln"): 3_419_215, ("rp", "4ln"): 3_419_775,
    ("full", "2ln"): 4_264_015, ("full", "4ln"): 4_264_575, ("lxmert", "none"): 3_868_015,
}


@dataclasses.dataclass(frozen=True)
class PretrainingConfig:
    """The first stage of ``our_pretraining``: a large one-to-one corpus."""

    dataset: str = "synthetic-lsmdc"
    learning_rate: float = 1e-3
    weight_decay: float = 1e-6
    dropout: float = 0.1
    epochs: int = 100
    early_stopping_patience: int = 10  # epochs without a better validation clip accuracy
    lsmdc_scale: float = 20.0

    def __post_init__(self):
        check_fields(self, "pretraining.")
        check_ranges(self, [("learning_rate", 0, None, True, False), ("weight_decay", 0, None, False, False),
                            ("dropout", 0, 1, False, True), ("epochs", 1, None, False, False),
                            ("early_stopping_patience", 0, None, False, False),
                            ("lsmdc_scale", 0, None, True, False)], "pretraining.")


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """One experiment. The fields after ``pretraining`` are tfalign's own
    techniques (DESIGN.md 6): each is off in the paper's experiments, so one
    field switches one technique on or off."""

    name: str
    description: str
    encoder: typing.Literal["full", "rp", "lxmert"] = "rp"
    normalization: typing.Literal["none", "sbn", "2ln", "4ln"] = "none"
    optimizer: typing.Literal["adam", "lars", "lamb"] = "adam"
    learning_rate: float = 1e-3
    label_smoothing: float = 0.03
    warmup_start_lr: float | None = None
    warmup_epochs: int = 0
    weight_decay: float = 0.0  # L2 added to the gradient, as PyTorch's Adam does
    dropout: float = 0.0  # on the decoder's dense layers
    encoder_dropout: float = 0.0  # on the encoders' dense layers
    batch_size: int = 32
    epochs: int = 350
    plateau_factor: float = 0.5
    plateau_patience: int = 10
    plateau_threshold: float = 1e-4
    clip_global_norm: float = 2.0
    max_train_actions: int = 100
    seed: int = 0
    data: DataConfig = DataConfig()
    pretraining: PretrainingConfig | None = None
    # ---- tfalign's own techniques (off = the paper's network and training)
    family: typing.Literal["paper", "tfalign"] = "paper"
    # Decoder: without history (no action/matched stack) the classifier sees only
    # what the cursors point at, and the lattice can be scored and searched exactly.
    decoder_history: bool = True
    position_features: typing.Literal["paper", "normalized"] = "paper"
    similarity_units: int = 0  # joint embedding width; 0 = no similarity features
    # Where the joint embeddings read: the SBN-standardized input features through linear heads
    # ("input"), the encoded elements ("encoder"), the stack outputs ("stacks"); "both" = encoder +
    # stacks, "all" = all three (a channel of similarity features each).
    similarity_source: typing.Literal["input", "encoder", "stacks", "both", "all"] = "encoder"
    stack_features: bool = True  # the classifier reads the stack tops v, s (the paper's)
    decoder_units: int = 300  # the classifier's hidden layer (the paper's 300)
    contrastive_weight: float = 0.0  # InfoNCE on the joint embedding, within each video
    contrastive_temperature: float = 0.1
    lattice_weight: float = 0.0  # cross-entropy at every lattice node, beside the path's
    stack_dropout: float = 0.0  # on the stack outputs the decoder reads
    # Samples: "paper" = fixed cuts of <= max_train_actions; "crops" = random
    # crops at text boundaries, drawn anew each epoch, some videos whole.
    sampling: typing.Literal["paper", "crops"] = "paper"
    crop_min_actions: int = 30
    whole_video_fraction: float = 0.0
    weight_averaging: float = 0.0  # EMA momentum of the weights used for validation, test and export; 0 = off
    # For validation, test and export. "auto": checkpoints are selected decoded exactly, then
    # the better of greedy and exact on validation decodes the test split and the export.
    decoding: typing.Literal["greedy", "exact", "auto"] = "greedy"
    early_stopping_patience: int = 0  # epochs without a better validation clip accuracy; 0 = off

    def __post_init__(self):
        check_fields(self)
        check_ranges(self, [
            ("learning_rate", 0, None, True, False), ("label_smoothing", 0, 1, False, True),
            ("warmup_start_lr", 0, None, True, False), ("warmup_epochs", 0, None, False, False),
            ("weight_decay", 0, None, False, False), ("dropout", 0, 1, False, True),
            ("encoder_dropout", 0, 1, False, True), ("batch_size", 1, None, False, False),
            ("epochs", 1, None, False, False), ("plateau_factor", 0, 1, True, True),
            ("plateau_patience", 1, None, False, False), ("plateau_threshold", 0, 1, False, True),
            ("clip_global_norm", 0, None, True, False), ("max_train_actions", 2, None, False, False),
            ("seed", 0, None, False, False), ("similarity_units", 0, None, False, False),
            ("decoder_units", 1, None, False, False), ("contrastive_weight", 0, None, False, False),
            ("contrastive_temperature", 0, None, True, False), ("lattice_weight", 0, None, False, False),
            ("stack_dropout", 0, 1, False, True), ("crop_min_actions", 1, None, False, False),
            ("whole_video_fraction", 0, 1, False, False), ("weight_averaging", 0, 0.9999, False, False),
            ("early_stopping_patience", 0, None, False, False)])
        if not self.stack_features and not self.similarity_units:
            raise UserError("stack_features=False: needs similarity_units > 0 (the decoder would see no content)")
        if self.contrastive_weight and not self.similarity_units:
            raise UserError("contrastive_weight: needs similarity_units > 0 (the joint embedding it trains)")
        if self.decoder_history and (self.lattice_weight or self.decoding != "greedy"):
            raise UserError("lattice_weight and decoding 'exact' or 'auto' need decoder_history=False "
                             "(a cursor-only decoder)")
        if not self.decoder_history and self.dropout:
            raise UserError("dropout: a cursor-only decoder is scored on the whole lattice; use stack_dropout")
        if self.crop_min_actions > self.max_train_actions:
            raise UserError(f"crop_min_actions: expected <= max_train_actions ({self.max_train_actions}), "
                             f"got {self.crop_min_actions}")

    @property
    def paper_parameter_count(self) -> int | None:
        if self.family != "paper":
            return None
        return PAPER_PARAMETER_COUNTS.get((self.encoder, self.normalization))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, values: dict) -> "ExperimentConfig":
        values = dict(values)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise UserError(f"config: unknown field(s) {sorted(unknown)}")
        try:
            values["data"] = DataConfig(**values.get("data", {}))
            if values.get("pretraining"):
                values["pretraining"] = PretrainingConfig(**values["pretraining"])
            return cls(**values)
        except TypeError as error:  # a missing or unknown field, a section that is not an object
            raise UserError(f"config: {error}") from None

    def override(self, **changes) -> "ExperimentConfig":
        """A copy with the given fields replaced; ``data_*`` keys go to the data config."""
        data_changes = {k[5:]: v for k, v in changes.items() if k.startswith("data_") and v is not None}
        unknown_data = set(data_changes) - {f.name for f in dataclasses.fields(self.data)}
        if unknown_data:
            raise UserError(f"unknown data field(s): {sorted(unknown_data)}")
        top = {k: v for k, v in changes.items() if not k.startswith("data_") and v is not None}
        unknown = set(top) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise UserError(f"unknown experiment field(s): {sorted(unknown)}")
        return dataclasses.replace(self, data=dataclasses.replace(self.data, **data_changes), **top)


def parse_setting(config: ExperimentConfig, setting: str) -> dict:
    """``field=value`` (or ``data.field=value``) -> a change for ``override``,
    the value converted to the field's type; one-line errors name the field."""
    key, sep, text = setting.partition("=")
    key = key.strip()
    if not sep or not key:
        raise UserError(f"--set {setting!r}: expected FIELD=VALUE, e.g. --set stack_dropout=0.3")
    target, prefix = (config.data, "data_") if key.startswith("data.") else (config, "")
    name = key.removeprefix("data.")
    hints = typing.get_type_hints(type(target))
    if name not in hints or name in ("name", "description", "data", "pretraining"):
        fields = sorted(set(hints) - {"name", "description", "data", "pretraining"})
        raise UserError(f"--set {key}: unknown field; expected one of {fields} or data.<field>")
    hint, current = hints[name], getattr(target, name)
    try:
        if hint is bool or isinstance(current, bool):
            if text.lower() not in ("true", "false", "1", "0"):
                raise UserError
            value = text.lower() in ("true", "1")
        elif isinstance(current, int) and not isinstance(current, bool):
            value = int(text)
        elif isinstance(current, float):
            value = float(text)
        elif current is None and text.lower() == "none":
            value = None
        elif current is None:  # optional numbers (warmup_start_lr) or paths
            try:
                value = float(text)
            except ValueError:
                value = text
        else:
            value = text
    except ValueError:
        raise UserError(f"--set {key}: expected a {type(current).__name__}, got {text!r}") from None
    return {prefix + name: value}


def _rp(name, description, **kw):
    return ExperimentConfig(name=name, description=description, encoder="rp", data=DataConfig(features="rp"), **kw)


def _full(name, description, **kw):
    return ExperimentConfig(name=name, description=description, encoder="full", data=DataConfig(features="full"), **kw)


EXPERIMENTS = {e.name: e for e in [
    _full("full_adam", "Full features, Adam, no normalization (the NeuMATCH baseline)", learning_rate=1e-3),
    _full("full_lars_sbn", "Full features, AdamLARS, sequence-wise batch norm", optimizer="lars",
          normalization="sbn", learning_rate=5e-3),
    _full("full_lars_2ln", "Full features, AdamLARS, layer-norm video/text stacks", optimizer="lars",
          normalization="2ln", learning_rate=4e-3),
    _full("full_lars_4ln", "Full features, AdamLARS, layer-norm in all four stacks", optimizer="lars",
          normalization="4ln", learning_rate=5e-3),
    _rp("rp_adam_sbn", "Random projection, Adam, sequence-wise batch norm", normalization="sbn", learning_rate=5e-4),
    _rp("rp_adam_2ln", "Random projection, Adam, layer-norm video/text stacks", normalization="2ln",
        learning_rate=1e-2),
    _rp("rp_adam_4ln", "Random projection, Adam, layer-norm in all four stacks", normalization="4ln",
        learning_rate=7e-3),
    _rp("rp_lars_sbn", "Random projection, AdamLARS, sequence-wise batch norm (the paper's best)",
        optimizer="lars", normalization="sbn", learning_rate=7e-3),
    _rp("rp_lars_2ln", "Random projection, AdamLARS, layer-norm video/text stacks", optimizer="lars",
        normalization="2ln", learning_rate=5e-3),
    _rp("rp_lars_4ln", "Random projection, AdamLARS, layer-norm in all four stacks", optimizer="lars",
        normalization="4ln", learning_rate=8e-3),
    _rp("rp_adam_warmup_sbn", "Random projection, Adam, SBN, linear warm-up 5e-5 -> 5e-4 over 5 epochs, "
        "no label smoothing", normalization="sbn", learning_rate=5e-4, warmup_start_lr=5e-5, warmup_epochs=5,
        label_smoothing=0.0),
    ExperimentConfig(name="lxmert_features", description="LXMERT-style 768/768 features, Adam, weight decay 1e-7, "
                     "dropout 0.3 on all dense layers", encoder="lxmert", data=DataConfig(features="lxmert"),
                     learning_rate=3e-4, weight_decay=1e-7, dropout=0.3, encoder_dropout=0.3),
    _full("our_pretraining", "Full features, Adam: pretrain on the one-to-one LSMDC stand-in (lr 1e-3, weight "
          "decay 1e-6, dropout 0.1, early stopping), then finetune (lr 5e-4, dropout 0.1)", learning_rate=5e-4,
          dropout=0.1, encoder_dropout=0.1, pretraining=PretrainingConfig()),
]}


def _recipe(name, description, **kw):
    """tfalign's own recipe: the paper's best setting (RP, AdamLARS, SBN) plus
    the techniques that measured best (benchmarks/quality.py)."""
    options = dict(family="tfalign", encoder="rp", data=DataConfig(features="rp"), optimizer="lars",
                   normalization="sbn", learning_rate=3e-3, encoder_dropout=0.2, decoder_history=False,
                   stack_features=False, position_features="normalized", similarity_units=128,
                   similarity_source="all", decoder_units=64, contrastive_weight=1.0, lattice_weight=1.0,
                   weight_averaging=0.98,
                   sampling="crops", max_train_actions=160, whole_video_fraction=0.1, decoding="auto", epochs=40)
    options.update(kw)
    return ExperimentConfig(name=name, description=description, **options)


RECIPES = {e.name: e for e in [
    _recipe("tfalign_rp_sbn", "tfalign's recipe: RP, AdamLARS, SBN + joint embedding with a contrastive loss, "
            "similarity features, cursor-only decoder trained on the whole lattice and decoded exactly, "
            "normalized positions, random crops"),
]}
PAPER_EXPERIMENTS = dict(EXPERIMENTS)
EXPERIMENTS.update(RECIPES)


def get_experiment(name: str) -> ExperimentConfig:
    if name not in EXPERIMENTS:
        raise UserError(f"unknown experiment {name!r}; `python -m tfalign.train --list` shows the {len(EXPERIMENTS)}")
    return EXPERIMENTS[name]
