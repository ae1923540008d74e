"""The lattice of a cursor-only decoder: oracle labels, the exact best path,
and lattice logits equal to the step-by-step decoder's."""

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import make_episode
from strategies import alignments
from tfalign.data.batching import make_dataset
from tfalign.data.oracle import POP_TEXT, actions_to_alignment, alignment_to_actions
from tfalign.model import aligner_from_fields
from tfalign.model.decoding import greedy, teacher_forced_logits
from tfalign.dp.lattice import best_path, node_labels, running_max
from tfalign.model.paths import path_nodes


def sequence_score(log_probs, actions, num_clips, num_texts):
    """A decoded sequence's log-probability, its forced tail included."""
    i = j = 0
    score = 0.0
    for action in actions:
        score += log_probs[i, j, action]
        i, j = (i, j + 1) if action == POP_TEXT else (i + 1, j)
    score += sum(log_probs[r, num_texts - 1, 0] for r in range(i, num_clips))  # POP_CLIP at the last text
    score += sum(log_probs[num_clips - 1, t, POP_TEXT] for t in range(j, num_texts))
    return score


def brute_force_best(log_probs, num_clips, num_texts):
    """Every complete action sequence, scored; the best one (NumPy reference).

    The forced pops after a stack ran empty are scored at the clamped cursors
    (leftover clips at the last text, leftover texts at the last clip)."""
    best = (-np.inf, None)
    stack = [(0, 0, 0.0, [])]
    while stack:
        i, j, score, actions = stack.pop()
        if i == num_clips or j == num_texts:
            score += sum(log_probs[r, num_texts - 1, 0] for r in range(i, num_clips))  # POP_CLIP
            score += sum(log_probs[num_clips - 1, t, POP_TEXT] for t in range(j, num_texts))
            if score > best[0]:
                best = (score, actions)
            continue
        for action in range(3):
            ni, nj = (i, j + 1) if action == POP_TEXT else (i + 1, j)
            stack.append((ni, nj, score + log_probs[i, j, action], actions + [action]))
    return best


@settings(max_examples=40)
@given(st.integers(0, 2**31 - 1))
def test_best_path_is_the_most_probable_complete_sequence(seed):
    rng = np.random.default_rng(seed)
    batch = 3
    clips, texts = rng.integers(1, 6, batch), rng.integers(1, 5, batch)
    log_probs = np.log(rng.dirichlet(np.ones(3), size=(batch, clips.max(), texts.max())))
    out = best_path(tf.constant(log_probs, tf.float32), clips, texts)
    for b in range(batch):
        score, _ = brute_force_best(log_probs[b], clips[b], texts[b])
        n = int(out["num_actions"][b])
        actions = out["actions"][b, :n].numpy()
        assert np.all(out["actions"][b, n:].numpy() == -1)
        assert float(out["score"][b]) == pytest.approx(score, abs=1e-3)
        # The returned sequence is complete and reaches the best score (ties may pick another of equal score).
        i = int(np.sum(actions != POP_TEXT))
        j = int(np.sum(actions == POP_TEXT))
        assert i == clips[b] or j == texts[b]
        assert sequence_score(log_probs[b], actions, clips[b], texts[b]) == pytest.approx(score, abs=1e-3)
        expected = actions_to_alignment(actions, clips[b], texts[b])
        np.testing.assert_array_equal(out["clip_to_text"][b, :clips[b]].numpy(), expected)


@settings(max_examples=30)
@given(alignments())
def test_a_lattice_that_favours_the_oracle_decodes_to_the_ground_truth(alignment):
    """Node labels favoured everywhere; the video ends with a clip of the last
    text, so the oracle's forced tail is one POP_TEXT and any other path pays
    more (with other endings the tail's clamped nodes make ties possible)."""
    clip_to_text, num_texts = alignment
    clip_to_text = np.append(clip_to_text, num_texts - 1)
    labels = node_labels(tf.constant([clip_to_text]), num_texts).numpy()[0]
    log_probs = np.log(np.where(np.eye(3)[labels] > 0, 0.98, 0.01))
    out = best_path(tf.constant(log_probs[None], tf.float32), [len(clip_to_text)], [num_texts])
    np.testing.assert_array_equal(out["clip_to_text"][0].numpy(), clip_to_text)


@settings(max_examples=30)
@given(alignments())
def test_node_labels_on_the_path_are_the_oracle_actions(alignment):
    clip_to_text, num_texts = alignment
    actions = alignment_to_actions(clip_to_text, num_texts)
    num_clips = len(clip_to_text)
    labels = node_labels(tf.constant([clip_to_text]), num_texts).numpy()[0]
    clips, texts = path_nodes(tf.constant([actions]), [num_clips], [num_texts])
    clips, texts = clips.numpy()[0], texts.numpy()[0]
    i = j = 0
    for step, action in enumerate(actions):
        if i == num_clips or j == num_texts:
            break  # the forced pops after a stack ran empty are not lattice nodes
        assert (clips[step], texts[step]) == (i, j)
        assert labels[i, j] == action
        i, j = (i, j + 1) if action == POP_TEXT else (i + 1, j)


def cursor_only_model(position="normalized", similarity_source="encoder", stack_features=True, seed=0):
    tf.keras.utils.set_random_seed(seed)
    model = aligner_from_fields(encoder="rp", normalization="sbn", units=16, hidden_units=12, history=False,
                            position=position, similarity_units=8, similarity_source=similarity_source,
                            stack_features=stack_features)
    model.build()
    return model


