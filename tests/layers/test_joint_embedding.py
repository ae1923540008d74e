import numpy as np
import pytest
from harness import run_layer_test

from tfalign.layers import JointEmbedding


def reference(layer, source, clips, texts, clip_lengths, text_lengths):
    """Cosine similarities in natural order from reversed, padded sequences, in NumPy."""
    clip_head, text_head = layer.heads[source]
    out = np.zeros((len(clips), clips.shape[1], texts.shape[1]))
    for b, (n, m) in enumerate(zip(clip_lengths, text_lengths)):
        c = clips[b, :n][::-1] @ clip_head.kernel.numpy() + clip_head.bias.numpy()
        t = texts[b, :m][::-1] @ text_head.kernel.numpy() + text_head.bias.numpy()
        c /= np.linalg.norm(c, axis=1, keepdims=True)
        t /= np.linalg.norm(t, axis=1, keepdims=True)
        out[b, :n, :m] = c @ t.T
    return out


@pytest.mark.parametrize("source", ["encoder", "stacks"])
def test_layer_harness_and_numpy_reference(source):
    rng = np.random.default_rng(0)
    inputs = {"clips": rng.normal(size=(2, 5, 6)).astype(np.float32),
              "texts": rng.normal(size=(2, 3, 4)).astype(np.float32),
              "clip_lengths": np.array([5, 2], np.int32), "text_lengths": np.array([3, 1], np.int32)}
    layer, out = run_layer_test(JointEmbedding, {"units": 7, "sources": ["encoder", "stacks"]}, inputs, (2, 5, 3),
                                build_shape={"encoder": (6, 4), "stacks": (6, 4)},
                                call_kwargs={"source": source}, expected_num_trainable_weights=8)
    np.testing.assert_allclose(out.numpy(), reference(layer, source, *inputs.values()), atol=1e-5)
    assert np.all(out.numpy()[1, 2:] == 0) and np.all(out.numpy()[1, :, 1:] == 0)  # padding is 0


def test_the_input_source_standardizes_first():
    rng = np.random.default_rng(1)
    layer = JointEmbedding(units=4, sources=("input",))
    layer.build({"input": (6, 5)})
    assert len(layer.trainable_weights) == 8 and len(layer.non_trainable_weights) == 4  # two SBNs' statistics
    clips, texts = rng.normal(size=(1, 4, 6)) * 50 + 10, rng.normal(size=(1, 2, 5))
    out = layer(clips.astype(np.float32), texts.astype(np.float32), np.array([4]), np.array([2]), source="input",
                training=True).numpy()
    assert np.all(np.abs(out) <= 1 + 1e-5)
    assert not np.allclose(layer.input_norms[0].moving_mean.numpy(), 0)  # the statistics moved
    with pytest.raises(ValueError, match="sources"):
        JointEmbedding(sources=("pixels",))
