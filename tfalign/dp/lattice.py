"""The (clip, text) lattice of a decoder whose scores depend only on the cursors.

Node (i, j) is the state "i clips and j texts consumed": the top clip is clip i
and the top text is text j (natural order). ``POP_CLIP`` and ``MATCH`` move to
(i + 1, j), ``POP_TEXT`` to (i, j + 1); a path ends when it consumes the last
clip (i = T_v) or the last text (j = T_s), as greedy decoding does. When the
classifier sees nothing but the two cursors (stack tops, position and
similarity features; no action or matched history), every node's action
probabilities can be computed at once, and the most probable action sequence
is found exactly by dynamic programming, as DTW finds its path.

Everything here is batched TensorFlow, so the SavedModel runs it in-graph.
"""

import tensorflow as tf

from tfalign.data.oracle import MATCH, POP_CLIP, POP_TEXT, alignment_from_actions

_NEG = -1e9  # "unreachable": finite, so that differences of scores stay defined
# running_max's block of columns: 32 is about the square root of a film's texts.
RUNNING_MAX_BLOCK = 32


def node_labels(clip_to_text, num_texts):
    """The oracle's action at every node: [B, T_v, T_s] int32.

    MATCH if clip i belongs to text j; POP_TEXT if it belongs to a later text;
    POP_CLIP if it is unmatched or its text was already popped (dropping it is
    then the best that remains). On the ground-truth path these are exactly
    the oracle's actions.
    """
    c = tf.cast(clip_to_text, tf.int32)[:, :, None]
    j = tf.range(num_texts, dtype=tf.int32)[None, None, :]
    return tf.where(tf.equal(c, j), MATCH, tf.where(c > j, POP_TEXT, POP_CLIP))


def node_mask(clip_lengths, text_lengths, max_clips, max_texts):
    """[B, T_v, T_s] bool: the node exists (i < T_v and j < T_s of its episode)."""
    clips = tf.sequence_mask(clip_lengths, max_clips)
    texts = tf.sequence_mask(text_lengths, max_texts)
    return clips[:, :, None] & texts[:, None, :]


def through_known_clips(scores, clip_to_text, known_clips):
    """``scores`` [B, T_v, T_s, 3] with every move that contradicts a known clip's
    assignment made unreachable: at row i of a known clip, MATCH only at its own
    text's column (none if it is unmatched) and POP_CLIP only if it is unmatched
    (its forced tail too). The log-partition of the result sums over the paths
    that agree with every known clip (the partial-label CRF, model/objective.py).

    Args:
        scores: [B, T_v, T_s, 3] the lattice's potentials (natural order).
        clip_to_text: [B, >= T_v] each clip's text (-1 unmatched), read where known.
        known_clips: [B, >= T_v] nonzero where a clip's assignment is known.
    """
    max_clips, max_texts = tf.shape(scores)[1], tf.shape(scores)[2]
    text = tf.cast(clip_to_text, tf.int32)[:, :max_clips, None]
    free = tf.equal(tf.cast(known_clips, tf.int32)[:, :max_clips, None], 0)
    column = tf.range(max_texts, dtype=tf.int32)[None, None, :]
    allowed = {POP_CLIP: free | (text < 0), MATCH: free | tf.equal(text, column), POP_TEXT: tf.constant(True)}
    nodes = tf.shape(scores)[:3]
    allowed = tf.stack([tf.broadcast_to(allowed[a], nodes) for a in sorted(allowed)], axis=-1)
    return tf.where(allowed, scores, tf.constant(_NEG, scores.dtype))


