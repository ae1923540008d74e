"""What the decoder's classifier reads besides the stack tops: position
features of the two cursors and a window of joint-embedding similarities
around them (docs/network.md, docs/recipe.md). Pure functions of tensors."""

import tensorflow as tf

POSITIONS = ("paper", "normalized")
NUM_POSITION_FEATURES = {"paper": 10, "normalized": 2}
# The similarity window read at node (i, j): clips i-1..i+2 against texts j-1..j+2
# (consecutive offsets: the window is a 4 x 4 patch of the padded maps).
WINDOW_OFFSETS = (-1, 0, 1, 2)
NUM_SIMILARITY_FEATURES = len(WINDOW_OFFSETS) ** 2


def position_features(clip_cursor, text_cursor, clip_lengths, text_lengths):
    """The 10 position values of the paper's decoder (docs/network.md)."""
    a = tf.cast(clip_cursor + 1, tf.float32)  # remaining clips, the top included
    c = tf.cast(text_cursor + 1, tf.float32)
    big_v = tf.cast(clip_lengths + 1, tf.float32)
    big_s = tf.cast(text_lengths + 1, tf.float32)
    return tf.stack([a, c, a / big_v, c / big_s, big_v / a, big_s / c, a / c, c / a,
                     (big_v - a) / (big_s - c), (big_s - c) / (big_v - a)], axis=-1)


def normalized_position_features(clip_cursor, text_cursor, clip_lengths, text_lengths):
    """The remaining fractions a/V and c/S: bounded, whatever the video's length."""
    a = tf.cast(clip_cursor + 1, tf.float32)
    c = tf.cast(text_cursor + 1, tf.float32)
    return tf.stack([a / tf.cast(clip_lengths + 1, tf.float32), c / tf.cast(text_lengths + 1, tf.float32)], axis=-1)


POSITION_FUNCTIONS = {"paper": position_features, "normalized": normalized_position_features}


def padded_similarity_maps(similarities):
    """{source: [B, T_v, T_s]} cosine similarities (natural order) -> [B, T_v + 3,
    T_s + 3, C], a channel per source in sorted order, zero-padded so that the
    window of node (i, j) is rows i..i+3 and columns j..j+3 (padding positions
    must hold 0, as the joint embedding gives them)."""
    low, high = -min(WINDOW_OFFSETS), max(WINDOW_OFFSETS)
    maps = tf.stack([similarities[k] for k in sorted(similarities)], axis=-1)
    return tf.pad(maps, [[0, 0], [low, high], [low, high], [0, 0]])


# The window's (row, column) offsets in the padded maps, a-major: [16, 2].
_WINDOW_GRID = [[a, b] for a in range(len(WINDOW_OFFSETS)) for b in range(len(WINDOW_OFFSETS))]


def window_features(padded_maps, rows, columns):
    """The similarity window at node (rows, columns) [B] -> [B, C * 16]: sim(i + a,
    j + b) of each channel, for a, b in WINDOW_OFFSETS (channel-major, then a, then b)."""
    indices = tf.stack([rows, columns], axis=-1)[:, None, :] + tf.constant(_WINDOW_GRID, rows.dtype)[None]
    values = tf.gather_nd(padded_maps, indices, batch_dims=1)  # [B, 16, C]
    return tf.reshape(tf.transpose(values, [0, 2, 1]), [tf.shape(values)[0], -1])


