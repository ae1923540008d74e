"""The aligner's losses: label-smoothed cross-entropy over the valid action
steps (the paper's) or the lattice CRF's negative log-likelihood of the whole
path, and tfalign's lattice cross-entropy and InfoNCE terms (docs/recipe.md);
``alignment_loss`` weighs them into one.

Each term is a sum and a count, so that the caller chooses the mean: over one
batch (``AlignerTask.compute_loss``, Keras's ``fit``), or over the global
batch of every replica (the trainer's step, training/task.py).
"""

import dataclasses

import keras
import tensorflow as tf

from tfalign.data.oracle import NUM_ACTIONS
from tfalign.dp.lattice import log_partition, node_labels, node_mask, through_known_clips
from tfalign.model.paths import path_nodes


@dataclasses.dataclass(frozen=True)
class LossWeights:
    """The terms of the loss: the path's term ("cross_entropy" of each action, or
    "crf"), label smoothing of the cross-entropies, the lattice term's weight,
    the contrastive term's weight and temperature (0: off)."""

    path_loss: str = "cross_entropy"
    label_smoothing: float = 0.0
    lattice_weight: float = 0.0
    contrastive_weight: float = 0.0
    contrastive_temperature: float = 0.1


def local_mean(total, count):
    """A term's mean over this batch."""
    return total / tf.maximum(count, 1.0)


def alignment_loss(outputs, batch, weights: LossWeights, mean=local_mean):
    """The weighted loss of an aligner's ``training_outputs`` on a labelled batch:
    the path's term, plus the lattice and contrastive terms where their weights
    are not 0 (they need a decoder without history, and the joint embedding)."""
    loss = mean(*path_term_sum(outputs, batch, weights))
    known = batch.get("known_clips")  # a pseudo-labelled video's guessed clips take no part
    if weights.lattice_weight:
        loss += weights.lattice_weight * mean(*lattice_cross_entropy_sum(
            outputs["lattice_logits"], batch["clip_to_text"], batch["clip_lengths"], batch["text_lengths"],
            weights.label_smoothing, known_clips=known))
    if weights.contrastive_weight:
        for similarity in outputs["similarities"].values():
            loss += weights.contrastive_weight * mean(*contrastive_sum(
                similarity, batch["clip_to_text"], batch["clip_lengths"], batch["text_lengths"],
                weights.contrastive_temperature, known_clips=known))
    return loss


def path_term_sum(outputs, batch, weights: LossWeights):
    """The path's term, summed, and its count: the cross-entropy of each action
    (``logits``) or the CRF's negative log-likelihood (``lattice_scores``)."""
    if weights.path_loss == "crf":
        return crf_negative_log_likelihood_sum(outputs["lattice_scores"], batch["actions"], batch["action_lengths"],
                                               batch["clip_lengths"], batch["text_lengths"], batch["clip_to_text"],
                                               batch.get("known_clips"), batch.get("pseudo_weight"))
    return masked_cross_entropy_sum(outputs["logits"], batch["actions"], batch["action_lengths"],
                                    weights.label_smoothing)


def smoothed_targets(actions, label_smoothing):
    """(1 - eps) * one_hot + eps / K."""
    return tf.one_hot(actions, NUM_ACTIONS) * (1.0 - label_smoothing) + label_smoothing / NUM_ACTIONS


def masked_cross_entropy_sum(logits, actions, action_lengths, label_smoothing=0.0):
    """Sum of per-step cross-entropies over valid steps, and the step count.

    Dividing the sum by the (global) count gives the loss averaged over all
    valid action steps of the batch; the trainer all-reduces the count so a
    step on N replicas equals one on a single device.
    """
    mask = tf.sequence_mask(action_lengths, tf.shape(actions)[1], dtype=logits.dtype)
    # Keras's loss smooths the one-hot targets as the paper does: (1 - eps) * one_hot + eps / K.
    loss = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=label_smoothing, reduction="sum")
    total = loss(tf.one_hot(tf.cast(actions, tf.int32), NUM_ACTIONS), logits, sample_weight=mask)
    return tf.cast(total, logits.dtype), tf.reduce_sum(mask)


def masked_cross_entropy(logits, actions, action_lengths, label_smoothing=0.0):
    total, count = masked_cross_entropy_sum(logits, actions, action_lengths, label_smoothing)
    return total / tf.maximum(count, 1.0)


def lattice_cross_entropy_sum(lattice_logits, clip_to_text, clip_lengths, text_lengths, label_smoothing=0.0,
                              known_clips=None):
    """Cross-entropy of the oracle's action at *every* lattice node (not only on
    the ground-truth path), summed, and the node count: a decoder that is
    searched over the whole lattice must also score the states off the path.
    ``known_clips`` [B, T_v] (optional): only the rows of the clips whose
    assignment is known count."""
    max_clips, max_texts = tf.shape(lattice_logits)[1], tf.shape(lattice_logits)[2]
    labels = node_labels(clip_to_text[:, :max_clips], max_texts)
    mask = tf.cast(node_mask(clip_lengths, text_lengths, max_clips, max_texts), lattice_logits.dtype)
    if known_clips is not None:
        mask *= tf.cast(tf.not_equal(known_clips[:, :max_clips], 0), mask.dtype)[:, :, None]
    per_node = -tf.reduce_sum(smoothed_targets(labels, label_smoothing) * tf.nn.log_softmax(lattice_logits), axis=-1)
    return tf.reduce_sum(per_node * mask), tf.reduce_sum(mask)


