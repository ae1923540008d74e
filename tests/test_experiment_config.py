"""Experiment configs: validation at construction, --set overrides, the recipe apart."""

import dataclasses

import pytest

from tfalign.experiments import EXPERIMENTS, PAPER_EXPERIMENTS, RECIPES, get_experiment, parse_setting


def test_the_paper_experiments_use_none_of_tfaligns_techniques():
    defaults = {f.name: f.default for f in dataclasses.fields(type(get_experiment("rp_lars_sbn")))}
    own = ["decoder_history", "position_features", "similarity_units", "contrastive_weight", "lattice_weight",
           "stack_dropout", "sampling", "decoding", "early_stopping_patience", "similarity_source",
           "stack_features", "whole_video_fraction"]
    assert len(PAPER_EXPERIMENTS) == 13
    for config in PAPER_EXPERIMENTS.values():
        assert config.family == "paper"
        for name in own:
            assert getattr(config, name) == defaults[name], (config.name, name)


def test_recipes_are_listed_apart():
    assert RECIPES and all(c.family == "tfalign" for c in RECIPES.values())
    assert set(EXPERIMENTS) == set(PAPER_EXPERIMENTS) | set(RECIPES)


@pytest.mark.parametrize("changes,field", [
    ({"normalization": "bn"}, "normalization"), ({"label_smoothing": 1.5}, "label_smoothing"),
    ({"learning_rate": 0.0}, "learning_rate"), ({"batch_size": 0}, "batch_size"),
    ({"decoding": "exact"}, "decoding"), ({"decoding": "auto"}, "decoding"),
    ({"contrastive_weight": 1.0}, "contrastive_weight"),
    ({"sampling": "random"}, "sampling")])
def test_a_bad_value_fails_at_construction_naming_the_field(changes, field):
    with pytest.raises(ValueError, match=field):
        get_experiment("rp_lars_sbn").override(**changes)


def test_set_converts_to_the_field_type():
    config = get_experiment("tfalign_rp_sbn")
    assert parse_setting(config, "stack_dropout=0.3") == {"stack_dropout": 0.3}
    assert parse_setting(config, "stack_features=false") == {"stack_features": False}
    assert parse_setting(config, "similarity_units=64") == {"similarity_units": 64}
    assert parse_setting(config, "data.difficulty=0.8") == {"data_difficulty": 0.8}
    assert config.override(**parse_setting(config, "data.seed=3")).data.seed == 3


@pytest.mark.parametrize("setting,message", [
    ("nope=1", "unknown field"), ("similarity_units=abc", "expected a int"), ("stack_features=maybe", "bool"),
    ("dropout", "FIELD=VALUE"), ("data.nope=1", "unknown field")])
def test_set_errors_name_the_field(setting, message):
    with pytest.raises(ValueError, match=message):
        parse_setting(get_experiment("tfalign_rp_sbn"), setting)
