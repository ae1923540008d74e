"""NeuMATCH's decoder: its state, one step, and the loops that run it.

The state is the two cursors (the tops of the clip and text stacks) and, for
the paper's decoder with history, the action stack and the matched stack.
A step is two pure functions of the state, so that training (teacher forcing)
and greedy inference run the very same step: ``step_features`` reads the
stacks at the cursors and builds the classifier input; ``advance`` applies an
action to the cursors, the action stack and the matched stack. Both loops are
a tf.while_loop over action steps, vectorized over the batch.

A cursor indexes the top of a reversed stack (docs/network.md): it starts at
``length - 1`` (the first element) and moves towards 0, never below it.
"""

import tensorflow as tf

from tfalign.data.batching import network_inputs
from tfalign.data.decoding_choice import Decoding
from tfalign.data.oracle import MATCH, NUM_ACTIONS, POP_TEXT, alignment_from_actions
from tfalign.model import paths
from tfalign.data.length_buckets import pad_request_to_buckets
from tfalign.model.classifier_inputs import POSITION_FUNCTIONS, window_features
from tfalign.dp.lattice import clip_confidence

INPUT_KEYS = ("clip_features", "text_features", "clip_lengths", "text_lengths")


# ---------------------------------------------------------------- the state
def initial_state(model, stacks):
    batch, dtype = tf.shape(stacks["video"])[0], stacks["video"].dtype
    zeros = lambda units: tf.zeros([batch, units], dtype)
    action = [zeros(model.action_units) for _ in range(4)] if model.decoder_history else []
    matched = [zeros(model.matched_units) for _ in range(4)] if model.decoder_history else []
    return {"clip_cursor": stacks["clip_lengths"] - 1, "text_cursor": stacks["text_lengths"] - 1, "action": action,
            "matched": matched, "saved": [tf.identity(m) for m in matched], "match_sum": zeros(model.units),
            "match_count": tf.zeros([batch], dtype), "done": tf.zeros([batch], tf.bool)}


def step_features(model, state, stacks):
    """The classifier's input at the current cursors, and the stack tops v, s."""
    v = tf.gather(stacks["video"], state["clip_cursor"], batch_dims=1)
    s = tf.gather(stacks["text"], state["text_cursor"], batch_dims=1)
    p = tf.cast(POSITION_FUNCTIONS[model.position](state["clip_cursor"], state["text_cursor"],
                                                   stacks["clip_lengths"], stacks["text_lengths"]), v.dtype)
    parts = [v, s] if model.stack_features else []
    if model.decoder_history:
        parts += [state["action"][0] + state["action"][2], state["matched"][0] + state["matched"][2]]  # h1 + h2
    parts.append(p)
    if model.similarity_units:
        parts.append(window_features(stacks["similarity_maps"], stacks["clip_lengths"] - 1 - state["clip_cursor"],
                                     stacks["text_lengths"] - 1 - state["text_cursor"]))
    return tf.concat(parts, axis=-1), v, s


def two_layer_step(cells, inputs, states):
    """One step of a two-layer LSTM stack: states [h1, c1, h2, c2]."""
    h1, c1, h2, c2 = states
    h1, (h1, c1) = cells[0](inputs, [h1, c1])
    h2, (h2, c2) = cells[1](h1, [h2, c2])
    return [h1, c1, h2, c2]


def advance(model, state, action, v, s):
    """Applies one action per episode: cursors, action stack, matched stack."""
    action = tf.cast(action, tf.int32)
    is_match, is_pop_text = tf.equal(action, MATCH), tf.equal(action, POP_TEXT)
    finishes = tf.where(is_pop_text, tf.equal(state["text_cursor"], 0), tf.equal(state["clip_cursor"], 0))
    cursors = {"clip_cursor": tf.maximum(state["clip_cursor"] - tf.cast(tf.logical_not(is_pop_text), tf.int32), 0),
               "text_cursor": tf.maximum(state["text_cursor"] - tf.cast(is_pop_text, tf.int32), 0),
               "done": state["done"] | finishes}
    if not model.decoder_history:
        return {**state, **cursors}
    new_action = two_layer_step(model.action_cells, tf.one_hot(action, NUM_ACTIONS), state["action"])
    # Matched stack: one entry per matched text. The first match of a text
    # saves the state and pushes; a further match restores that saved state
    # first, then pushes, so the entry is replaced rather than stacked.
    match_col = is_match[:, None]
    match_sum = state["match_sum"] + tf.where(match_col, v, tf.zeros_like(v))
    match_count = state["match_count"] + tf.cast(is_match, state["match_count"].dtype)
    first_match = is_match & tf.equal(state["match_count"], 0.0)
    saved = [tf.where(first_match[:, None], m, old) for m, old in zip(state["matched"], state["saved"])]
    mean = match_sum / tf.maximum(match_count, 1.0)[:, None]
    pushed = two_layer_step(model.matched_cells, tf.concat([mean, s], axis=-1), saved)
    matched = [tf.where(match_col, new, old) for new, old in zip(pushed, state["matched"])]
    return {**cursors, "action": new_action, "matched": matched, "saved": saved,
            "match_sum": tf.where(is_pop_text[:, None], tf.zeros_like(match_sum), match_sum),
            "match_count": tf.where(is_pop_text, tf.zeros_like(match_count), match_count)}


