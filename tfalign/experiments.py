"""The registry of the paper's experiments and tfalign's recipes (docs/experiments.md).

Every experiment: batch 32, halve-on-plateau of the training loss, gradients
clipped to global norm 2, 350 epochs, best validation checkpoints by clip
accuracy and by sentence IoU. The "lr" of a LARS row is the product lr * eta.
The config types are in ``tfalign.configs``.
"""

from __future__ import annotations

from tfalign.configs import (ExperimentConfig, ModelConfig, OptimizerConfig, ScheduleConfig, TaskConfig,
                             TrainerConfig, parse_setting)
from tfalign.data.datasets import DataConfig
from tfalign.errors import UserError

__all__ = ["EXPERIMENTS", "PAPER_EXPERIMENTS", "RECIPES", "STAGES", "ExperimentConfig", "configure",
           "get_experiment", "parse_setting"]


def _experiment(name, description, encoder, normalization="none", optimizer="adam", learning_rate=1e-3,
                weight_decay=0.0, dropout=0.0, encoder_dropout=0.0, label_smoothing=0.03, schedule=ScheduleConfig(),
                data=None, **kw):
    return ExperimentConfig(
        name=name, description=description,
        model=ModelConfig(encoder=encoder, normalization=normalization, dropout=dropout,
                          encoder_dropout=encoder_dropout),
        optimizer=OptimizerConfig(name=optimizer, learning_rate=learning_rate, weight_decay=weight_decay),
        schedule=schedule, trainer=TrainerConfig(label_smoothing=label_smoothing),
        data=data or DataConfig(features=encoder), **kw)


def _rp(name, description, **kw):
    return _experiment(name, description, "rp", **kw)


def _full(name, description, **kw):
    return _experiment(name, description, "full", **kw)


# our_pretraining's first stage: the one-to-one LSMDC stand-in, lr 1e-3, weight decay 1e-6,
# dropout 0.1, early stopping after 10 epochs without a better validation clip accuracy.
STAGES = {e.name: e for e in [
    _full("our_pretraining_lsmdc", "First stage of our_pretraining: Full features, Adam on the one-to-one LSMDC "
          "stand-in (lr 1e-3, weight decay 1e-6, dropout 0.1, early stopping)", learning_rate=1e-3,
          weight_decay=1e-6, dropout=0.1, encoder_dropout=0.1,
          data=DataConfig(features="full", dataset="synthetic-lsmdc", lsmdc_scale=20.0)).override(
        {"trainer.epochs": 100, "trainer.early_stopping_patience": 10}),
]}

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
        "no label smoothing", normalization="sbn", learning_rate=5e-4,
        schedule=ScheduleConfig(warmup_start_lr=5e-5, warmup_epochs=5), label_smoothing=0.0),
    _experiment("lxmert_features", "LXMERT-style 768/768 features, Adam, weight decay 1e-7, dropout 0.3 on all "
                "dense layers", "lxmert", learning_rate=3e-4, weight_decay=1e-7, dropout=0.3, encoder_dropout=0.3),
    _full("our_pretraining", "Full features, Adam: pretrain on the one-to-one LSMDC stand-in (stage "
          "our_pretraining_lsmdc: lr 1e-3, weight decay 1e-6, dropout 0.1, early stopping), then finetune "
          "(lr 5e-4, dropout 0.1)", learning_rate=5e-4, dropout=0.1, encoder_dropout=0.1,
          init_from=STAGES["our_pretraining_lsmdc"]),
]}