def best_path(log_probs, clip_lengths, text_lengths):
    """The most probable complete action sequence under per-node log-probabilities.

    A complete sequence has T_v + T_s actions, as the oracle's do: once one
    stack is empty the rest of the other is popped, and those forced actions
    are scored too, at the nodes the decoder's clamped cursors point at (the
    last text for leftover clips, the last clip for leftover texts), as
    teacher forcing trains them. Without them, paths would differ in length,
    and with weak evidence a short path (pop every text at once, leave every
    clip unmatched) would win for having fewer factors.

    Args:
        log_probs: [B, T_v, T_s, 3] log-probabilities of the actions at each node.
        clip_lengths, text_lengths: [B] the episodes' true sizes.

    Returns a dict: ``actions`` [B, T_v + T_s] (-1 after the end), ``num_actions``
    [B] (the actions before a stack ran empty, as greedy decoding returns),
    ``clip_to_text`` [B, T_v] (-1 unmatched) and ``score`` [B], the complete
    sequence's total log-probability.

    Row by row: E[j] is the best score of entering row i at column j (clip i-1
    consumed at text j); within a row a run of POP_TEXTs leads from column k to
    column j, so the row's scores are S[j] = max_{k <= j} E[k] + P[j] - P[k]
    with P the running sum of the row's POP_TEXT log-probabilities. The row's
    E[k] - P[k] are kept: the backtrack finds the maximizing k where the path is.
    """
    clip_lengths, text_lengths = tf.cast(clip_lengths, tf.int32), tf.cast(text_lengths, tf.int32)
    entries, end_scores, final_enter = _forward(log_probs, clip_lengths, text_lengths)
    # Either the last text is popped in some row r (r clips consumed), or the
    # last clip is consumed at some column j.
    best_row = tf.argmax(end_scores, axis=1, output_type=tf.int32)
    by_text, by_clip = tf.reduce_max(end_scores, axis=1), tf.reduce_max(final_enter, axis=1)
    ends_by_text = by_text >= by_clip
    consumed = tf.where(ends_by_text, best_row, clip_lengths)  # clips that received an action
    last_column = tf.where(ends_by_text,
                           _entry_column(tf.gather(entries, tf.maximum(best_row, 0), batch_dims=1), text_lengths),
                           tf.argmax(final_enter, axis=1, output_type=tf.int32))
    clip_column = _backtrack(entries, consumed, last_column)
    num_actions = consumed + tf.where(ends_by_text, text_lengths, last_column)
    actions = _actions(log_probs, clip_column, consumed, num_actions)
    clip_to_text = alignment_from_actions(actions, num_actions, clip_lengths, text_lengths, tf.shape(log_probs)[1])
    return {"actions": actions, "num_actions": num_actions, "clip_to_text": clip_to_text,
            "score": tf.maximum(by_text, by_clip)}


