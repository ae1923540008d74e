"""The lattice as a CRF: the log-partition, posterior marginals, conditional
probabilities and clip posteriors against brute-force enumeration of every
complete action sequence (NumPy, written here)."""

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from strategies import alignments
from tfalign.data.oracle import MATCH, POP_CLIP, POP_TEXT, alignment_to_actions
from tfalign.dp.lattice import (best_path, clip_confidence, clip_posteriors, conditional_log_probabilities,
                                   log_partition, posterior_marginals, through_known_clips)
from tfalign.model.objective import crf_negative_log_likelihood_sum


def complete_sequences(num_clips, num_texts):
    """Every complete action sequence: the moves until a stack is empty, then the forced tail."""
    found = []

    def walk(i, j, actions):
        if i == num_clips or j == num_texts:
            found.append(actions + [POP_TEXT] * (num_texts - j) + [POP_CLIP] * (num_clips - i))
            return
        for action in (POP_CLIP, MATCH):
            walk(i + 1, j, actions + [action])
        walk(i, j + 1, actions + [POP_TEXT])

    walk(0, 0, [])
    return found


def scored_nodes(actions, num_clips, num_texts):
    """(i, j, action) of each action, at the clamped cursors (where forced actions are scored)."""
    i = j = 0
    nodes = []
    for action in actions:
        nodes.append((min(i, num_clips - 1), min(j, num_texts - 1), action))
        i, j = (i, j + 1) if action == POP_TEXT else (i + 1, j)
    return nodes


def brute_force(scores, num_clips, num_texts):
    """(log Z, marginals [T_v, T_s, 3], each sequence with its probability) by enumeration."""
    sequences = complete_sequences(num_clips, num_texts)
    totals = np.array([sum(scores[n] for n in scored_nodes(s, num_clips, num_texts)) for s in sequences])
    log_z = np.logaddexp.reduce(totals)
    probabilities = np.exp(totals - log_z)
    marginals = np.zeros(scores.shape)
    for sequence, probability in zip(sequences, probabilities):
        for node in scored_nodes(sequence, num_clips, num_texts):
            marginals[node] += probability
    return log_z, marginals, list(zip(sequences, probabilities))


def assignment(actions, num_clips, num_texts):
    """The clip_to_text a complete sequence encodes (plain Python): each MATCH while both stacks hold something."""
    clip_to_text, i, j = [-1] * num_clips, 0, 0
    for action in actions:
        if i < num_clips and j < num_texts and action == MATCH:
            clip_to_text[i] = j
        i, j = (i, j + 1) if action == POP_TEXT else (i + 1, j)
    return clip_to_text


def random_lattices(seed, batch=3, max_clips=5, max_texts=4, scale=2.0):
    rng = np.random.default_rng(seed)
    clips, texts = rng.integers(1, max_clips + 1, batch), rng.integers(1, max_texts + 1, batch)
    scores = (scale * rng.normal(size=(batch, clips.max(), texts.max(), 3))).astype(np.float32)
    return scores, clips, texts


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_log_partition_and_marginals_equal_enumeration(seed):
    scores, clips, texts = random_lattices(seed)
    log_z, marginals = posterior_marginals(tf.constant(scores), clips, texts)
    np.testing.assert_allclose(log_z.numpy(), log_partition(scores, clips, texts).numpy(), rtol=1e-6)
    for b in range(len(clips)):
        expected_log_z, expected_marginals, _ = brute_force(scores[b].astype(np.float64), clips[b], texts[b])
        assert float(log_z[b]) == pytest.approx(expected_log_z, abs=1e-4)
        np.testing.assert_allclose(marginals[b].numpy(), expected_marginals, atol=2e-5)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_conditionals_give_each_sequence_its_probability(seed):
    """The product of p(action | node) along a sequence (its forced tail aside) is
    the CRF's probability of the sequence, and each node's three sum to 1."""
    scores, clips, texts = random_lattices(seed)
    conditionals = conditional_log_probabilities(tf.constant(scores), clips, texts).numpy()
    for b in range(len(clips)):
        inside = conditionals[b, :clips[b], :texts[b]]
        np.testing.assert_allclose(np.exp(inside).sum(-1), 1.0, atol=1e-5)
        _, _, sequences = brute_force(scores[b].astype(np.float64), clips[b], texts[b])
        for sequence, probability in sequences:
            i = j = 0
            log_p = 0.0
            for action in sequence:
                if i == clips[b] or j == texts[b]:
                    break  # the forced tail: no choice left
                log_p += conditionals[b, i, j, action]
                i, j = (i, j + 1) if action == POP_TEXT else (i + 1, j)
            assert np.exp(log_p) == pytest.approx(probability, abs=1e-5)


