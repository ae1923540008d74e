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


def _episodes(shapes):
    """Episodes of the given (clips, texts), each clip matched to a text in order."""
    return [make_episode([min(i * texts // clips, texts - 1) for i in range(clips)], texts, seed=k, video_id=str(k))
            for k, (clips, texts) in enumerate(shapes)]


def _batches(episodes, batch_size, batch_nodes, seed=0, batch_actions=0):
    """(rows, padded clips x texts, padded clips + texts, indices) of each batch."""
    return [(b["clip_features"].shape[0], b["clip_features"].shape[1] * b["text_features"].shape[1],
             b["clip_features"].shape[1] + b["text_features"].shape[1], b["index"].numpy().tolist())
            for b in make_dataset(episodes, batch_size, shuffle=True, seed=seed, bucket=True, batch_nodes=batch_nodes,
                                  batch_actions=batch_actions)]


from hypothesis import given, settings, strategies as st  # noqa: E402

SHAPES = st.lists(st.tuples(st.integers(1, 40), st.integers(1, 12)), min_size=1, max_size=30)


@settings(max_examples=30, deadline=None)
@given(shapes=SHAPES, batch_size=st.integers(1, 8), batch_nodes=st.sampled_from([0, 1, 30, 200, 2000]),
       batch_actions=st.sampled_from([0, 1, 20, 60, 300]), seed=st.integers(0, 3))
def test_budgets_bound_every_batch_and_keep_every_episode(shapes, batch_size, batch_nodes, batch_actions, seed):
    """Every batch's padded lattice (rows x clips x texts) and padded sequences (rows x
    (clips + texts)) stay within their budgets, unless a single episode is larger (then
    it comes alone); every episode comes once, and count_batches counts the batches."""
    from tfalign.data.batching import count_batches

    episodes = _episodes(shapes)
    batches = _batches(episodes, batch_size, batch_nodes, seed, batch_actions)
    for rows, nodes, actions, _ in batches:
        assert rows <= batch_size
        assert rows == 1 or ((not batch_nodes or rows * nodes <= batch_nodes)
                             and (not batch_actions or rows * actions <= batch_actions))
    assert sorted(i for *_, indices in batches for i in indices) == list(range(len(episodes)))
    assert count_batches(episodes, batch_size, bucket=True, batch_nodes=batch_nodes,
                         batch_actions=batch_actions) == len(batches)


@settings(max_examples=15, deadline=None)
@given(shapes=SHAPES, batch_size=st.integers(1, 8), seed=st.integers(0, 3))
def test_a_budget_that_holds_every_batch_changes_nothing(shapes, batch_size, seed):
    """The same batches, in the same order, as without a budget."""
    episodes = _episodes(shapes)
    roomy = batch_size * 40 * 12
    assert _batches(episodes, batch_size, roomy, seed, batch_actions=batch_size * 52) == \
        _batches(episodes, batch_size, 0, seed)


def test_long_videos_come_in_smaller_batches():
    from tfalign.data.batching import bucket_plan

    episodes = _episodes([(10, 3)] * 20 + [(200, 40)] * 4)
    boundaries, sizes = bucket_plan(episodes, 8, batch_nodes=8 * 30)
    assert sizes[0] == 8 and sizes[-1] == 1  # short ones 8 a batch, the long alone
    assert bucket_plan(episodes, 8) == ([14], [8, 8])  # the quartiles (all three at 14), without a budget