def path_scores(scores, actions, action_lengths, clip_lengths, text_lengths):
    """The total score [B] of each row's action sequence under lattice ``scores``
    [B, T_v, T_s, 3]: each action scored at its node (forced ones at the clamped cursors)."""
    actions = tf.cast(actions, tf.int32)
    clips, texts = path_nodes(actions, clip_lengths, text_lengths)
    taken = tf.gather_nd(tf.cast(scores, tf.float32), tf.stack([clips, texts, tf.maximum(actions, 0)], axis=-1),
                         batch_dims=1)
    return tf.reduce_sum(tf.where(tf.sequence_mask(action_lengths, tf.shape(actions)[1]), taken, 0.0), axis=1)


def crf_negative_log_likelihood_sum(scores, actions, action_lengths, clip_lengths, text_lengths,
                                    clip_to_text=None, known_clips=None, pseudo_weight=None):
    """The lattice CRF's loss: -log p(gold sequence) = log Z - score(gold), the
    partition over every complete action sequence of the lattice ``best_path``
    searches (dp/lattice.py), summed over the batch, and the count of
    actions (so that its mean is per action, as the cross-entropies' are).

    Its gradient by ``scores`` is the posterior marginals minus the gold path's
    indicators: exact decoding (Viterbi over the same scores) is what it trains.

    The rows of pseudo-labelled videos (``pseudo_weight`` [B] > 0; 0: labelled)
    have the partial-label loss instead, times their weight: -log p(the paths that
    agree with the ``known_clips``' assignments) = log Z - log Z(through them),
    the forward algorithm twice (``through_known_clips``).
    """
    log_z = log_partition(scores, clip_lengths, text_lengths)
    per_row = log_z - path_scores(scores, actions, action_lengths, clip_lengths, text_lengths)
    if pseudo_weight is not None:
        pseudo = pseudo_weight > 0

        def with_partial_labels():
            through = log_partition(through_known_clips(scores, clip_to_text, known_clips), clip_lengths,
                                    text_lengths)
            return tf.where(pseudo, pseudo_weight * (log_z - through), per_row)

        per_row = tf.cond(tf.reduce_any(pseudo), with_partial_labels, lambda: per_row)
    return tf.reduce_sum(per_row), tf.cast(tf.reduce_sum(action_lengths), tf.float32)


def contrastive_sum(similarity, clip_to_text, clip_lengths, text_lengths, temperature=0.1, known_clips=None):
    """InfoNCE within each video on cosine similarities [B, T_v, T_s], summed,
    and the count of terms.

    Clip -> text: each matched clip against all texts of its video. Text ->
    clip: each text with clips against all clips of its video, its own clips
    all counting as positives. Unmatched clips take part only as negatives.
    ``known_clips`` [B, T_v] (optional): the clips whose assignment is unknown
    take no part at all.
    """
    max_clips, max_texts = tf.shape(similarity)[1], tf.shape(similarity)[2]
    c2t = tf.cast(clip_to_text[:, :max_clips], tf.int32)
    clip_valid = tf.sequence_mask(clip_lengths, max_clips)
    if known_clips is not None:
        clip_valid &= tf.not_equal(known_clips[:, :max_clips], 0)
    text_valid = tf.sequence_mask(text_lengths, max_texts)
    logits = similarity / temperature
    very_negative = tf.constant(-1e9, logits.dtype)
    positive = tf.equal(c2t[:, :, None], tf.range(max_texts)[None, None, :]) & clip_valid[:, :, None]

    to_text = tf.where(text_valid[:, None, :], logits, very_negative)
    matched = clip_valid & (c2t >= 0)
    clip_terms = tf.reduce_logsumexp(to_text, axis=2) - tf.reduce_sum(tf.where(positive, logits, 0.0), axis=2)
    clip_sum = tf.reduce_sum(tf.where(matched, clip_terms, 0.0))

    to_clip = tf.where(clip_valid[:, :, None], logits, very_negative)
    has_clips = tf.reduce_any(positive, axis=1)
    text_terms = (tf.reduce_logsumexp(to_clip, axis=1)
                  - tf.reduce_logsumexp(tf.where(positive, logits, very_negative), axis=1))
    text_sum = tf.reduce_sum(tf.where(has_clips, text_terms, 0.0))
    count = tf.reduce_sum(tf.cast(matched, logits.dtype)) + tf.reduce_sum(tf.cast(has_clips, logits.dtype))
    return clip_sum + text_sum, count
