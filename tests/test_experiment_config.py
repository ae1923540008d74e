"""Experiment configs: grouped and typed, validated at construction, one override path, the recipe apart."""

import dataclasses
import json

import pytest

from tfalign.configs import ExperimentConfig, ModelConfig, TaskConfig, TrainerConfig, settable_fields
from tfalign.errors import UserError
from tfalign.experiments import EXPERIMENTS, PAPER_EXPERIMENTS, RECIPES, STAGES, get_experiment, parse_setting

TFALIGN_MODEL_FIELDS = ["history", "position", "similarity_units", "similarity_source",
                        "stack_features", "hidden_units", "stack_dropout"]
TFALIGN_TASK_FIELDS = ["contrastive_weight", "lattice_weight", "sampling", "decoding", "whole_video_fraction"]


def test_the_paper_experiments_use_none_of_tfaligns_techniques():
    assert len(PAPER_EXPERIMENTS) == 13
    for config in PAPER_EXPERIMENTS.values():
        assert config.family == "paper"
        for name in TFALIGN_MODEL_FIELDS:
            assert getattr(config.model, name) == getattr(ModelConfig(), name), (config.name, name)
        for name in TFALIGN_TASK_FIELDS:
            assert getattr(config.task, name) == getattr(TaskConfig(), name), (config.name, name)
        assert config.trainer.early_stopping_patience == 0
        assert config.optimizer.weight_averaging == 0.0


def test_recipes_and_stages_are_listed_apart():
    assert RECIPES and all(c.family == "tfalign" for c in RECIPES.values())
    assert set(EXPERIMENTS) == set(PAPER_EXPERIMENTS) | set(RECIPES) | set(STAGES)


def test_our_pretraining_is_two_registered_stages():
    config = get_experiment("our_pretraining")
    first = config.init_from
    assert first == get_experiment("our_pretraining_lsmdc")
    assert (first.optimizer.learning_rate, first.optimizer.weight_decay, first.model.dropout) == (1e-3, 1e-6, 0.1)
    assert (first.trainer.epochs, first.trainer.early_stopping_patience) == (100, 10)
    assert first.data.dataset == "synthetic-lsmdc" and first.data.features == config.data.features == "full"
    assert config.optimizer.learning_rate == 5e-4 and config.trainer.early_stopping_patience == 0


def test_a_first_stage_must_build_the_same_network():
    with pytest.raises(UserError, match="init_from: the first stage"):
        dataclasses.replace(get_experiment("rp_lars_sbn"), init_from=get_experiment("our_pretraining_lsmdc"))
    with pytest.raises(UserError, match="first stage of its own"):
        dataclasses.replace(get_experiment("full_adam"), init_from=get_experiment("our_pretraining"))
    # Dropout may differ between the stages.
    assert get_experiment("our_pretraining").override({"model.dropout": 0.3}).init_from.model.dropout == 0.1


@pytest.mark.parametrize("changes,field", [
    ({"model.normalization": "bn"}, "model.normalization"), ({"label_smoothing": 1.5}, "trainer.label_smoothing"),
    ({"learning_rate": 0.0}, "optimizer.learning_rate"), ({"batch_size": 0}, "trainer.batch_size"),
    ({"decoding": "exact"}, "decoding"), ({"trainer.decoding": "auto"}, "decoding"),
    ({"contrastive_weight": 1.0}, "contrastive_weight"), ({"optimizer.name": "sgd"}, "optimizer.name"),
    ({"sampling": "random"}, "task.sampling"), ({"data.difficulty": 2.0}, "data.difficulty"),
    ({"schedule.warmup_epochs": 3}, "schedule.warmup_start_lr")])
def test_a_bad_value_fails_at_construction_naming_the_field(changes, field):
    with pytest.raises(UserError, match=field.replace(".", r"\.")):
        get_experiment("rp_lars_sbn").override(changes)


def test_a_group_built_directly_is_checked_too():
    with pytest.raises(UserError, match=r"model\.dropout"):
        ModelConfig(dropout=1.5)
    with pytest.raises(UserError, match=r"trainer\.epochs: expected an integer"):
        TrainerConfig(epochs=2.5)


def test_override_takes_dotted_paths_and_field_names():
    config = get_experiment("rp_lars_sbn")
    changed = config.override({"model.stack_dropout": 0.2, "data.seed": 4}, learning_rate=0.01, seed=3)
    assert changed.model.stack_dropout == 0.2 and changed.data.seed == 4
    assert changed.optimizer.learning_rate == 0.01 and changed.trainer.seed == 3  # "seed" is the trainer's
    assert config.override(epochs=None) == config  # an unset option changes nothing
    assert changed.get("optimizer.learning_rate") == 0.01 and changed.get("learning_rate") == 0.01
    with pytest.raises(UserError, match="no first stage"):
        config.override({"init_from.trainer.epochs": 3})
    assert get_experiment("our_pretraining").override({"init_from.trainer.epochs": 3}).init_from.trainer.epochs == 3