def _forward(log_probs, clip_lengths, text_lengths):
    """The row-by-row dynamic programme: for every row the scores of entering it at
    each column less the row's running POP_TEXT sum there (``entries`` [B, T_v, T_s + 1]:
    the best entry column of column j is the first maximum of its first j + 1), the best
    score of ending by popping the last text in that row (``end_scores`` [B, T_v]), and
    of ending by consuming the last clip at each column (``final_enter`` [B, T_s + 1])."""
    batch, max_clips, max_texts = tf.shape(log_probs)[0], tf.shape(log_probs)[1], tf.shape(log_probs)[2]
    columns = tf.range(max_texts + 1)
    text_ok = columns[None, :] < text_lengths[:, None]  # [B, T_s + 1]: a node column
    at_end = tf.equal(columns[None, :], text_lengths[:, None])  # the column after the last text
    pad = [[0, 0], [0, 1]]
    # The forced tails: leftover clips r.. popped at the last text; leftover texts j.. at the last clip.
    clip_valid = tf.sequence_mask(clip_lengths, max_clips)
    last_text = tf.gather(log_probs[..., POP_CLIP], tf.maximum(text_lengths - 1, 0), axis=2, batch_dims=1)
    clip_tail = tf.cumsum(tf.where(clip_valid, last_text, 0.0), axis=1, reverse=True)  # [B, T_v]: rows r..
    last_clip = tf.gather(log_probs[..., POP_TEXT], tf.maximum(clip_lengths - 1, 0), axis=1, batch_dims=1)
    text_tail = tf.pad(tf.cumsum(tf.where(tf.sequence_mask(text_lengths, max_texts), last_clip, 0.0), axis=1,
                                 reverse=True), pad)  # [B, T_s + 1]: texts j..

    # What each row reads, for all rows at once (fewer ops in the sequential loop):
    # P, the running sums of the row's POP_TEXT log-probabilities, and the best
    # move to the next row (MATCH or POP_CLIP) at each column.
    pad3 = [[0, 0], [0, 0], [0, 1]]
    prefixes = tf.cumsum(tf.where(text_ok[:, None, :], tf.pad(log_probs[..., POP_TEXT], pad3), 0.0), axis=2,
                         exclusive=True)  # [B, T_v, T_s + 1]
    advances = tf.pad(tf.maximum(log_probs[..., MATCH], log_probs[..., POP_CLIP]), pad3)

    def row(i, enter, entries, end_scores, final_enter):
        prefix = prefixes[:, i]  # P[j], j = 0..T_s
        entry = enter - prefix
        scores = tf.where(text_ok | at_end, prefix + running_max(entry), _NEG)  # max over k <= j of E[k] - P[k]
        ended = tf.reduce_max(tf.where(at_end, scores, _NEG), axis=1) + clip_tail[:, i]
        end_scores = end_scores.write(i, tf.where(i < clip_lengths, ended, _NEG))
        next_enter = tf.where(text_ok, scores + advances[:, i], _NEG)
        final_enter = tf.where((i == clip_lengths - 1)[:, None], next_enter + text_tail, final_enter)
        return i + 1, next_enter, entries.write(i, entry), end_scores, final_enter

    start = tf.where(tf.equal(columns, 0), 0.0, _NEG)[None, :] * tf.ones([batch, 1])
    _, _, entries, end_scores, final_enter = tf.while_loop(
        lambda i, *_: i < max_clips, row,
        (0, start, tf.TensorArray(tf.float32, size=max_clips), tf.TensorArray(tf.float32, size=max_clips),
         tf.fill([batch, max_texts + 1], _NEG)))
    return tf.transpose(entries.stack(), [1, 0, 2]), tf.transpose(end_scores.stack()), final_enter


