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
    return _built(FIELDS[name])


def _built(fields):
    model = aligner_from_fields(encoder="rp", **fields)
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


@pytest.mark.parametrize("fields", [FIELDS["recipe"], dict(FIELDS["paper"], normalization="2ln")])
def test_today_s_files_are_not_read_as_an_older_tfalign_s(fields, tmp_path):
    """Today's weights files and TF checkpoints (with the optimizer beside the model, as a run
    writes them: a variable is named by its shortest path, for a 2LN model every backbone
    variable's through the optimizer) read as today's, and a run's checkpoint resumes."""
    _model = lambda _: _built(fields)  # noqa: E731
    model = _model("recipe")
    model.save_weights(tmp_path / "m.weights.h5")
    optimizer = make_optimizer("lars", 1e-3)
    optimizer.build(model.trainable_variables)
    checkpoint = checkpoint_structure(model, optimizer).write(str(tmp_path / "ckpt"))
    for path in (tmp_path / "m.weights.h5", checkpoint):
        reloaded = _model("recipe")
        restore_weights(reloaded, path, CONFIG)
        for a, b in zip(model.weights, reloaded.weights):
            np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    resumed = _model("recipe")
    optimizer = make_optimizer("lars", 1e-3)
    optimizer.build(resumed.trainable_variables)
    read_checkpoint(checkpoint_structure(resumed, optimizer), checkpoint)
