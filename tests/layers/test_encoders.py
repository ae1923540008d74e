import numpy as np
import pytest
from harness import run_layer_test

from tfalign.data.projection import achlioptas_matrix
from tfalign.layers import FeatureEncoder, FixedProjection


@pytest.mark.parametrize("kind, widths, weights", [("full", (12, 7), 8), ("rp", (300, 300), 6), ("lxmert", (9, 9), 8)])
def test_layer_harness(kind, widths, weights):
    rng = np.random.default_rng(0)
    clips = rng.normal(size=(2, 4, widths[0])).astype(np.float32)
    texts = rng.normal(size=(2, 3, widths[1])).astype(np.float32)
    run_layer_test(FeatureEncoder, {"kind": kind, "units": 6, "dropout": 0.1}, {"inputs": (clips, texts)},
                   [(2, 4, 6), (2, 3, 6)], expected_num_trainable_weights=weights)


def test_fixed_projection_layer_harness():
    x = np.random.default_rng(0).normal(size=(2, 4, 16)).astype(np.float32)
    run_layer_test(FixedProjection, {"input_dim": 16, "output_dim": 4, "seed": 3}, {"inputs": x}, (2, 4, 4),
                   expected_output=x @ achlioptas_matrix(16, 4, 3), expected_num_trainable_weights=0)


@pytest.mark.parametrize("kind, widths, params", [
    ("full", (2048, 768), 768 * 300 + 90_300 + 2048 * 300 + 2 * 90_300),
    ("rp", (300, 300), 3 * 90_300),
    ("lxmert", (768, 768), 768 * 300 + 90_300 + 768 * 300 + 2 * 90_300),
])
def test_shapes_and_parameter_counts(kind, widths, params):
    encoder = FeatureEncoder(kind)
    clips, texts = encoder((np.ones((2, 5, widths[0]), np.float32), np.ones((2, 3, widths[1]), np.float32)))
    assert clips.shape == (2, 5, 300) and texts.shape == (2, 3, 300)
    assert np.all(clips.numpy() >= 0)  # ReLU after every layer
    assert sum(np.prod(w.shape) for w in encoder.trainable_weights) == params


def test_first_full_layers_have_no_bias():
    encoder = FeatureEncoder("full")
    encoder.build(((None, 2048), (None, 768)))
    assert not encoder.video_layers[0].use_bias and not encoder.text_layers[0].use_bias
    with pytest.raises(ValueError, match="encoder kind"):
        FeatureEncoder("clip")


def test_fixed_projection_is_the_seeded_matrix_and_not_trained():
    layer = FixedProjection(16, 4, seed=3)
    x = np.random.default_rng(0).normal(size=(2, 16)).astype(np.float32)
    assert np.allclose(layer(x), x @ achlioptas_matrix(16, 4, 3), atol=1e-5)
    assert layer.trainable_weights == []
    clone = FixedProjection.from_config(layer.get_config())
    assert np.allclose(clone(x), layer(x))