def log_partition_table(scores, clip_lengths, text_lengths):
    """The log-partition of every node's completions: ``table[:, i, j]`` is the
    log-sum-exp, over every way of completing a path from node (i, j), of the sum
    of its actions' scores; ``table[:, 0, 0]`` is log Z, the whole lattice's.
    The paths are those ``best_path`` searches (the same moves, the same forced
    tails): this is its dynamic programme with log-sum-exp for the maximum, run
    from the last row up (the backward algorithm).

    Args:
        scores: [B, T_v, T_s, 3] unnormalized potentials of the actions at each node.
        clip_lengths, text_lengths: [B] the episodes' true sizes.

    Returns:
        [B, T_v + 1, T_s + 1] float32: row i = T_v (every clip consumed) holds the
        forced text tails, column j = T_s (every text popped) the forced clip
        tails; entries beyond an episode's sizes are meaningless.

    Within row i, a run of POP_TEXTs leads from column j to k, where the path
    leaves the row by consuming clip i (or ends, k = T_s):
    table[i, j] = logsumexp_{k >= j}(P[k] + A[k]) - P[j], with P the running sum
    of the row's POP_TEXT scores and A[k] the log-partition of the ways on from
    column k (consume clip i there, or the forced clip tail at k = T_s): a
    reverse cumulative log-sum-exp.
    """
    clip_lengths, text_lengths = tf.cast(clip_lengths, tf.int32), tf.cast(text_lengths, tf.int32)
    scores = tf.cast(scores, tf.float32)
    max_clips, max_texts = tf.shape(scores)[1], tf.shape(scores)[2]
    columns = tf.range(max_texts + 1)
    text_ok = columns[None, :] < text_lengths[:, None]  # [B, T_s + 1]
    at_end = tf.equal(columns[None, :], text_lengths[:, None])
    clip_tail, text_tail = _forced_tails(scores, clip_lengths, text_lengths)
    prefixes, leave = _row_sums(scores, text_ok)
    leave_rows, prefix_rows, clip_tail_rows = (_by_row(t, max_clips) for t in (leave, prefixes, clip_tail[:, :, None]))

    def row(i, below, rows):
        below = tf.where((i == clip_lengths - 1)[:, None], text_tail, below)  # the last clip: the text tail
        on = tf.where(text_ok, leave_rows.read(i) + below, tf.where(at_end, clip_tail_rows.read(i), _NEG))
        prefix = prefix_rows.read(i)
        table_row = tf.math.cumulative_logsumexp(prefix + on, axis=1, reverse=True) - prefix
        table_row = tf.where(text_ok | at_end, table_row, _NEG)
        return i - 1, table_row, rows.write(i, table_row)

    _, _, rows = tf.while_loop(lambda i, *_: i >= 0, row,
                               (max_clips - 1, tf.fill(tf.shape(text_tail), _NEG),
                                tf.TensorArray(tf.float32, size=max_clips)))
    table = tf.concat([tf.transpose(rows.stack(), [1, 0, 2]), text_tail[:, None, :]], axis=1)
    # Row T_v of each episode (below its last clip) is its text tail.
    last_row = tf.equal(tf.range(max_clips + 1)[None, :, None], clip_lengths[:, None, None])
    return tf.where(last_row, text_tail[:, None, :], table)


def log_partition(scores, clip_lengths, text_lengths):
    """log Z [B]: the log-sum-exp over every complete action sequence of the sum of
    its actions' scores (``log_partition_table`` at node (0, 0)). Its gradient by
    ``scores`` is the posterior marginal of every (node, action)."""
    return log_partition_table(scores, clip_lengths, text_lengths)[:, 0, 0]


def conditional_log_probabilities(scores, clip_lengths, text_lengths, table=None):
    """The CRF as a locally normalized decoder: [B, T_v, T_s, 3] log p(action | node),
    the share of the completions from the node that begin with that action
    (each node's three sum to 1). The probability of a complete path is the
    product of these along it, forced tails aside (they have probability 1)."""
    if table is None:
        table = log_partition_table(scores, clip_lengths, text_lengths)
    scores = tf.cast(scores, tf.float32)
    max_clips, max_texts = tf.shape(scores)[1], tf.shape(scores)[2]
    here = table[:, :max_clips, :max_texts]
    right = table[:, :max_clips, 1:max_texts + 1]  # POP_TEXT: the next text
    down = table[:, 1:max_clips + 1, :max_texts]  # POP_CLIP and MATCH: the next clip
    by_action = {POP_CLIP: down, POP_TEXT: right, MATCH: down}
    return tf.stack([scores[..., a] + by_action[a] - here for a in (POP_CLIP, POP_TEXT, MATCH)], axis=-1)