def episodes():
    return [make_episode([-1, 0, 0, 1, 2, 2, -1], 4, 300, 300, seed=1, video_id="a"),
            make_episode([0, 1, 1, 1, 2], 3, 300, 300, seed=2, video_id="b"),
            make_episode([-1, 0], 1, 300, 300, seed=3, video_id="c")]


@pytest.mark.parametrize("position,source,stack_features", [
    ("normalized", "encoder", True), ("paper", "stacks", True), ("normalized", "both", False),
    ("normalized", "all", False)])
def test_lattice_logits_equal_the_step_by_step_decoder(position, source, stack_features):
    model = cursor_only_model(position, source, stack_features)
    batch = next(iter(make_dataset(episodes(), 3)))
    stacks = model.encode_stacks(batch)
    loop = teacher_forced_logits(model, stacks, batch["actions"]).numpy()
    lattice = model.training_outputs(batch)["logits"].numpy()
    mask = np.arange(loop.shape[1])[None] < batch["action_lengths"].numpy()[:, None]
    np.testing.assert_allclose(lattice[mask], loop[mask], atol=1e-5)


def test_exact_decoding_scores_at_least_the_greedy_path():
    model = cursor_only_model()
    batch = next(iter(make_dataset(episodes(), 3)))
    stacks = model.encode_stacks(batch)
    log_probs = tf.nn.log_softmax(model.lattice_logits(stacks)).numpy()
    exact = best_path(log_probs, stacks["clip_lengths"], stacks["text_lengths"])
    greedy_out = greedy(model, stacks)
    for b in range(3):
        clips, texts = int(stacks["clip_lengths"][b]), int(stacks["text_lengths"][b])
        score = sequence_score(log_probs[b], greedy_out["actions"][b, :int(greedy_out["num_actions"][b])].numpy(),
                               clips, texts)
        assert float(exact["score"][b]) >= score - 1e-4


def test_a_history_decoder_has_no_lattice():
    tf.keras.utils.set_random_seed(0)
    model = aligner_from_fields(encoder="rp", units=16, hidden_units=12)
    model.build()
    assert not hasattr(model, "lattice_logits") and model.decodings == ("greedy",)
    with pytest.raises(ValueError, match="history"):
        model.make_align_function("exact")


@settings(max_examples=40)
@given(st.lists(st.lists(st.integers(-3, 3), min_size=1, max_size=100), min_size=1, max_size=3).filter(
    lambda rows: len({len(r) for r in rows}) == 1))
def test_running_max_is_the_maximum_of_each_prefix_and_the_entry_column_its_first_place(rows):
    from tfalign.dp.lattice import _entry_column

    values = np.asarray(rows, np.float32) * 0.5  # small integers: many ties
    expected_best = np.maximum.accumulate(values, axis=1)
    unknown = tf.function(running_max, input_signature=[tf.TensorSpec([None, None], tf.float32)])
    for best in (running_max(tf.constant(values)), unknown(tf.constant(values))):
        np.testing.assert_array_equal(best.numpy(), expected_best)
    for j in range(values.shape[1]):  # where each prefix's maximum first is: numpy's argmax
        column = tf.fill([values.shape[0]], j)
        np.testing.assert_array_equal(_entry_column(tf.constant(values), column).numpy(),
                                      [int(np.argmax(row[: j + 1])) for row in values])


@pytest.mark.parametrize("clips, texts", [(7, 5), (40, 33), (90, 70)])
def test_blocks_of_one_column_find_the_same_path(clips, texts, monkeypatch):
    from tfalign.dp import lattice

    rng = np.random.default_rng(clips)
    log_probs = tf.nn.log_softmax(tf.constant(rng.normal(size=(2, clips, texts, 3)), tf.float32))
    lengths = (tf.constant([clips, clips - 3]), tf.constant([texts, texts - 2]))
    decode = tf.function(best_path, input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32),
                                                     tf.TensorSpec([None], tf.int32), tf.TensorSpec([None], tf.int32)])
    blocked = {k: v.numpy() for k, v in decode(log_probs, *lengths).items()}
    monkeypatch.setattr(lattice, "RUNNING_MAX_BLOCK", 1)  # every column a block: all pairs of columns
    single = {k: v.numpy() for k, v in best_path(log_probs, *lengths).items()}
    for key in ("actions", "num_actions", "clip_to_text", "score"):
        np.testing.assert_array_equal(blocked[key], single[key])


def test_greedy_walk_over_the_lattice_is_the_step_by_step_decoder():
    """A cursor-only decoder's greedy steps read the node its cursors point at: walking
    the lattice of its log-probabilities takes the same actions with the same probabilities."""
    from tfalign.dp.lattice import greedy_walk

    model = cursor_only_model(seed=3)
    batch = next(iter(make_dataset(episodes(), 3)))
    stacks = model.encode_stacks(batch)
    log_probs = tf.nn.log_softmax(model.lattice_logits(stacks))
    walked = greedy_walk(log_probs, stacks["clip_lengths"], stacks["text_lengths"])
    stepped = greedy(model, stacks)
    np.testing.assert_array_equal(walked["num_actions"].numpy(), stepped["num_actions"].numpy())
    steps = stepped["actions"].shape[1]
    np.testing.assert_array_equal(walked["actions"].numpy()[:, :steps], stepped["actions"].numpy())
    np.testing.assert_allclose(walked["probabilities"].numpy()[:, :steps], stepped["probabilities"].numpy(),
                               atol=1e-5)