# ---------------------------------------------------------------- the loops
def teacher_forced_logits(model, stacks, actions, training=False):
    """Logits [B, L, 3] for the ground-truth actions [B, L] (padding: any action).

    The loop only moves the state; the classifier runs once, on all steps.
    """
    actions = tf.cast(actions, tf.int32)
    steps = tf.shape(actions)[1]
    features = tf.TensorArray(stacks["video"].dtype, size=steps)

    def body(t, state, features):
        x, v, s = step_features(model, state, stacks)
        return t + 1, advance(model, state, actions[:, t], v, s), features.write(t, x)

    _, _, features = tf.while_loop(lambda t, *_: t < steps, body, (0, initial_state(model, stacks), features))
    return model.classify(tf.transpose(features.stack(), [1, 0, 2]), training=training)


def greedy(model, stacks, max_steps=None):
    """Greedy alignment: argmax action at every step until every episode has
    consumed its last clip or its last text.

    Returns actions [B, L] (-1 after an episode's end), num_actions [B] and
    probabilities [B, L, 3] (zeros after the end).
    """
    batch = tf.shape(stacks["video"])[0]
    limit = tf.reduce_max(stacks["clip_lengths"] + stacks["text_lengths"]) if max_steps is None else max_steps
    # A bound on the steps from the padded sizes: a constant once the shapes are
    # known, so XLA compiles the loop (also in a SavedModel, per request shape).
    static_steps = None
    if stacks["video"].shape[1] is not None and stacks["text"].shape[1] is not None:
        static_steps = stacks["video"].shape[1] + stacks["text"].shape[1]
    bound = static_steps if static_steps is not None else tf.shape(stacks["video"])[1] + tf.shape(stacks["text"])[1]
    actions_ta = tf.TensorArray(tf.int32, size=bound, element_shape=[None])
    probs_ta = tf.TensorArray(tf.float32, size=bound, element_shape=[None, 3])

    def cond(t, state, *_):
        return (t < limit) & tf.logical_not(tf.reduce_all(state["done"]))

    def body(t, state, num_actions, actions_ta, probs_ta):
        x, v, s = step_features(model, state, stacks)
        probs = tf.nn.softmax(tf.cast(model.classify(x), tf.float32))
        action = tf.argmax(probs, axis=-1, output_type=tf.int32)
        running = tf.logical_not(state["done"])
        actions_ta = actions_ta.write(t, tf.where(running, action, -1))
        probs_ta = probs_ta.write(t, tf.where(running[:, None], probs, 0.0))
        num_actions += tf.cast(running, tf.int32)
        return t + 1, advance(model, state, action, v, s), num_actions, actions_ta, probs_ta

    steps, _, num_actions, actions_ta, probs_ta = tf.while_loop(
        cond, body, (0, initial_state(model, stacks), tf.zeros([batch], tf.int32), actions_ta, probs_ta),
        maximum_iterations=bound)
    actions = tf.transpose(actions_ta.stack(), [1, 0])[:, :steps]
    probs = tf.transpose(probs_ta.stack(), [1, 0, 2])[:, :steps]
    return {"actions": actions, "num_actions": num_actions, "probabilities": probs}


def complete_greedy(out, clip_lengths, text_lengths, max_clips):
    """A greedy path's outputs with what the exact path gives too: ``clip_to_text``
    [B, max_clips], ``score``, the log-probability of the actions taken, and, given a
    CRF's ``marginals`` (``greedy_path`` with confidence), each clip's ``clip_confidence``."""
    out = dict(out)
    marginals = out.pop("marginals", None)
    completed = {**out, "clip_to_text": alignment_from_actions(out["actions"], out["num_actions"], clip_lengths,
                                                                text_lengths, max_clips),
                 "score": paths.greedy_score(out["probabilities"], out["actions"], out["num_actions"])}
    if marginals is not None:  # the time axes may be padded to buckets: the first max_clips rows
        completed["clip_confidence"] = clip_confidence(marginals[:, :max_clips], completed["clip_to_text"])
    return completed


def with_video_confidence(out, clip_lengths):
    """The outputs with each video's ``video_confidence`` [B]: the mean of its clips'
    ``clip_confidence`` (with calibrated confidences, its expected clip accuracy), where
    there are clip confidences."""
    if "clip_confidence" not in out:
        return out
    valid = tf.sequence_mask(clip_lengths, tf.shape(out["clip_confidence"])[1], dtype=tf.float32)
    total = tf.reduce_sum(out["clip_confidence"] * valid, axis=1)
    return {**out, "video_confidence": total / tf.maximum(tf.cast(clip_lengths, tf.float32), 1.0)}


