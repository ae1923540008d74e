import numpy as np

from conftest import make_episode
from tfalign.data.batching import make_dataset
from tfalign.data.oracle import alignment_to_actions


def test_batches_are_padded_reversed_with_actions():
    eps = [make_episode([-1, 0, 0, 1], 2, seed=1), make_episode([0, 1, 1, 2, -1, -1], 3, seed=2)]
    batch = next(iter(make_dataset(eps, batch_size=2)))
    assert batch["clip_features"].shape == (2, 6, 6) and batch["text_features"].shape == (2, 3, 5)
    assert batch["clip_lengths"].numpy().tolist() == [4, 6]
    assert batch["text_lengths"].numpy().tolist() == [2, 3]
    # Position 0 holds the last clip; padding follows the first clip.
    assert np.allclose(batch["clip_features"][0, :4], eps[0].clip_features[::-1])
    assert np.all(batch["clip_features"][0, 4:] == 0)
    assert np.allclose(batch["text_features"][1], eps[1].text_features[::-1])
    assert batch["actions"].numpy()[0, :6].tolist() == alignment_to_actions([-1, 0, 0, 1], 2).tolist()
    assert batch["action_lengths"].numpy().tolist() == [6, 9]


def test_shuffle_and_bucketing_keep_every_episode():
    eps = [make_episode([0] * (1 + i % 7), 1, seed=i, video_id=str(i)) for i in range(40)]
    seen = []
    for batch in make_dataset(eps, batch_size=8, shuffle=True, bucket=True, seed=1):
        seen += batch["index"].numpy().tolist()
        lengths = batch["action_lengths"].numpy()
        assert batch["actions"].shape[1] == lengths.max()
    assert sorted(seen) == list(range(40))


def test_elements_are_dense_and_no_generator_is_kept():
    """The datasets come from tensors: dense specs (the training step's signature),
    and nothing left in TensorFlow's registry of Python functions (from_generator's
    generators, with the arrays they close over, stayed there for the process's life)."""
    import pytest
    import tensorflow as tf
    from tensorflow.python.ops import script_ops

    if not hasattr(script_ops, "_py_funcs"):
        pytest.skip("this TensorFlow keeps its Python-function registry elsewhere")
    episodes = [make_episode([0, 0, 1, -1, 2], 3, seed=i) for i in range(5)]
    before = script_ops._py_funcs.size()
    for _ in range(3):
        dataset = make_dataset(episodes, 2, shuffle=True, bucket=True)
        list(dataset)
    assert script_ops._py_funcs.size() == before
    for key, spec in dataset.element_spec.items():
        assert isinstance(spec, tf.TensorSpec), key
    assert dataset.element_spec["clip_features"].shape.as_list() == [None, None, 6]