def _recipe(name, description, **changes):
    """tfalign's own recipe: the paper's best setting (RP, AdamLARS, SBN) plus
    the techniques that measured best (benchmarks/quality.py, benchmarks/data_efficiency.py):
    a lattice CRF that starts at the DTW baseline, the network's classifier its gated residual."""
    return ExperimentConfig(
        name=name, description=description, family="tfalign",
        model=ModelConfig(encoder="rp", normalization="sbn", encoder_dropout=0.2, history=False,
                          stack_features=False, position="normalized", similarity_units=128,
                          similarity_source="all", hidden_units=64, dtw_start=True),
        optimizer=OptimizerConfig(name="lars", learning_rate=3e-3, weight_averaging=0.98),
        task=TaskConfig(contrastive_weight=1.0, lattice_weight=1.0, sampling="crops", max_train_actions=160,
                        whole_video_fraction=0.1, decoding="auto", path_loss="crf", epoch_steps=10),
        trainer=TrainerConfig(epochs=40, validate_start=True, batch_nodes=256_000),
        data=DataConfig(features="rp")).override(changes)


RECIPES = {e.name: e for e in [
    _recipe("tfalign_rp_sbn", "tfalign's recipe: a lattice CRF that starts at the DTW baseline (ridge similarity, "
            "tuned drop cost) with learned corrections: a drop cost per clip, the similarities around each node, "
            "and RP, AdamLARS, SBN + joint embedding with a contrastive loss, cursor-only classifier trained on "
            "the whole lattice behind a gate; decoded exactly, random crops, 10 steps an epoch at least"),
]}
PAPER_EXPERIMENTS = dict(EXPERIMENTS)
EXPERIMENTS.update(STAGES)
EXPERIMENTS.update(RECIPES)


def get_experiment(name: str) -> ExperimentConfig:
    if name not in EXPERIMENTS:
        raise UserError(f"unknown experiment {name!r}; `python -m tfalign.train --list` shows the {len(EXPERIMENTS)}")
    return EXPERIMENTS[name]


# The command line's option names that are not a field's own name (the others: a field
# name alone, or a dotted path, as ``ExperimentConfig.override`` takes them).
OPTION_FIELDS = {"lr": "optimizer.learning_rate", "optimizer": "optimizer.name", "data_seed": "data.seed",
                 "pretrain_epochs": "init_from.trainer.epochs", "lsmdc_scale": "init_from.data.lsmdc_scale"}
# A run's seed and the generated data's seed and difficulty hold for every stage of it.
SHARED_WITH_FIRST_STAGE = ("trainer.seed", "data.seed", "data.difficulty")


def configure(experiment: str | ExperimentConfig, changes: dict | None = None, /, **overrides) -> ExperimentConfig:
    """A registered experiment (or a config) with fields changed, as the command line changes them.

    Args:
        experiment: an experiment's name (``python -m tfalign.train --list``) or an ``ExperimentConfig``.
        changes, **overrides: values by dotted path (``"model.normalization"``), by
            field name alone (``epochs``, ``seed``, ``learning_rate``) or by the
            command line's option name (``lr``, ``optimizer``, ``data_seed``,
            ``pretrain_epochs``, ``lsmdc_scale``); None leaves a field as it is. The
            run's seed, data seed and difficulty hold for a first stage too.

    Returns:
        The checked ``ExperimentConfig``; a bad value is a UserError naming its field.

    Example:
    >>> configure("tfalign_rp_sbn", epochs=2, seed=1, **{"model.hidden_units": 32}).trainer.epochs
    2
    """
    config = get_experiment(experiment) if isinstance(experiment, str) else experiment
    if not isinstance(config, ExperimentConfig):
        raise UserError(f"experiment: expected an experiment name or an ExperimentConfig, got "
                        f"{type(experiment).__name__}", field="experiment")
    given = {OPTION_FIELDS.get(k, k): v for k, v in {**(changes or {}), **overrides}.items() if v is not None}
    if config.init_from is not None:
        paths = {config_path(config, k): v for k, v in given.items()}
        given.update({f"init_from.{k}": v for k, v in paths.items()
                      if k in SHARED_WITH_FIRST_STAGE and f"init_from.{k}" not in paths})
    return config.override(given)


def config_path(config: ExperimentConfig, key: str) -> str:
    from tfalign.configs import resolve_path

    return resolve_path(config, key)
