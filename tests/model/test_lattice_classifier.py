"""The lattice classifier, a block of rows at a time: values against a plain
NumPy reference, gradients against TensorFlow's autodiff of the unblocked
formula, for one block and for many."""

import numpy as np
import pytest
import tensorflow as tf

from tfalign.model.classifier_inputs import normalized_position_features, position_features
from tfalign.model.lattice_classifier import lattice_logits

WINDOW = 4


def numpy_positions(clip_lengths, text_lengths, num_clips, num_texts):
    """The paper's 10 position values at every node, written out element by element."""
    out = np.zeros((len(clip_lengths), num_clips, num_texts, 10), np.float32)
    for b, (big_v, big_s) in enumerate(zip(clip_lengths + 1, text_lengths + 1)):
        for i in range(num_clips):
            for j in range(num_texts):
                a, c = max(clip_lengths[b] - 1 - i, 0) + 1, max(text_lengths[b] - 1 - j, 0) + 1
                out[b, i, j] = [a, c, a / big_v, c / big_s, big_v / a, big_s / c, a / c, c / a,
                                (big_v - a) / (big_s - c), (big_s - c) / (big_v - a)]
    return out


def numpy_logits(rows, columns, maps, clip_lengths, text_lengths, wp, ws, wo, bo):
    batch, num_clips, units = rows.shape
    num_texts = columns.shape[1]
    p = numpy_positions(clip_lengths, text_lengths, num_clips, num_texts)
    hidden = rows[:, :, None] + columns[:, None] + p @ wp
    channels = maps.shape[-1]
    padded = np.pad(maps, [(0, 0), (1, 2), (1, 2), (0, 0)])
    for c in range(channels):
        for a in range(WINDOW):
            for b in range(WINDOW):
                window = padded[:, a:a + num_clips, b:b + num_texts, c]
                hidden += window[..., None] * ws[c * WINDOW * WINDOW + a * WINDOW + b]
    return np.maximum(hidden, 0.0) @ wo + bo


def inputs(seed=0, batch=3, num_clips=9, num_texts=5, units=6, channels=2):
    rng = np.random.default_rng(seed)
    clip_lengths = np.array([num_clips, num_clips - 3, 2][:batch], np.int32)
    text_lengths = np.array([num_texts, 2, num_texts - 1][:batch], np.int32)
    maps = rng.uniform(-1, 1, (batch, num_clips, num_texts, channels)).astype(np.float32)
    maps *= (np.arange(num_clips)[None, :, None] < clip_lengths[:, None, None])[..., None]
    maps *= (np.arange(num_texts)[None, None, :] < text_lengths[:, None, None])[..., None]
    f = lambda *shape: rng.normal(size=shape).astype(np.float32)
    return dict(rows=f(batch, num_clips, units), columns=f(batch, num_texts, units), maps=maps,
                clip_lengths=clip_lengths, text_lengths=text_lengths, wp=f(10, units),
                ws=f(channels * WINDOW * WINDOW, units), wo=f(units, 3), bo=f(3))


def blocked(x, block_elements, position_fn=position_features):
    padded = tf.pad(x["maps"], [[0, 0], [1, 2], [1, 2], [0, 0]])
    return lattice_logits(x["rows"], x["columns"], padded, tf.constant(x["clip_lengths"]),
                          tf.constant(x["text_lengths"]), position_fn, x["wp"], x["ws"], x["wo"], x["bo"],
                          window=WINDOW, block_elements=block_elements)


def node_mask(x):
    num_clips, num_texts = x["rows"].shape[1], x["columns"].shape[1]
    return ((np.arange(num_clips)[None, :, None] < x["clip_lengths"][:, None, None])
            & (np.arange(num_texts)[None, None, :] < x["text_lengths"][:, None, None]))


# A row holds 3 x 5 x 6 = 90 hidden values. 1: a row a block; 200: 2 rows, the
# last of the 5 blocks holds 1; 400: 4 rows, 3 blocks; 10**6: all rows in one block.
BLOCK_ELEMENTS = [1, 200, 400, 10**6]


@pytest.mark.parametrize("block_elements", BLOCK_ELEMENTS)
def test_logits_equal_the_numpy_reference(block_elements):
    x = {k: tf.constant(v) for k, v in inputs().items()}
    got = blocked(x, block_elements).numpy()
    want = numpy_logits(**inputs())
    mask = node_mask(inputs())
    np.testing.assert_allclose(got[mask], want[mask], rtol=1e-5, atol=1e-5)


