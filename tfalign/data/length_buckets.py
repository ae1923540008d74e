"""Geometric length buckets: what is XLA-compiled is compiled once per padded shape,
so the time axes are padded to a few lengths first.

The greedy decoder and, at inference, the stacks' LSTM loops are compiled per
bucket; padding follows the valid positions (sequences are reversed and
left-aligned), so it changes no valid output. TF Serving's warm-up requests
(serving/warmup.py) cover the buckets up to a declared size.
"""

import tensorflow as tf

# The greedy decoder is XLA-compiled once per padded shape; the time axes are
# padded to geometric buckets so that few shapes exist: multiples of 64 up to
# 512, then four a doubling (640, 768, 896, 1024, 1280, ...), at most 25% padding.
SMALLEST_BUCKET, LINEAR_UP_TO, LARGEST_BUCKET = 64, 512, 1 << 24


def _next_bucket(size: int) -> int:
    return size + (SMALLEST_BUCKET if size < LINEAR_UP_TO else 1 << (size.bit_length() - 3))


def bucket_sizes(up_to: int) -> list[int]:
    """The padded lengths, ascending, up to the first that holds ``up_to``.

    Args:
        up_to: the longest sequence the buckets must hold (>= 1).

    Returns:
        The bucket sizes: 64, 128, ..., 512, 640, 768, ... up to ``bucket_size(up_to)``.

    Example:
        >>> bucket_sizes(700)
        [64, 128, 192, 256, 320, 384, 448, 512, 640, 768]
    """
    sizes = [SMALLEST_BUCKET]
    while sizes[-1] < up_to:
        sizes.append(_next_bucket(sizes[-1]))
    return sizes


def bucket_size(length: int) -> int:
    """The padded length of a sequence of ``length`` (the smallest bucket that holds it)."""
    return bucket_sizes(length)[-1]


_LADDER = bucket_sizes(LARGEST_BUCKET)


def pad_to_bucket(features, axis: int = 1):
    """``features`` padded with zeros along ``axis`` (default: T of [B, T, D]) to
    ``bucket_size`` of its length (known or not)."""
    return _pad_to_ladder(features, axis, _LADDER)


def _pad_to_ladder(features, axis, ladder):
    """``features`` padded with zeros along ``axis`` to the first of ``ladder`` that holds it."""
    features = tf.convert_to_tensor(features)
    size = tf.shape(features)[axis]
    steps = tf.constant(ladder, tf.int32)
    index = tf.searchsorted(steps, tf.reshape(size, [1]), side="left")[0]
    target = tf.gather(steps, tf.minimum(index, len(ladder) - 1))
    paddings = [[0, 0]] * features.shape.rank
    paddings[axis] = [0, tf.maximum(target - size, 0)]
    return tf.pad(features, paddings)


def batch_buckets(up_to: int) -> list[int]:
    """The padded batch sizes, powers of two, up to the first that holds ``up_to``: [1, 2, 4, ...]."""
    sizes = [1]
    while sizes[-1] < up_to:
        sizes.append(sizes[-1] * 2)
    return sizes


_BATCH_LADDER = batch_buckets(LARGEST_BUCKET)


def pad_batch_to_bucket(features, axis: int = 0):
    """``features`` padded with zeros along its batch ``axis`` to the next power of two."""
    return _pad_to_ladder(features, axis, _BATCH_LADDER)


def pad_request_to_buckets(inputs: dict) -> dict:
    """A request's features and lengths padded to the buckets XLA compiled for: the
    time axes to ``bucket_size``, the videos to a power of two. A padding video is one
    zero clip and one zero text long (a valid video: no decoder meets an empty one);
    the caller keeps the first rows of the outputs."""
    clips = pad_batch_to_bucket(pad_to_bucket(inputs["clip_features"]))
    texts = pad_batch_to_bucket(pad_to_bucket(inputs["text_features"]))
    extra = tf.shape(clips)[0] - tf.shape(inputs["clip_lengths"])[0]
    return {"clip_features": clips, "text_features": texts,
            **{key: tf.concat([inputs[key], tf.ones([extra], inputs[key].dtype)], 0)
               for key in ("clip_lengths", "text_lengths")}}
