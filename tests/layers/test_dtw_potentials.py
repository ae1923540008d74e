import keras
import numpy as np
import tensorflow as tf
from harness import run_layer_test

from tfalign.data.oracle import MATCH, POP_CLIP, POP_TEXT
from tfalign.layers import DTWPotentials


def reference(layer, similarity, clip_lengths, text_lengths, residual=None):
    """The layer's scores in NumPy, one episode at a time, every feature written out."""
    out = np.zeros((*similarity.shape, 3))
    scale = np.exp(layer.log_scale.numpy())
    drop_kernel, context_kernel = layer.drop_kernel.numpy(), layer.context_kernel.numpy()
    for b, (n, m) in enumerate(zip(clip_lengths, text_lengths)):
        s = similarity[b, :n, :m].astype(np.float64)
        ordered = np.sort(s, axis=1)[:, ::-1]
        second = ordered[:, 1] if m > 1 else ordered[:, 0]
        rows = np.stack([s.max(1), s.mean(1), s.std(1), ordered[:, 0] - second, s.max(1) - s.mean(1)], -1)
        drop = layer.drop_cost.numpy() + rows @ drop_kernel
        padded = np.pad(s, 1)
        for i in range(n):
            for j in range(m):
                window = [padded[i + 1 + a, j + 1 + c] for a in (-1, 0, 1) for c in (-1, 0, 1)]
                diagonal = abs((i + 0.5) / n - (j + 0.5) / m)
                features = np.array(window + [s[i, j] - s[i].mean(), s[i, j] - s[:, j].mean(), s[i, j] - s[i].max(),
                                              s[i, j] - s[:, j].max(), diagonal, diagonal ** 2])
                out[b, i, j, POP_CLIP] = -scale * drop[i]
                out[b, i, j, MATCH] = scale * (s[i, j] - 1)
                out[b, i, j] += features @ context_kernel
                if residual is not None:
                    out[b, i, j] += layer.residual_gate.numpy() * residual[b, i, j]
    return out


def test_layer_harness_and_numpy_reference():
    rng = np.random.default_rng(0)
    inputs = {"similarity": rng.uniform(-1, 1, size=(2, 5, 4)).astype(np.float32),
              "clip_lengths": np.array([5, 3], np.int32), "text_lengths": np.array([4, 1], np.int32)}
    layer, out = run_layer_test(DTWPotentials, {}, inputs, (2, 5, 4, 3), expected_num_trainable_weights=5,
                                expected_num_non_trainable_weights=1, run_mixed_precision_check=False)
    # At the start: the DTW baseline's scores times the scale; POP_TEXT is 0.
    layer.set_start(0.7)
    start = layer(**inputs).numpy()
    np.testing.assert_allclose(start[0, ..., POP_CLIP], -10 * 0.7, rtol=1e-6)
    np.testing.assert_allclose(start[0, ..., MATCH], 10 * (inputs["similarity"][0] - 1), rtol=1e-5)
    assert np.all(start[..., POP_TEXT] == 0) and float(layer.start_distance()) == 0
    # Every correction moved: the NumPy reference, residual included.
    for weight in (layer.drop_kernel, layer.context_kernel, layer.residual_gate, layer.log_scale):
        weight.assign(rng.normal(size=weight.shape).astype(np.float32))
    residual = rng.normal(size=(2, 5, 4, 3)).astype(np.float32)
    got = layer(**inputs, residual=residual).numpy()
    expected = reference(layer, inputs["similarity"], inputs["clip_lengths"], inputs["text_lengths"], residual)
    for b, (n, m) in enumerate(zip(inputs["clip_lengths"], inputs["text_lengths"])):
        np.testing.assert_allclose(got[b, :n, :m], expected[b, :n, :m], rtol=1e-4, atol=1e-4)
    assert float(layer.start_distance()) > 0


def test_scores_stay_float32_under_mixed_precision():
    layer = DTWPotentials(dtype="mixed_bfloat16")
    out = layer(tf.zeros([1, 3, 2], tf.bfloat16), tf.constant([3]), tf.constant([2]),
                residual=tf.zeros([1, 3, 2, 3], tf.bfloat16))
    assert out.dtype == tf.float32 and all(w.dtype == "float32" for w in layer.weights)


def test_padding_stays_finite_with_one_text():
    layer = DTWPotentials()
    similarity = np.zeros((2, 4, 3), np.float32)
    similarity[0, :2, :1] = 0.5
    out = layer(similarity, np.array([2, 4]), np.array([1, 3])).numpy()
    assert np.isfinite(out).all()
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert revived.get_config() == layer.get_config()