# ------------------------------------------------------ compiled alignment
def _greedy_on_buckets(compiled, whole, inputs, max_clips):
    """The greedy path of reversed inputs, completed (``complete_greedy``). Where XLA
    compiles the decoder whole (``whole``), the request is padded to its buckets first, the
    time axes and the videos (``pad_request_to_buckets``), so that one compilation (or one
    warm-up request) serves every request of a bucket; the padding videos' rows are dropped."""
    if whole:
        videos = tf.shape(inputs["clip_lengths"])[0]
        out = {key: value[:videos] for key, value in compiled(pad_request_to_buckets(inputs)).items()}
    else:
        out = compiled(inputs)
    return complete_greedy(out, inputs["clip_lengths"], inputs["text_lengths"], max_clips)


def _decoder_options(model, decoding, xla, confidence) -> tuple[str, bool, bool, bool]:
    """(decoding, whole, stacks, confidence) as they take effect: the decoding checked; the
    greedy decoder XLA-compiled whole (``whole``) for a model without the CRF only (its
    greedy walk runs op by op: its DP is no XLA kernel); the stacks' loops compiled
    (``stacks``) whenever ``xla``; ``clip_confidence`` wherever there are posteriors: the
    exact decoder's lattice, and a CRF model's (``dtw_start``) under either decoding. The
    paper's greedy decoder has none: its probabilities depend on the actions taken."""
    decoding = Decoding.check(decoding, model.decoder_history)
    whole = xla and decoding == "greedy" and not model.dtw_start
    return decoding, whole, bool(xla), confidence and (decoding == "exact" or model.dtw_start)


def compiled_decoder(model, decoding="greedy", xla=True, confidence=True):
    """The tf.function of the model's ``greedy_path`` (XLA-compiled per input shape)
    or ``exact_path`` (each with the posteriors a clip's ``clip_confidence`` is read from, where
    the model has them, unless ``confidence`` is False: validation needs none), on reversed
    inputs; built once per model and decoding."""
    return _compiled(model, *_decoder_options(model, decoding, xla, confidence))


def _compiled(model, decoding, xla, stacks, confidence):
    """``compiled_decoder`` of options already checked (``_decoder_options``)."""
    key = ("compiled", decoding, xla, stacks, confidence)
    cache = model.__dict__["_align_functions"]  # out of Keras's and the SavedModel's tracking
    if key not in cache:
        # One trace for any shape, but XLA's: it compiles per shape (padded to buckets).
        signature = [{"clip_features": tf.TensorSpec([None, None, model.clip_dim], tf.float32),
                      "text_features": tf.TensorSpec([None, None, model.text_dim], tf.float32),
                      "clip_lengths": tf.TensorSpec([None], tf.int32), "text_lengths": tf.TensorSpec([None], tf.int32)}]
        path = model.exact_path if decoding == "exact" else model.greedy_path
        if xla:
            cache[key] = tf.function(model.greedy_path, jit_compile=True, autograph=False)
        else:
            cache[key] = tf.function(lambda inputs: path(inputs, confidence=confidence, compiled=stacks),
                                     input_signature=signature, autograph=False)
    return cache[key]


def align_function(model, decoding="greedy", xla=True, confidence=True):
    """The model's ``align`` for one decoding, on padded natural-order inputs.

    Greedy: XLA compiles the decoder's while loop into one kernel (about 2.5x
    faster on CPU), but once per input shape; the time axes (and the videos, to a
    power of two) are therefore padded to buckets first (data/length_buckets.py), which
    changes nothing (padding follows the valid positions and the loop stops on
    the true lengths) and bounds the compilations. Exact: the best path over the
    lattice (dp/lattice.py). The SavedModel's signatures trace this very function
    (serving/saved_model.py): one align path in process and served.
    """
    options = _decoder_options(model, decoding, xla, confidence)  # the one check of the decoding
    decoding, whole = options[:2]
    cache = model.__dict__["_align_functions"]
    if options in cache:
        return cache[options]
    compiled = _compiled(model, *options)

    def align(inputs):
        missing = [k for k in INPUT_KEYS if k not in inputs]
        if missing:
            raise ValueError(f"align: the inputs have no {missing[0]!r} (they need {list(INPUT_KEYS)})")
        reversed_inputs = network_inputs(inputs)  # the network reads each sequence last-to-first
        clip_lengths = reversed_inputs["clip_lengths"]
        if decoding == "exact":
            return with_video_confidence(compiled(reversed_inputs), clip_lengths)
        max_clips = tf.shape(reversed_inputs["clip_features"])[1]
        return with_video_confidence(_greedy_on_buckets(compiled, whole, reversed_inputs, max_clips), clip_lengths)

    cache[options] = align
    return align
