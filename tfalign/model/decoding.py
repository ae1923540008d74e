"""The decoder loops: teacher-forced (training) and greedy (inference), both a
tf.while_loop over action steps, vectorized over the batch."""

import tensorflow as tf


def teacher_forced_logits(model, stacks, actions, training=False):
    """Logits [B, L, 3] for the ground-truth actions [B, L] (padding: any action).

    The loop only moves the state; the classifier runs once, on all steps.
    """
    actions = tf.cast(actions, tf.int32)
    steps = tf.shape(actions)[1]
    features = tf.TensorArray(stacks["video"].dtype, size=steps)

    def body(t, state, features):
        x, v, s = model.step_features(state, stacks)
        return t + 1, model.advance(state, actions[:, t], v, s), features.write(t, x)

    _, _, features = tf.while_loop(lambda t, *_: t < steps, body, (0, model.initial_state(stacks), features))
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
        x, v, s = model.step_features(state, stacks)
        probs = tf.nn.softmax(tf.cast(model.classify(x), tf.float32))
        action = tf.argmax(probs, axis=-1, output_type=tf.int32)
        running = tf.logical_not(state["done"])
        actions_ta = actions_ta.write(t, tf.where(running, action, -1))
        probs_ta = probs_ta.write(t, tf.where(running[:, None], probs, 0.0))
        num_actions += tf.cast(running, tf.int32)
        return t + 1, model.advance(state, action, v, s), num_actions, actions_ta, probs_ta

    steps, _, num_actions, actions_ta, probs_ta = tf.while_loop(
        cond, body, (0, model.initial_state(stacks), tf.zeros([batch], tf.int32), actions_ta, probs_ta),
        maximum_iterations=bound)
    actions = tf.transpose(actions_ta.stack(), [1, 0])[:, :steps]
    probs = tf.transpose(probs_ta.stack(), [1, 0, 2])[:, :steps]
    return {"actions": actions, "num_actions": num_actions, "probabilities": probs}