def posterior_marginals(scores, clip_lengths, text_lengths, table=None):
    """(log Z [B], marginals [B, T_v, T_s, 3]): the expected number of times a path
    takes each action at each node under the CRF of ``scores`` (forced tails
    count at the nodes that score them): the gradient of log Z, computed as the
    forward-backward algorithm does it. The forward table (``_forward_table``: the
    log-sum of every path's beginning up to a node) and the backward one
    (``log_partition_table``, or ``table`` when given) meet at each node's
    actions; the forced tails' counts are running sums of the paths that end
    into them. One more pass of the row loop, where differentiating the
    backward table ran its loop's gradient (5x the time at film length)."""
    scores = tf.cast(scores, tf.float32)
    clip_lengths, text_lengths = tf.cast(clip_lengths, tf.int32), tf.cast(text_lengths, tf.int32)
    if table is None:
        table = log_partition_table(scores, clip_lengths, text_lengths)
    max_clips, max_texts = tf.shape(scores)[1], tf.shape(scores)[2]
    log_z = table[:, 0, 0]
    alpha, leave = _forward_table(scores, clip_lengths, text_lengths)  # [B, T_v, T_s + 1], [B, T_v, T_s]
    here = alpha[:, :, :max_texts] - log_z[:, None, None]
    right = table[:, :max_clips, 1:max_texts + 1]
    down = table[:, 1:max_clips + 1, :max_texts]
    by_action = {POP_CLIP: down, POP_TEXT: right, MATCH: down}
    nodes = node_mask(clip_lengths, text_lengths, max_clips, max_texts)
    marginals = tf.stack([tf.where(nodes, tf.exp(here + scores[..., a] + by_action[a]), 0.0)
                          for a in (POP_CLIP, POP_TEXT, MATCH)], axis=-1)
    # The forced tails. Paths that pop the last text in row i (then pop clips i.. at the
    # last text): each clip r >= i counts a POP_CLIP at (r, T_s - 1).
    clip_tail, text_tail = _forced_tails(scores, clip_lengths, text_lengths)
    rows_valid = tf.sequence_mask(clip_lengths, max_clips)
    ended_in_row = tf.where(rows_valid, tf.exp(tf.gather(alpha, text_lengths, axis=2, batch_dims=1) + clip_tail
                                               - log_z[:, None]), 0.0)  # [B, T_v]
    clip_counts = tf.where(rows_valid, tf.cumsum(ended_in_row, axis=1), 0.0)
    # Paths that consume the last clip at column k (then pop texts k.. at the last clip):
    # each text m >= k counts a POP_TEXT at (T_v - 1, m).
    last = tf.maximum(clip_lengths - 1, 0)
    entered_last = (tf.gather(alpha, last, axis=1, batch_dims=1)[:, :max_texts]
                    + tf.gather(leave, last, axis=1, batch_dims=1))
    columns_valid = tf.sequence_mask(text_lengths, max_texts)
    ended_at_column = tf.where(columns_valid, tf.exp(entered_last + text_tail[:, :max_texts] - log_z[:, None]), 0.0)
    text_counts = tf.where(columns_valid, tf.cumsum(ended_at_column, axis=1), 0.0)
    last_column = tf.one_hot(text_lengths - 1, max_texts)  # [B, T_s]
    last_row = tf.one_hot(last, max_clips)  # [B, T_v]
    tails = tf.stack([clip_counts[:, :, None] * last_column[:, None, :], text_counts[:, None, :] * last_row[:, :, None],
                      tf.zeros_like(marginals[..., 0])], axis=-1)  # POP_CLIP, POP_TEXT, MATCH
    return log_z, marginals + tails


