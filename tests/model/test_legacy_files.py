"""Weights files and TF checkpoints an older tfalign wrote (one model holding every layer,
before the backbone was its own layer) load into today's aligners.

The files in legacy_files/ were written by tfalign 6b0a2c7 (two small models, their weights
set to known values, saved in ``<name>_weights.npz`` in the old model's weight order)."""

import pathlib
import types

import numpy as np
import pytest

from tfalign.errors import UserError
from tfalign.model import aligner_from_fields
from tfalign.model.legacy_layout import legacy_layout
from tfalign.optimizers import make_optimizer
from tfalign.training.checkpoints import checkpoint_structure, read_checkpoint, restore_weights

FILES = pathlib.Path(__file__).parent / "legacy_files"
FIELDS = {"paper": dict(normalization="sbn", units=4, action_units=2, matched_units=3, hidden_units=3, clip_dim=5,
                        text_dim=3),
          "recipe": dict(normalization="sbn", units=4, hidden_units=3, clip_dim=5, text_dim=3, history=False,
                         position="normalized", similarity_units=2, similarity_source="all", stack_features=False,
                         dtw_start=True)}
CONFIG = types.SimpleNamespace(optimizer=types.SimpleNamespace(name="lars", learning_rate=1e-3, weight_averaging=0.0))


def _model(name):
    model = aligner_from_fields(encoder="rp", **FIELDS[name])
    model.build()
    return model


def _assert_the_old_values(model, name):
    expected = np.load(FILES / f"{name}_weights.npz")
    got = [w.numpy() for w in legacy_layout(model).weights]  # the old model's weight order
    assert len(got) == len(expected.files) == len(model.weights) - (not model.decoder_history)
    if not model.decoder_history:  # the confidences' temperature came later: it stays at 1
        assert float(model.confidence_temperature.numpy()) == 1.0
    for key, value in zip(expected.files, got):
        np.testing.assert_array_equal(value, expected[key], err_msg=key)


@pytest.mark.parametrize("name", sorted(FIELDS))
@pytest.mark.parametrize("kind", ["weights file", "TF checkpoint"])
def test_an_older_tfalign_s_weights_load_into_today_s_aligner(name, kind):
    model = _model(name)
    path = FILES / (f"{name}.weights.h5" if kind == "weights file" else f"{name}_ckpt")
    restore_weights(model, path, CONFIG)
    _assert_the_old_values(model, name)


def test_an_older_tfalign_s_checkpoint_refuses_to_resume_in_one_line():
    model = _model("recipe")
    optimizer = make_optimizer("lars", 1e-3)
    optimizer.build(model.trainable_variables)
    with pytest.raises(UserError, match="before the backbone was its own layer: .* cannot resume"):
        read_checkpoint(checkpoint_structure(model, optimizer), FILES / "recipe_ckpt")


def test_today_s_files_are_not_read_as_an_older_tfalign_s(tmp_path):
    model = _model("recipe")
    model.save_weights(tmp_path / "m.weights.h5")
    reloaded = _model("recipe")
    restore_weights(reloaded, tmp_path / "m.weights.h5", CONFIG)
    for a, b in zip(model.weights, reloaded.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
