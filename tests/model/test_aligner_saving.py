"""The aligner through Keras-native saving: ``.keras`` files and presets, in fp32 and bf16."""

import numpy as np
import pytest
import tensorflow as tf

from conftest import make_episode
from layers.harness import run_model_saving_test
from tfalign.data.batching import episodes_request, make_dataset
from tfalign.model import aligner_from_fields


def _episodes(clip_dim, text_dim):
    return [make_episode([-1, 0, 0, 1, 2, 2, -1], 4, clip_dim, text_dim, seed=3, video_id="a"),
            make_episode([0, 1, 1, -1], 2, clip_dim, text_dim, seed=4, video_id="b")]


# Each model kind in float32; bf16 for the paper's (history) and the recipe's (DTW start): the
# plain history-free one has no part in bf16 the recipe does not have. One case in the quick set.
@pytest.mark.parametrize("dtype,history,dtw_start", [
    pytest.param("float32", True, False, marks=pytest.mark.large), ("float32", False, False),
    pytest.param("float32", False, True, marks=pytest.mark.large),
    pytest.param("mixed_bfloat16", True, False, marks=pytest.mark.large),
    pytest.param("mixed_bfloat16", False, True, marks=pytest.mark.large)])
def test_the_aligner_saves_and_reloads_with_its_widths_and_dtype(dtype, history, dtw_start, tmp_path):
    tf.keras.utils.set_random_seed(0)
    options = {} if history else dict(history=False, position="normalized", similarity_units=8,
                                      similarity_source="all", stack_features=False, ridge_similarity=True,
                                      dtw_start=dtw_start)
    model = aligner_from_fields(encoder="rp", normalization="sbn", units=16, action_units=4, matched_units=6,
                            hidden_units=12, clip_dim=12, text_dim=7, dtype=dtype, **options)
    model.build()
    episodes = _episodes(12, 7)
    if not history:  # the fixed ridge channel, fitted as a run's start fits it, and the
        model.backbone.ridge.fit(episodes)  # confidences' temperature, fitted at a run's end: they must travel too
        model.confidence_temperature.assign(0.7)
    if dtw_start:  # the DTW start and its corrections travel too
        model.potentials.set_start(0.8)
        for weight in model.potentials.trainable_weights:
            weight.assign(weight + 0.1)
    batch = next(iter(make_dataset(episodes, 2)))
    model.training_outputs(batch, training=True)  # the SBN statistics move off their start values
    assert model.get_config()["dtype"]["config"]["name"] == dtype  # get_config builds on Keras's own
    reloaded = run_model_saving_test(model, batch, episodes_request(episodes), tmp_path,
                                     decodings=("greedy",) if history else ("greedy", "exact"))
    assert reloaded.input_widths == (12, 7) and reloaded.backbone.clip_projection is not None  # RP projects any width


def test_a_reloaded_model_keeps_every_weight(tmp_path):
    model = aligner_from_fields(encoder="full", normalization="2ln", clip_dim=10, text_dim=9, units=8, hidden_units=6)
    model.build()
    model.save(tmp_path / "m.keras")
    import keras

    reloaded = keras.models.load_model(tmp_path / "m.keras")
    assert [w.path for w in reloaded.weights] == [w.path for w in model.weights]
    for a, b in zip(model.get_weights(), reloaded.get_weights()):
        np.testing.assert_array_equal(a, b)