def _forward_table(scores, clip_lengths, text_lengths):
    """The forward algorithm over the lattice: ``alpha[:, i, j]`` [B, T_v, T_s + 1] is the
    log-sum-exp, over every way of reaching node (i, j) from (0, 0), of its actions'
    scores; column T_s: every text popped in row i (the path ends there into the clip
    tail). Also ``leave`` [B, T_v, T_s], the log-sum of MATCH and POP_CLIP at each node.

    Row by row: E[j], the paths entering row i at column j (from (i - 1, j) by MATCH or
    POP_CLIP; (0, 0) for row 0), then runs of POP_TEXTs: alpha[i, j] = P[j] +
    logsumexp_{k <= j}(E[k] - P[k]), P the running sum of the row's POP_TEXT scores.
    """
    max_clips, max_texts = tf.shape(scores)[1], tf.shape(scores)[2]
    columns = tf.range(max_texts + 1)
    text_ok = columns[None, :] < text_lengths[:, None]
    at_end = tf.equal(columns[None, :], text_lengths[:, None])
    prefixes, leave_padded = _row_sums(scores, text_ok)
    leave = leave_padded[:, :, :max_texts]
    # Row i reads row i - 1's leave too: kept after reading.
    leave_rows, prefix_rows = (_by_row(t, max_clips, clear_after_read=False) for t in (leave_padded, prefixes))
    start = tf.where(tf.equal(columns, 0)[None, :] & text_ok, 0.0, _NEG)  # [B, T_s + 1]

    def row(i, previous, rows):
        enter = tf.where(i == 0, start, previous + leave_rows.read(tf.maximum(i - 1, 0)))
        enter = tf.where(text_ok, enter, _NEG)
        prefix = prefix_rows.read(i)
        alpha_row = prefix + tf.math.cumulative_logsumexp(enter - prefix, axis=1)
        alpha_row = tf.where(text_ok | at_end, alpha_row, _NEG)
        return i + 1, alpha_row, rows.write(i, alpha_row)

    _, _, rows = tf.while_loop(lambda i, *_: i < max_clips, row,
                               (0, tf.fill(tf.shape(start), _NEG), tf.TensorArray(tf.float32, size=max_clips)))
    return tf.transpose(rows.stack(), [1, 0, 2]), leave


def clip_posteriors(marginals):
    """Each clip's posterior [B, T_v, T_s + 1]: the probability that it belongs to each
    text, the last column that it is unmatched (each clip takes exactly one MATCH or
    POP_CLIP on every complete path, so a row sums to 1)."""
    return tf.concat([marginals[..., MATCH], tf.reduce_sum(marginals[..., POP_CLIP], axis=2, keepdims=True)],
                     axis=2)


def clip_confidence(marginals, clip_to_text):
    """[B, T_v]: the posterior probability of each clip's assignment in ``clip_to_text``
    (-1 unmatched; padding gets the probability of "unmatched", which is meaningless)."""
    posteriors = clip_posteriors(marginals)
    max_texts = tf.shape(marginals)[2]
    column = tf.where(clip_to_text < 0, max_texts, tf.cast(clip_to_text, tf.int32))
    return tf.gather(posteriors, column, axis=2, batch_dims=2)


def _row_sums(scores, text_ok):
    """What both tables read a row at a time, for all rows at once: P, the running sums of
    each row's POP_TEXT scores ([B, T_v, T_s + 1], exclusive), and the log-sum of MATCH
    and POP_CLIP at each node, the ways of leaving a row ([B, T_v, T_s + 1], 0 in the last
    column)."""
    pad3 = [[0, 0], [0, 0], [0, 1]]
    prefixes = tf.cumsum(tf.where(text_ok[:, None, :], tf.pad(scores[..., POP_TEXT], pad3), 0.0), axis=2,
                         exclusive=True)
    leave = tf.pad(tf.math.reduce_logsumexp(tf.gather(scores, [MATCH, POP_CLIP], axis=3), axis=3), pad3)
    return prefixes, leave


def _by_row(tensor, rows, clear_after_read=True):
    """[B, T_v, ...] as a TensorArray of its rows. A loop reads its rows from it, not by
    slicing the whole tensor: the gradient of a slice inside a loop is a whole-lattice
    tensor every row (quadratic in the clips; 5 s at 4000 x 800), a read's is the row."""
    return tf.TensorArray(tensor.dtype, size=rows, clear_after_read=clear_after_read).unstack(
        tf.transpose(tensor, [1, 0, *range(2, tensor.shape.rank)]))