@settings(max_examples=30, deadline=None)
@given(alignments(max_texts=4, max_clips_per_text=2).filter(lambda a: len(a[0]) <= 6))
def test_the_loss_gradient_is_marginals_minus_the_gold_path(alignment):
    """d NLL / d scores = posterior marginals - the gold path's indicators (enumerated)."""
    clip_to_text, num_texts = alignment
    num_clips = len(clip_to_text)
    rng = np.random.default_rng(num_clips * 31 + num_texts)
    scores = tf.constant(rng.normal(size=(1, num_clips, num_texts, 3)).astype(np.float32))
    actions = alignment_to_actions(clip_to_text, num_texts)
    with tf.GradientTape() as tape:
        tape.watch(scores)
        total, count = crf_negative_log_likelihood_sum(scores, actions[None], [len(actions)], [num_clips],
                                                       [num_texts])
    gradient = tape.gradient(total, scores).numpy()[0]
    log_z, marginals, _ = brute_force(scores.numpy()[0].astype(np.float64), num_clips, num_texts)
    gold = np.zeros(marginals.shape)
    for node in scored_nodes(actions, num_clips, num_texts):
        gold[node] += 1
    gold_score = sum(scores.numpy()[0][n] for n in scored_nodes(actions, num_clips, num_texts))
    assert float(total) == pytest.approx(log_z - gold_score, abs=1e-4)
    assert float(count) == len(actions)
    np.testing.assert_allclose(gradient, marginals - gold, atol=2e-5)


def known_labels(rng, scores, clips, texts):
    """A pseudo-label of each episode (the assignment of one of its complete sequences,
    padded with -1), a random mask of known clips (0 on padding), and a weight per row."""
    batch, max_clips = len(clips), scores.shape[1]
    clip_to_text, known = np.full((batch, max_clips), -1), np.zeros((batch, max_clips), np.int32)
    for b in range(batch):
        sequences = complete_sequences(clips[b], texts[b])
        clip_to_text[b, :clips[b]] = assignment(sequences[rng.integers(len(sequences))], clips[b], texts[b])
        known[b, :clips[b]] = rng.random(clips[b]) < 0.6
    return clip_to_text, known, rng.choice([0.0, 0.5, 2.0], batch).astype(np.float32)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_the_partial_label_loss_sums_over_the_paths_through_the_known_clips(seed):
    """log Z of ``through_known_clips`` = the log-sum over the enumerated sequences whose
    assignment agrees on every known clip; a pseudo-labelled row's loss is its weight times
    log Z minus that, a labelled row's (weight 0) the gold path's negative log-likelihood."""
    scores, clips, texts = random_lattices(seed)
    rng = np.random.default_rng(seed)
    clip_to_text, known, weights = known_labels(rng, scores, clips, texts)
    through = log_partition(through_known_clips(tf.constant(scores), clip_to_text, known), clips, texts).numpy()
    actions = np.full((len(clips), scores.shape[1] + scores.shape[2]), -1)
    expected_total = 0.0
    for b in range(len(clips)):
        sequences = complete_sequences(clips[b], texts[b])
        totals = np.array([sum(scores[b].astype(np.float64)[n] for n in scored_nodes(s, clips[b], texts[b]))
                           for s in sequences])
        agree = [all(assignment(s, clips[b], texts[b])[i] == clip_to_text[b, i] for i in range(clips[b])
                     if known[b, i]) for s in sequences]
        assert through[b] == pytest.approx(np.logaddexp.reduce(totals[agree]), abs=1e-4)
        gold = alignment_to_actions(clip_to_text[b, :clips[b]], texts[b])
        actions[b, :len(gold)] = gold
        log_z = np.logaddexp.reduce(totals)
        gold_score = sum(scores[b][n] for n in scored_nodes(gold, clips[b], texts[b]))
        expected_total += (weights[b] * (log_z - np.logaddexp.reduce(totals[agree])) if weights[b]
                           else log_z - gold_score)
    total, _ = crf_negative_log_likelihood_sum(scores, actions, (actions >= 0).sum(1), clips, texts, clip_to_text,
                                               known, weights)
    assert float(total) == pytest.approx(expected_total, abs=1e-3)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_clip_posteriors_and_confidence(seed):
    """Each clip's probability of every text and of being unmatched, enumerated; rows sum to 1."""
    scores, clips, texts = random_lattices(seed)
    _, marginals = posterior_marginals(tf.constant(scores), clips, texts)
    posteriors = clip_posteriors(marginals).numpy()
    decoded = best_path(tf.constant(scores), clips, texts)["clip_to_text"]
    confidence = clip_confidence(marginals, decoded).numpy()
    for b in range(len(clips)):
        _, _, sequences = brute_force(scores[b].astype(np.float64), clips[b], texts[b])
        expected = np.zeros((clips[b], texts.max() + 1))
        for sequence, probability in sequences:
            for clip, text in enumerate(assignment(sequence, clips[b], texts[b])):
                expected[clip, text if text >= 0 else texts.max()] += probability
        np.testing.assert_allclose(posteriors[b, :clips[b]], expected, atol=2e-5)
        np.testing.assert_allclose(posteriors[b, :clips[b]].sum(-1), 1.0, atol=1e-5)
        chosen = decoded[b, :clips[b]].numpy()
        np.testing.assert_allclose(confidence[b, :clips[b]],
                                   expected[np.arange(clips[b]), np.where(chosen >= 0, chosen, texts.max())],
                                   atol=2e-5)