def test_logits_without_similarity_maps():
    x = inputs(channels=1)
    got = lattice_logits(tf.constant(x["rows"]), tf.constant(x["columns"]), None, x["clip_lengths"],
                         x["text_lengths"], position_features, x["wp"], None, x["wo"], x["bo"], block_elements=30)
    want = numpy_logits(**{**x, "maps": np.zeros_like(x["maps"])})
    mask = node_mask(x)
    np.testing.assert_allclose(got.numpy()[mask], want[mask], rtol=1e-5, atol=1e-5)


def test_logits_without_rows():
    x = inputs()
    padded = tf.pad(x["maps"], [[0, 0], [1, 2], [1, 2], [0, 0]])
    got = lattice_logits(None, tf.constant(x["columns"]), padded, x["clip_lengths"], x["text_lengths"],
                         position_features, x["wp"], x["ws"], x["wo"], x["bo"], block_elements=200)
    want = numpy_logits(**{**x, "rows": np.zeros_like(x["rows"])})
    mask = node_mask(x)
    np.testing.assert_allclose(got.numpy()[mask], want[mask], rtol=1e-5, atol=1e-5)


def unblocked(x, position_fn):
    """The same classifier in one piece, differentiated by TensorFlow's autodiff."""
    num_clips, num_texts = tf.shape(x["rows"])[1], tf.shape(x["columns"])[1]
    clip_cursor = tf.maximum(x["clip_lengths"][:, None, None] - 1 - tf.range(num_clips)[None, :, None], 0)
    text_cursor = tf.maximum(x["text_lengths"][:, None, None] - 1 - tf.range(num_texts)[None, None, :], 0)
    shape = tf.shape(x["maps"])[:3]
    p = position_fn(tf.broadcast_to(clip_cursor, shape), tf.broadcast_to(text_cursor, shape),
                    x["clip_lengths"][:, None, None], x["text_lengths"][:, None, None])
    padded = tf.pad(x["maps"], [[0, 0], [1, 2], [1, 2], [0, 0]])
    windows = tf.stack([padded[:, a:a + num_clips, b:b + num_texts, c] for c in range(x["maps"].shape[-1])
                        for a in range(WINDOW) for b in range(WINDOW)], axis=-1)
    hidden = x["rows"][:, :, None] + x["columns"][:, None] + tf.tensordot(p, x["wp"], 1) + tf.tensordot(
        windows, x["ws"], 1)
    return tf.tensordot(tf.nn.relu(hidden), x["wo"], 1) + x["bo"]


@pytest.mark.parametrize("block_elements", BLOCK_ELEMENTS)
def test_gradients_equal_autodiff_of_the_unblocked_classifier(block_elements):
    x = inputs(seed=1, channels=3)
    x["wp"] = x["wp"][:2]
    x = {k: tf.constant(v) for k, v in x.items()}
    upstream = tf.constant(np.random.default_rng(2).normal(size=(3, 9, 5, 3)).astype(np.float32))
    upstream *= tf.cast(node_mask({k: v.numpy() for k, v in x.items()}), tf.float32)[..., None]
    differentiated = ["rows", "columns", "maps", "wp", "ws", "wo", "bo"]
    grads = {}
    for name, fn in (("blocked", lambda: blocked(x, block_elements, normalized_position_features)),
                     ("unblocked", lambda: unblocked(x, normalized_position_features))):
        with tf.GradientTape() as tape:
            tape.watch([x[k] for k in differentiated])
            loss = tf.reduce_sum(fn() * upstream)
        grads[name] = tape.gradient(loss, [x[k] for k in differentiated])
    for name, got, want in zip(differentiated, grads["blocked"], grads["unblocked"]):
        assert got is not None, name
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4, atol=1e-4, err_msg=name)


def test_blocked_gradients_in_a_tf_function_under_bfloat16():
    x = inputs(seed=3, channels=2)
    x = {k: tf.constant(v) if v.dtype != np.float32 else tf.constant(v, tf.bfloat16) for k, v in x.items()}

    @tf.function
    def grads(block_elements):
        with tf.GradientTape() as tape:
            tape.watch([x["rows"], x["ws"]])
            loss = tf.reduce_sum(tf.cast(blocked(x, block_elements), tf.float32))
        return tape.gradient(loss, [x["rows"], x["ws"]])

    one_block, many_blocks = grads(10**6), grads(1)
    for got, want in zip(many_blocks, one_block):
        assert got.dtype == tf.bfloat16
        np.testing.assert_allclose(tf.cast(got, tf.float32).numpy(), tf.cast(want, tf.float32).numpy(),
                                   rtol=0.05, atol=0.05)