def _forced_tails(scores, clip_lengths, text_lengths):
    """The scores of the forced tails: ``clip_tail`` [B, T_v], leftover clips r.. popped
    at the last text; ``text_tail`` [B, T_s + 1], leftover texts j.. popped at the last clip."""
    max_clips, max_texts = tf.shape(scores)[1], tf.shape(scores)[2]
    clip_valid = tf.sequence_mask(clip_lengths, max_clips)
    last_text = tf.gather(scores[..., POP_CLIP], tf.maximum(text_lengths - 1, 0), axis=2, batch_dims=1)
    clip_tail = tf.cumsum(tf.where(clip_valid, last_text, 0.0), axis=1, reverse=True)
    last_clip = tf.gather(scores[..., POP_TEXT], tf.maximum(clip_lengths - 1, 0), axis=1, batch_dims=1)
    text_tail = tf.pad(tf.cumsum(tf.where(tf.sequence_mask(text_lengths, max_texts), last_clip, 0.0), axis=1,
                                 reverse=True), [[0, 0], [0, 1]])
    return clip_tail, text_tail


def greedy_walk(log_probs, clip_lengths, text_lengths):
    """Greedy decoding over a lattice of per-node action log-probabilities: from
    node (0, 0), the most probable action at every step until the last clip or
    the last text is consumed (what the step-by-step decoder does, on scores
    computed for every node at once).

    Returns ``actions`` [B, L] (-1 after a row's end), ``num_actions`` [B] and
    ``probabilities`` [B, L, 3] (zeros after the end).
    """
    clip_lengths, text_lengths = tf.cast(clip_lengths, tf.int32), tf.cast(text_lengths, tf.int32)
    log_probs = tf.cast(log_probs, tf.float32)
    batch = tf.shape(log_probs)[0]
    bound = tf.shape(log_probs)[1] + tf.shape(log_probs)[2]

    def body(t, clip, text, done, actions_ta, probs_ta):
        node = tf.stack([tf.minimum(clip, clip_lengths - 1), tf.minimum(text, text_lengths - 1)], axis=1)
        probs = tf.exp(tf.gather_nd(log_probs, node, batch_dims=1))
        action = tf.argmax(probs, axis=-1, output_type=tf.int32)
        running = tf.logical_not(done)
        actions_ta = actions_ta.write(t, tf.where(running, action, -1))
        probs_ta = probs_ta.write(t, tf.where(running[:, None], probs, 0.0))
        pops_text = tf.equal(action, POP_TEXT) & running
        clip += tf.cast(tf.logical_not(pops_text) & running, tf.int32)
        text += tf.cast(pops_text, tf.int32)
        return t + 1, clip, text, done | (clip >= clip_lengths) | (text >= text_lengths), actions_ta, probs_ta

    zeros = tf.zeros([batch], tf.int32)
    steps, _, _, _, actions_ta, probs_ta = tf.while_loop(
        lambda t, c, s, done, *_: (t < bound) & tf.logical_not(tf.reduce_all(done)), body,
        (0, zeros, zeros, tf.zeros([batch], tf.bool), tf.TensorArray(tf.int32, size=0, dynamic_size=True,
                                                                      element_shape=[None]),
         tf.TensorArray(tf.float32, size=0, dynamic_size=True, element_shape=[None, 3])))
    actions = tf.reshape(tf.transpose(actions_ta.stack(), [1, 0]), [batch, steps])
    probabilities = tf.reshape(tf.transpose(probs_ta.stack(), [1, 0, 2]), [batch, steps, 3])
    num_actions = tf.reduce_sum(tf.cast(actions >= 0, tf.int32), axis=1)
    return {"actions": actions, "num_actions": num_actions, "probabilities": probabilities}