def test_log_partition_is_stable_for_large_scores_and_long_lattices():
    rng = np.random.default_rng(0)
    scores = tf.constant(50.0 * rng.normal(size=(2, 300, 80, 3)), tf.float32)
    log_z, marginals = posterior_marginals(scores, [300, 120], [80, 33])
    best = best_path(scores, [300, 120], [80, 33])["score"]
    assert np.isfinite(log_z.numpy()).all() and np.isfinite(marginals.numpy()).all()
    # log Z >= the best path's score, and close to it when one path dominates.
    assert (log_z.numpy() >= best.numpy() - 1e-2).all()


def test_the_confidence_temperature_divides_the_scores_of_the_marginals_not_of_the_paths():
    """A LatticeAligner's ``confidence_temperature``: its clips' confidences are the posteriors
    of the lattice's scores divided by it; its paths, greedy and exact, stay."""
    from conftest import make_episode
    from tfalign.data.batching import episodes_request, to_natural
    from tfalign.dp.lattice import clip_confidence, posterior_marginals
    from tfalign.model import aligner_from_fields

    tf.keras.utils.set_random_seed(3)
    videos = [make_episode([-1, 0, 0, 1, 2, 2, -1], 4, 12, 7, seed=0), make_episode([0, 1, 1], 2, 12, 7, seed=1)]
    model = aligner_from_fields(encoder="rp", units=8, hidden_units=6, clip_dim=12, text_dim=7, history=False,
                                position="normalized", similarity_units=4, stack_features=False, dtw_start=True)
    model.build()
    model.backbone.ridge.fit(videos)
    model.potentials.set_start(0.5)
    request = episodes_request(videos)
    before = {d: model.align(request, d) for d in ("greedy", "exact")}
    model.confidence_temperature.assign(0.4)
    after = {d: model.align(request, d) for d in ("greedy", "exact")}
    lengths = tf.constant(request["clip_lengths"]), tf.constant(request["text_lengths"])
    inputs = {"clip_features": to_natural(tf.constant(request["clip_features"]), lengths[0]),
              "text_features": to_natural(tf.constant(request["text_features"]), lengths[1]),
              "clip_lengths": lengths[0], "text_lengths": lengths[1]}
    scores = model.lattice_scores(model.encode_stacks(inputs))
    for decoding in ("greedy", "exact"):
        np.testing.assert_array_equal(after[decoding]["actions"], before[decoding]["actions"])
        expected = clip_confidence(posterior_marginals(scores / 0.4, *lengths)[1], after[decoding]["clip_to_text"])
        np.testing.assert_allclose(after[decoding]["clip_confidence"], expected, rtol=1e-5, atol=1e-6)
        assert not np.allclose(after[decoding]["clip_confidence"], before[decoding]["clip_confidence"])
