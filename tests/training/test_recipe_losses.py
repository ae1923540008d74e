"""tfalign's own loss terms against plain NumPy references written here."""

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from tfalign.training.losses import contrastive_sum, lattice_cross_entropy_sum


def log_softmax(x, axis=-1):
    z = x - x.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def numpy_lattice(logits, c2t, clips, texts, eps):
    total, count = 0.0, 0
    for b in range(len(clips)):
        for i in range(clips[b]):
            for j in range(texts[b]):
                c = c2t[b, i]
                label = 2 if c == j else (1 if c > j else 0)  # MATCH, POP_TEXT, else POP_CLIP
                target = np.full(3, eps / 3)
                target[label] += 1 - eps
                total -= (target * log_softmax(logits[b, i, j])).sum()
                count += 1
    return total, count


def numpy_contrastive(sim, c2t, clips, texts, temperature):
    total, count = 0.0, 0
    for b in range(len(clips)):
        s = sim[b, :clips[b], :texts[b]] / temperature
        labels = c2t[b, :clips[b]]
        for i in range(clips[b]):
            if labels[i] >= 0:
                total -= log_softmax(s[i])[labels[i]]
                count += 1
        for j in range(texts[b]):
            own = labels == j
            if own.any():
                column = log_softmax(s[:, j])
                total -= np.log(np.exp(column[own]).sum())
                count += 1
    return total, count


def random_batch(rng, batch=3):
    clips, texts = rng.integers(1, 7, batch), rng.integers(1, 5, batch)
    c2t = np.full((batch, clips.max()), 7)  # padding: any value
    for b in range(batch):
        c2t[b, :clips[b]] = np.sort(rng.integers(-1, texts[b], clips[b]))
        c2t[b, :clips[b]][rng.random(clips[b]) < 0.2] = -1
    return clips, texts, c2t


@settings(max_examples=25)
@given(st.integers(0, 2**31 - 1), st.floats(0, 0.2))
def test_lattice_cross_entropy_matches_numpy(seed, eps):
    rng = np.random.default_rng(seed)
    clips, texts, c2t = random_batch(rng)
    logits = rng.normal(size=(len(clips), clips.max(), texts.max(), 3)).astype(np.float32) * 2
    total, count = lattice_cross_entropy_sum(tf.constant(logits), tf.constant(c2t), clips, texts, eps)
    expected_total, expected_count = numpy_lattice(logits, c2t, clips, texts, eps)
    assert float(count) == expected_count
    assert float(total) == pytest.approx(expected_total, rel=1e-4)


@settings(max_examples=25)
@given(st.integers(0, 2**31 - 1), st.sampled_from([0.05, 0.1, 1.0]))
def test_contrastive_loss_matches_numpy(seed, temperature):
    rng = np.random.default_rng(seed)
    clips, texts, c2t = random_batch(rng)
    sim = rng.uniform(-1, 1, size=(len(clips), clips.max(), texts.max())).astype(np.float32)
    total, count = contrastive_sum(tf.constant(sim), tf.constant(c2t), clips, texts, temperature)
    expected_total, expected_count = numpy_contrastive(sim, c2t, clips, texts, temperature)
    assert float(count) == expected_count
    assert float(total) == pytest.approx(expected_total, rel=1e-4, abs=1e-3)


@settings(max_examples=25)
@given(st.integers(0, 2**31 - 1))
def test_a_pseudo_labelled_video_s_open_clips_take_no_part_in_the_node_and_contrastive_terms(seed):
    """With ``known_clips``, both terms equal their NumPy references on the known clips alone:
    the lattice rows of the open clips dropped, the open clips removed from the video."""
    rng = np.random.default_rng(seed)
    clips, texts, c2t = random_batch(rng)
    known = (rng.random(c2t.shape) < 0.6).astype(np.int32)
    logits = rng.normal(size=(len(clips), clips.max(), texts.max(), 3)).astype(np.float32) * 2
    sim = rng.uniform(-1, 1, size=(len(clips), clips.max(), texts.max())).astype(np.float32)
    expected = {"lattice": [0.0, 0], "contrastive": [0.0, 0]}
    for b in range(len(clips)):
        keep = np.flatnonzero(known[b, :clips[b]])
        if not len(keep):
            continue
        one = (np.array([len(keep)]), texts[b:b + 1], c2t[b:b + 1, keep])
        for term, value in (("lattice", numpy_lattice(logits[b:b + 1, keep], one[2], *one[:2], 0.1)),
                            ("contrastive", numpy_contrastive(sim[b:b + 1, keep], one[2], *one[:2], 0.1))):
            expected[term][0] += value[0]
            expected[term][1] += value[1]
    for term, (total, count) in (
            ("lattice", lattice_cross_entropy_sum(tf.constant(logits), tf.constant(c2t), clips, texts, 0.1,
                                                  known_clips=known)),
            ("contrastive", contrastive_sum(tf.constant(sim), tf.constant(c2t), clips, texts, 0.1,
                                            known_clips=known))):
        assert float(count) == expected[term][1]
        assert float(total) == pytest.approx(expected[term][0], rel=1e-4, abs=1e-3)


def test_contrastive_loss_is_lower_for_the_true_pairs():
    c2t = np.array([[0, 0, 1, -1, 2]])
    aligned = np.full((1, 5, 3), -0.5, np.float32)
    for i, c in enumerate(c2t[0]):
        if c >= 0:
            aligned[0, i, c] = 0.9
    shuffled = aligned[:, :, ::-1].copy()
    good = contrastive_sum(tf.constant(aligned), c2t, [5], [3])[0]
    bad = contrastive_sum(tf.constant(shuffled), c2t, [5], [3])[0]
    assert float(good) < float(bad)