def running_max(values):
    """The running maximum along axis 1: ``best[:, j] = max_{k <= j} values[:, k]``.

    In blocks of ``RUNNING_MAX_BLOCK`` columns: every column against the earlier
    columns of its block, and every block against the earlier blocks' maxima,
    O(N * block + (N / block)^2) comparisons in a fixed few ops (TensorFlow has
    no cumulative maximum, and comparing every column with every earlier one is
    O(N^2): a film's 800 texts, 26 thousand against 640 thousand a row). The
    excluded pairs are masked by adding -inf, the others by adding 0, which is
    exact: ``best`` is exactly one of the inputs. Where it is, the backtrack
    finds only on the path (``_entry_column``).

    Args:
        values: [B, N] finite floats.

    Returns:
        [B, N], the dtype of ``values``.
    """
    block = RUNNING_MAX_BLOCK
    batch, size = tf.shape(values)[0], tf.shape(values)[1]
    blocks = (size + block - 1) // block
    padded = tf.pad(values, [[0, 0], [0, blocks * block - size]], constant_values=float("-inf"))
    padded = tf.reshape(padded, [batch, blocks, block])
    never = tf.constant(float("-inf"), values.dtype)
    earlier = tf.where(tf.range(block)[:, None] >= tf.range(block)[None, :], tf.zeros([], values.dtype), never)
    best_within = tf.reduce_max(padded[:, :, None, :] + earlier, axis=3)  # [B, blocks, j]: k <= j in the block
    before = tf.where(tf.range(blocks)[:, None] > tf.range(blocks)[None, :], tf.zeros([], values.dtype), never)
    best_before = tf.reduce_max(best_within[:, None, :, -1] + before, axis=2)  # the blocks before (-inf: none)
    return tf.reshape(tf.maximum(best_within, best_before[:, :, None]), [batch, -1])[:, :size]


def _entry_column(entries, column):
    """[B] the first k <= ``column`` where a row's ``entries`` [B, T_s + 1] are largest: where
    the run of POP_TEXTs that reaches ``column`` entered the row (as tf.argmax, the earlier
    column on a tie)."""
    reach = tf.range(tf.shape(entries)[1])[None, :] <= column[:, None]
    return tf.argmax(tf.where(reach, entries, float("-inf")), axis=1, output_type=tf.int32)


def _backtrack(entries, consumed, last_column):
    """The column [B, T_v] at which each consumed clip was consumed (0 for the others)."""
    max_clips = tf.shape(entries)[1]

    def back(i, column, columns_ta):
        live = i < consumed
        columns_ta = columns_ta.write(i, tf.where(live, column, 0))
        previous = _entry_column(tf.gather(entries, i, axis=1), column)  # row i's entry column
        column = tf.where(live, previous, tf.where(i - 1 < consumed, last_column, column))
        return i - 1, column, columns_ta

    initial_column = tf.where(max_clips - 1 < consumed, last_column, 0)
    _, _, columns_ta = tf.while_loop(lambda i, *_: i >= 0, back,
                                     (max_clips - 1, initial_column, tf.TensorArray(tf.int32, size=max_clips)))
    return tf.transpose(columns_ta.stack())


def _actions(log_probs, clip_column, consumed, num_actions):
    """The action sequence [B, T_v + T_s] (-1 after ``num_actions``): before clip i's
    action come the POP_TEXTs that lead to its column; a consumed clip is matched
    where MATCH scores at least POP_CLIP at its node."""
    batch, max_clips, max_texts = tf.shape(log_probs)[0], tf.shape(log_probs)[1], tf.shape(log_probs)[2]
    clip_live = tf.sequence_mask(consumed, max_clips)
    chosen = tf.gather(log_probs, clip_column, axis=2, batch_dims=2)  # [B, T_v, 3]
    is_match = clip_live & (chosen[:, :, MATCH] >= chosen[:, :, POP_CLIP])
    actions = tf.where(tf.range(max_clips + max_texts)[None, :] < num_actions[:, None], POP_TEXT, -1)
    positions = tf.range(max_clips)[None, :] + clip_column
    rows = tf.broadcast_to(tf.range(batch)[:, None], tf.shape(clip_column))
    indices = tf.stack([tf.boolean_mask(rows, clip_live), tf.boolean_mask(positions, clip_live)], axis=1)
    return tf.tensor_scatter_nd_update(actions, indices, tf.boolean_mask(tf.where(is_match, MATCH, POP_CLIP),
                                                                          clip_live))
