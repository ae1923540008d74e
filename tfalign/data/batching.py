"""The tf.data input pipeline: episodes -> padded, reversed batches.

The network reads each sequence last-to-first, so that its recurrent state
at a position summarizes everything that remains from there on. The batches
therefore hold every sequence *reversed* and left-aligned: position 0 is the
last clip (text), position ``length - 1`` the first; padding follows.

A batch is a dict:

| key | shape | |
|---|---|---|
| clip_features | [B, T_v, D_v] float32 | reversed |
| text_features | [B, T_s, D_s] float32 | reversed |
| clip_lengths, text_lengths | [B] int32 | |
| actions | [B, L] int32 | oracle actions in natural order, padded with 0 |
| action_lengths | [B] int32 | T_v + T_s |
| clip_to_text | [B, T_v] int32 | ground truth in natural order (-1 unmatched; padding: any value) |
| index | [B] int32 | position of the episode in the input list |
| fold | [B] int32 | the cross-fitting fold of the video it comes from (data/classical.py); -1: none |
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfalign.data.oracle import alignment_to_actions


def to_natural(sequence, lengths):
    """Reversed, left-aligned [B, T, D] tensors -> natural order (padding stays after);
    its own inverse, so it also reverses natural-order requests for the network."""
    return tf.reverse_sequence(sequence, tf.cast(lengths, tf.int32), seq_axis=1, batch_axis=0)


def network_inputs(request) -> dict:
    """A padded natural-order request (``pad_batch``, what ``align`` takes) as the network
    reads it: each sequence reversed, float32 features, int32 lengths."""
    clip_lengths = tf.cast(tf.convert_to_tensor(request["clip_lengths"]), tf.int32)
    text_lengths = tf.cast(tf.convert_to_tensor(request["text_lengths"]), tf.int32)
    return {"clip_features": to_natural(tf.convert_to_tensor(request["clip_features"], tf.float32), clip_lengths),
            "text_features": to_natural(tf.convert_to_tensor(request["text_features"], tf.float32), text_lengths),
            "clip_lengths": clip_lengths, "text_lengths": text_lengths}


def episode_arrays(episode, index: int = 0, fold: int = -1, pseudo_weight: float = 1.0) -> dict:
    actions = alignment_to_actions(episode.clip_to_text, episode.num_texts)
    return {
        "clip_features": episode.clip_features[::-1].astype(np.float32),
        "text_features": episode.text_features[::-1].astype(np.float32),
        "clip_lengths": np.int32(episode.num_clips),
        "text_lengths": np.int32(episode.num_texts),
        "actions": actions.astype(np.int32),
        "action_lengths": np.int32(len(actions)),
        "clip_to_text": episode.clip_to_text.astype(np.int32),
        # 1: the clip's assignment is the truth; 0: a guess (a pseudo-labelled video's).
        "known_clips": (np.ones(episode.num_clips, np.int32) if episode.known_clips is None
                        else episode.known_clips.astype(np.int32)),
        # The weight of a pseudo-labelled video's loss (its known_clips given); 0: a labelled video.
        "pseudo_weight": np.float32(pseudo_weight if episode.known_clips is not None else 0.0),
        "index": np.int32(index),
        "fold": np.int32(fold),
    }


def element_spec(clip_dim: int, text_dim: int) -> dict:
    return {
        "clip_features": tf.TensorSpec([None, clip_dim], tf.float32),
        "text_features": tf.TensorSpec([None, text_dim], tf.float32),
        "clip_lengths": tf.TensorSpec([], tf.int32),
        "text_lengths": tf.TensorSpec([], tf.int32),
        "actions": tf.TensorSpec([None], tf.int32),
        "action_lengths": tf.TensorSpec([], tf.int32),
        "clip_to_text": tf.TensorSpec([None], tf.int32),
        "known_clips": tf.TensorSpec([None], tf.int32),
        "pseudo_weight": tf.TensorSpec([], tf.float32),
        "index": tf.TensorSpec([], tf.int32),
        "fold": tf.TensorSpec([], tf.int32),
    }


def make_dataset(episodes, batch_size: int, shuffle: bool = False, seed: int = 0, bucket: bool = False,
                 drop_remainder: bool = False, repeat: bool = False, folds=None,
                 batch_nodes: int = 0, batch_actions: int = 0, pseudo_weight: float = 1.0) -> tf.data.Dataset:
    """Batches of padded, reversed episodes.

    ``bucket`` groups episodes of similar action counts (less padding);
    ``batch_nodes`` and ``batch_actions`` (with ``bucket``; 0: none) bound a
    batch's padded lattice (batch x clips x texts) and its padded sequences
    (batch x (clips + texts)): long videos come in smaller batches (``bucket_plan``);
    ``shuffle`` reshuffles every epoch, deterministically under ``seed``;
    ``folds``: each episode's cross-fitting fold (default: none, -1);
    ``pseudo_weight``: the loss weight of the pseudo-labelled episodes (``known_clips`` given).
    """
    episodes = list(episodes)
    if not episodes:
        raise ValueError("make_dataset: no episodes")
    folds = [-1] * len(episodes) if folds is None else list(folds)
    arrays = [episode_arrays(e, i, fold, pseudo_weight) for i, (e, fold) in enumerate(zip(episodes, folds))]
    clip_dim, text_dim = arrays[0]["clip_features"].shape[1], arrays[0]["text_features"].shape[1]
    dataset = element_dataset(arrays, element_spec(clip_dim, text_dim))
    if shuffle:
        dataset = dataset.shuffle(len(arrays), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    boundaries, sizes = bucket_plan(episodes, batch_size, batch_nodes, batch_actions) if bucket else ([], [batch_size])
    if boundaries:
        dataset = dataset.bucket_by_sequence_length(
            lambda x: x["action_lengths"], bucket_boundaries=boundaries, bucket_batch_sizes=sizes,
            drop_remainder=drop_remainder)
    else:
        dataset = dataset.padded_batch(sizes[0], drop_remainder=drop_remainder)
    return dataset.prefetch(tf.data.AUTOTUNE)


def element_dataset(arrays: list[dict], spec: dict) -> tf.data.Dataset:
    """The episodes' arrays as a dataset of tensors, one element each, in order.

    Not ``Dataset.from_generator``: TensorFlow keeps every generator it was
    given, and the arrays it closes over, until the process ends. A run that
    draws new crops each epoch grew by about 70 MB an epoch that way.
    Variable-length fields travel as ragged rows and come out dense.
    """
    columns = {}
    for key, field in spec.items():
        values = [a[key] for a in arrays]
        if field.shape.rank == 0:
            columns[key] = tf.constant(np.asarray(values), field.dtype)
        else:
            columns[key] = tf.RaggedTensor.from_row_lengths(
                tf.constant(np.concatenate(values), field.dtype), [len(v) for v in values])
    dense = lambda value: value.to_tensor() if isinstance(value, tf.RaggedTensor) else value
    dataset = tf.data.Dataset.from_tensor_slices(columns)
    return dataset.map(lambda element: {k: tf.ensure_shape(dense(v), spec[k].shape) for k, v in element.items()})


def bucket_boundaries(action_lengths) -> list[int]:
    """Four length buckets at the quartiles of the action counts."""
    lengths = sorted(action_lengths)
    return sorted({lengths[int(q * (len(lengths) - 1))] + 1 for q in (0.25, 0.5, 0.75)})


def bucket_plan(episodes, batch_size: int, batch_nodes: int = 0,
                batch_actions: int = 0) -> tuple[list[int], list[int]]:
    """Where ``make_dataset(..., bucket=True)`` cuts its length buckets and each one's batch size.

    Without a budget: the quartiles of the action counts, ``batch_size`` each
    (no buckets for a single batch's worth). With budgets, a batch stays within
    them: ``batch_nodes`` bounds its padded lattice (rows x the bucket's most
    clips x its most texts: the lattice classifier's and the CRF's memory),
    ``batch_actions`` its padded sequences (rows x the bucket's longest clips
    + texts: the encoders' and stacks'; a token budget). The buckets are cut
    further where the budgets' batch size halves (long videos apart from short
    ones), and each gets the largest size the budgets allow (at least 1, at
    most ``batch_size``). Budgets that hold every batch whole change nothing:
    the same buckets, the same batches.

    Args:
        episodes: what is batched (``num_clips``, ``num_texts``, ``num_actions``).
        batch_size: the most episodes a batch holds.
        batch_nodes: the budget of padded lattice nodes a batch, 0 for none.
        batch_actions: the budget of padded clips + texts a batch, 0 for none.

    Returns:
        (boundaries, batch sizes): as ``tf.data.Dataset.bucket_by_sequence_length``
        takes them (a bucket holds action counts below its boundary); no boundaries
        means one bucket.

    Example:
    >>> bucket_plan(episodes, 32, batch_nodes=256_000)  # doctest: +SKIP
    ([44, 74, 115, 200, 338], [32, 32, 32, 32, 12, 9])
    """
    lengths = [e.num_actions for e in episodes]
    boundaries = bucket_boundaries(lengths) if len(episodes) > batch_size else []
    if not (batch_nodes or batch_actions):
        return boundaries, [batch_size] * (len(boundaries) + 1)

    def fits(clips, texts):  # the most rows of this padded size the budgets allow
        rows = batch_size
        if batch_nodes:
            rows = min(rows, batch_nodes // max(clips * texts, 1))
        if batch_actions:
            rows = min(rows, batch_actions // max(clips + texts, 1))
        return max(1, rows)

    # Going up in length, a cut wherever the budget's size (a power of two) falls below all before it.
    level = None
    for episode in sorted(episodes, key=lambda e: e.num_actions):
        own = fits(episode.num_clips, episode.num_texts).bit_length()
        if level is not None and own < level:
            boundaries.append(episode.num_actions)
        level = own if level is None else min(level, own)
    boundaries = sorted(set(boundaries))
    edges = [0, *boundaries, float("inf")]
    sizes = []
    for low, high in zip(edges, edges[1:]):
        members = [e for e in episodes if low <= e.num_actions < high]
        sizes.append(fits(max(e.num_clips for e in members), max(e.num_texts for e in members)) if members
                     else batch_size)
    if len(sizes) == 1:  # one bucket: no boundaries
        return [], sizes
    return boundaries, sizes


def count_batches(episodes, batch_size: int, bucket: bool = False, batch_nodes: int = 0,
                  batch_actions: int = 0) -> int:
    """How many batches ``make_dataset`` yields for these episodes (no drop):
    with buckets, each bucket ends in its own partial batch."""
    episodes = list(episodes)
    boundaries, sizes = (bucket_plan(episodes, batch_size, batch_nodes, batch_actions) if bucket
                         else ([], [batch_size]))
    edges = [0, *boundaries, float("inf")]
    counts = [sum(low <= e.num_actions < high for e in episodes) for low, high in zip(edges, edges[1:])]
    return sum(-(-count // size) for count, size in zip(counts, sizes))


def pad_batch(clips: list, texts: list) -> dict:
    """Videos' features in *natural* order, zero-padded into one request (what
    ``AlignerTask.align`` and the SavedModel's signatures take): no labels,
    no oracle.

    Args:
        clips: one [T_v, D_v] array per video.
        texts: one [T_s, D_s] array per video.

    Returns:
        {"clip_features" [B, max T_v, D_v], "text_features" [B, max T_s, D_s]
        float32, "clip_lengths", "text_lengths" [B] int32}.
    """
    def pad(arrays):
        lengths = np.asarray([len(a) for a in arrays], np.int32)
        padded = np.zeros((len(arrays), int(lengths.max()), arrays[0].shape[1]), np.float32)
        for row, array in enumerate(arrays):
            padded[row, : len(array)] = array
        return padded, lengths

    clip_features, clip_lengths = pad(clips)
    text_features, text_lengths = pad(texts)
    return {"clip_features": clip_features, "text_features": text_features, "clip_lengths": clip_lengths,
            "text_lengths": text_lengths}


REQUEST_VIDEOS = 16  # videos a request, at most: the one batching of prediction (Aligner, validation, push)


def padded_requests(clips: list, texts: list, batch_size: int = REQUEST_VIDEOS):
    """Videos in padded requests of at most ``batch_size`` (``pad_batch``), in order.

    Args:
        clips: one [T_v, D_v] array per video.
        texts: one [T_s, D_s] array per video.
        batch_size: videos a request, at most.

    Yields:
        (the index of the request's first video, the request); row r of its outputs
        is video first + r.
    """
    for start in range(0, len(clips), batch_size):
        yield start, pad_batch(clips[start:start + batch_size], texts[start:start + batch_size])


def episodes_request(episodes) -> dict:
    """``pad_batch`` of the episodes' features (their labels are not read)."""
    return pad_batch([e.clip_features for e in episodes], [e.text_features for e in episodes])
