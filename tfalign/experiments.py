"""The registry of the paper's experiments as typed configs (DESIGN.md 3).

Every experiment: batch 32, halve-on-plateau of the training loss, gradients
clipped to global norm 2, 350 epochs, best validation checkpoints by clip
accuracy and by sentence IoU. The "lr" of a LARS row is the product lr * eta.
"""

from __future__ import annotations

import dataclasses
import json

from tfalign.data.datasets import DataConfig

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


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    name: str
    description: str
    encoder: str = "rp"  # full | rp | lxmert
    normalization: str = "none"  # none | sbn | 2ln | 4ln
    optimizer: str = "adam"  # adam | lars | lamb
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

    @property
    def paper_parameter_count(self) -> int | None:
        return PAPER_PARAMETER_COUNTS.get((self.encoder, self.normalization))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, values: dict) -> "ExperimentConfig":
        values = dict(values)
        values["data"] = DataConfig(**values.get("data", {}))
        if values.get("pretraining"):
            values["pretraining"] = PretrainingConfig(**values["pretraining"])
        return cls(**values)

    def override(self, **changes) -> "ExperimentConfig":
        """A copy with the given fields replaced; ``data_*`` keys go to the data config."""
        data_changes = {k[5:]: v for k, v in changes.items() if k.startswith("data_") and v is not None}
        top = {k: v for k, v in changes.items() if not k.startswith("data_") and v is not None}
        unknown = set(top) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ValueError(f"unknown experiment field(s): {sorted(unknown)}")
        return dataclasses.replace(self, data=dataclasses.replace(self.data, **data_changes), **top)


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


def get_experiment(name: str) -> ExperimentConfig:
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; `python -m tfalign.train --list` shows the {len(EXPERIMENTS)}")
    return EXPERIMENTS[name]