def test_set_converts_to_the_field_type():
    config = get_experiment("tfalign_rp_sbn")
    assert parse_setting(config, "stack_dropout=0.3") == {"model.stack_dropout": 0.3}
    assert parse_setting(config, "model.stack_features=false") == {"model.stack_features": False}
    assert parse_setting(config, "similarity_units=64") == {"model.similarity_units": 64}
    assert parse_setting(config, "data.difficulty=0.8") == {"data.difficulty": 0.8}
    assert parse_setting(config, "schedule.warmup_start_lr=none") == {"schedule.warmup_start_lr": None}
    assert config.override(parse_setting(config, "data.seed=3")).data.seed == 3
    assert parse_setting(config, "data.unlabelled_videos=all") == {"data.unlabelled_videos": "all"}  # or a number
    assert parse_setting(config, "data.unlabelled_videos=12") == {"data.unlabelled_videos": 12}
    assert set(settable_fields(get_experiment("our_pretraining"))) >= {"init_from.trainer.epochs", "model.encoder"}


@pytest.mark.parametrize("setting,message", [
    ("nope=1", "unknown field"), ("similarity_units=abc", "expected an integer"),
    ("stack_features=maybe", "true or false"), ("dropout", "FIELD=VALUE"), ("data.nope=1", "unknown field"),
    ("model.normalization=bn", None), ("data.unlabelled_videos=some", "expected an integer"),
    ("task.pseudo_label_fraction=0", r"task.pseudo_label_fraction: expected a value in \(0, 1\]"),
    ("task.unlabelled_weight=-1", "task.unlabelled_weight: expected a value >= 0"),
    ("task.pseudo_label_rounds=0", "task.pseudo_label_rounds: expected a value >= 1")])
def test_set_errors_name_the_field(setting, message):
    with pytest.raises(UserError, match=message or "normalization"):
        config = get_experiment("tfalign_rp_sbn")
        config.override(parse_setting(config, setting))


@pytest.mark.parametrize("experiment, changes, message", [
    ("rp_lars_sbn", {}, "task.unlabelled_weight: only a model that starts at DTW"),
    ("tfalign_rp_sbn", {"task.sampling": "paper"}, "task.unlabelled_weight: the pseudo-labels change every round")])
def test_the_crf_s_unlabelled_training_names_what_it_needs(experiment, changes, message):
    with pytest.raises(UserError, match=message):
        get_experiment(experiment).override({"task.unlabelled_weight": 1.0, **changes})


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_json_round_trip(name):
    config = get_experiment(name)
    assert ExperimentConfig.from_dict(json.loads(config.to_json())) == config
    # config.json also records what ran the run; that is not part of the config.
    assert ExperimentConfig.from_dict({**config.to_dict(), "runtime": {"replicas": 2}}) == config


@pytest.mark.parametrize("name", ["rp_lars_sbn", "rp_adam_warmup_sbn", "our_pretraining", "tfalign_rp_sbn"])
def test_a_flat_config_of_an_older_tfalign_is_read_grouped(name):
    config = get_experiment(name)
    flat = {"name": config.name, "description": config.description, "family": config.family,
            "data": dataclasses.asdict(config.data)}
    for group in ("model", "schedule", "task", "trainer"):  # the task's fields were the trainer's then
        flat.update(dataclasses.asdict(getattr(config, group)))
    optimizer = dataclasses.asdict(config.optimizer)
    flat.update(optimizer=optimizer.pop("name"), **optimizer)
    if config.init_from is not None:
        first = config.init_from
        flat["pretraining"] = {"dataset": first.data.dataset, "learning_rate": first.optimizer.learning_rate,
                               "weight_decay": first.optimizer.weight_decay, "dropout": first.model.dropout,
                               "epochs": first.trainer.epochs,
                               "early_stopping_patience": first.trainer.early_stopping_patience,
                               "lsmdc_scale": first.data.lsmdc_scale}
    restored = ExperimentConfig.from_dict(flat)
    assert dataclasses.replace(restored, init_from=None) == dataclasses.replace(config, init_from=None)
    if config.init_from is not None:
        first = restored.init_from
        assert dataclasses.replace(first, name="", description="") == dataclasses.replace(
            config.init_from, name="", description="")


@pytest.mark.parametrize("values,message", [
    ({"name": "x", "description": "", "model": {"nope": 1}}, r"model\.nope"),
    ({"name": "x", "description": "", "model": 3}, "model: expected an object"),
    ({"name": "x", "description": "", "extra": 1}, "unknown field"),
    ({"description": ""}, "name"), ([], "expected an object")])
def test_from_dict_errors_are_one_line(values, message):
    with pytest.raises(UserError, match=message) as error:
        ExperimentConfig.from_dict(values)
    assert "\n" not in str(error.value)
