"""NeuMATCH (Dogan et al., CVPR 2018) as the paper's code builds it (DESIGN.md 2).

Inputs are padded batches whose sequences are *reversed* (position 0 holds the
last clip or text; see tfalign.data.batching), so the recurrent state at a
position summarizes everything that remains from there on. A cursor indexes
the top of each stack: it starts at ``length - 1`` (the first element) and
moves towards 0 as elements are popped, never below 0.

The decoder is split in two pure functions of a state, so that training
(teacher forcing) and greedy inference run the very same step:
``step_features`` reads the stacks at the cursors and builds the classifier
input; ``advance`` applies an action to the cursors, the action stack and the
matched stack.
"""

import keras
import tensorflow as tf

from tfalign.data.oracle import MATCH, NUM_ACTIONS, POP_TEXT
from tfalign.layers import FeatureEncoder, FixedProjection, LayerNormLSTMCell, SequenceBatchNormalization, StackLSTMCell
from tfalign.layers.encoders import expected_input_widths
from tfalign.layers.initializers import bias_initializer, dense_kernel_initializer
from tfalign.layers.recurrence import run_stack

NORMALIZATIONS = ("none", "sbn", "2ln", "4ln")
NUM_POSITION_FEATURES = 10


def position_features(clip_cursor, text_cursor, clip_lengths, text_lengths):
    """The 10 position values of the paper's decoder (DESIGN.md 2.5)."""
    a = tf.cast(clip_cursor + 1, tf.float32)  # remaining clips, the top included
    c = tf.cast(text_cursor + 1, tf.float32)
    big_v = tf.cast(clip_lengths + 1, tf.float32)
    big_s = tf.cast(text_lengths + 1, tf.float32)
    return tf.stack([a, c, a / big_v, c / big_s, big_v / a, big_s / c, a / c, c / a,
                     (big_v - a) / (big_s - c), (big_s - c) / (big_v - a)], axis=-1)


def _dense(units, activation=None, name=None):
    return keras.layers.Dense(units, activation=activation, kernel_initializer=dense_kernel_initializer(),
                              bias_initializer=bias_initializer(), name=name)


@keras.saving.register_keras_serializable("tfalign")
class NeuMatchAligner(keras.Model):
    """The aligner. ``call`` returns teacher-forced logits [B, L, 3] when the
    inputs hold ``actions``, else the greedy alignment (see ``greedy``)."""

    def __init__(self, encoder="rp", normalization="none", units=300, action_units=8, matched_units=20,
                 hidden_units=300, dropout=0.0, encoder_dropout=0.0, projection_seeds=None, **kwargs):
        super().__init__(**kwargs)
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
        self.encoder_kind, self.normalization = encoder, normalization
        self.units, self.action_units, self.matched_units = units, action_units, matched_units
        self.hidden_units, self.dropout_rate, self.encoder_dropout = hidden_units, dropout, encoder_dropout
        self.projection_seeds = list(projection_seeds) if projection_seeds else None
        if self.projection_seeds and encoder != "rp":
            raise ValueError("projection_seeds (random projection in the graph) needs encoder 'rp'")

        self.encoder = FeatureEncoder(encoder, units, dropout=encoder_dropout, name="encoder")
        self.projections = None
        if self.projection_seeds:
            clip_in, text_in = expected_input_widths("full")
            self.projections = (FixedProjection(clip_in, units, self.projection_seeds[0], name="clip_projection"),
                                FixedProjection(text_in, units, self.projection_seeds[1], name="text_projection"))
        stack_cell = LayerNormLSTMCell if normalization in ("2ln", "4ln") else StackLSTMCell
        small_cell = LayerNormLSTMCell if normalization == "4ln" else StackLSTMCell
        self.video_cells = [stack_cell(units, name=f"video_stack_{i}") for i in (1, 2)]
        self.text_cells = [stack_cell(units, name=f"text_stack_{i}") for i in (1, 2)]
        self.action_cells = [small_cell(action_units, name=f"action_stack_{i}") for i in (1, 2)]
        self.matched_cells = [small_cell(matched_units, name=f"matched_stack_{i}") for i in (1, 2)]
        self.video_norm = self.text_norm = None
        if normalization == "sbn":
            self.video_norm = SequenceBatchNormalization(name="video_stack_sbn")
            self.text_norm = SequenceBatchNormalization(name="text_stack_sbn")
        self.hidden = _dense(hidden_units, "relu", name="decoder_hidden")
        self.logits_layer = _dense(NUM_ACTIONS, name="decoder_logits")
        self.drop = keras.layers.Dropout(dropout) if dropout else None

    @property
    def input_widths(self):
        return expected_input_widths("full" if self.projection_seeds else self.encoder_kind)

    # ------------------------------------------------------------------ build
    def build(self, input_shape=None):
        clip_dim, text_dim = self.input_widths
        encoded = self.units
        self.encoder.build(((None, encoded if self.projections else clip_dim),
                            (None, encoded if self.projections else text_dim)))
        for cells, dim in ((self.video_cells, encoded), (self.text_cells, encoded),
                           (self.action_cells, NUM_ACTIONS), (self.matched_cells, 2 * self.units)):
            for cell in cells:
                cell.build((None, dim))
                dim = cell.units
        for norm in (self.video_norm, self.text_norm):
            if norm is not None:
                norm.build((None, None, self.units))
        feature_dim = 2 * self.units + self.action_units + self.matched_units + NUM_POSITION_FEATURES
        self.hidden.build((None, feature_dim))
        self.logits_layer.build((None, self.hidden_units))
        self.built = True

    # ----------------------------------------------------------------- stacks
    def encode_stacks(self, inputs, training=False):
        """Video- and text-stack outputs [B, T, units], before and after normalization."""
        clips, texts = inputs["clip_features"], inputs["text_features"]
        if self.projections:
            clips, texts = self.projections[0](clips), self.projections[1](texts)
        clips, texts = self.encoder((clips, texts), training=training)
        video_raw = run_stack(self.video_cells, clips)
        text_raw = run_stack(self.text_cells, texts)
        video, text = video_raw, text_raw
        if self.video_norm is not None:
            clip_mask = tf.sequence_mask(inputs["clip_lengths"], tf.shape(video_raw)[1])
            text_mask = tf.sequence_mask(inputs["text_lengths"], tf.shape(text_raw)[1])
            video = self.video_norm(video_raw, mask=clip_mask, training=training)
            text = self.text_norm(text_raw, mask=text_mask, training=training)
        return {"video": video, "text": text, "video_raw": video_raw, "text_raw": text_raw,
                "clip_lengths": tf.cast(inputs["clip_lengths"], tf.int32),
                "text_lengths": tf.cast(inputs["text_lengths"], tf.int32)}

    # ---------------------------------------------------------------- decoder
    def initial_state(self, stacks):
        batch = tf.shape(stacks["video"])[0]
        zeros = lambda units: tf.zeros([batch, units])
        action = [zeros(self.action_units) for _ in range(4)]
        matched = [zeros(self.matched_units) for _ in range(4)]
        return {
            "clip_cursor": stacks["clip_lengths"] - 1,
            "text_cursor": stacks["text_lengths"] - 1,
            "action": action,
            "matched": matched,
            "saved": [tf.identity(m) for m in matched],
            "match_sum": zeros(self.units),
            "match_count": tf.zeros([batch]),
            "done": tf.zeros([batch], tf.bool),
        }

    def step_features(self, state, stacks):
        """Classifier input at the current cursors, and the stack tops v, s."""
        v = tf.gather(stacks["video"], state["clip_cursor"], batch_dims=1)
        s = tf.gather(stacks["text"], state["text_cursor"], batch_dims=1)
        p = position_features(state["clip_cursor"], state["text_cursor"], stacks["clip_lengths"], stacks["text_lengths"])
        action_feature = state["action"][0] + state["action"][2]  # h1 + h2
        matched_feature = state["matched"][0] + state["matched"][2]
        return tf.concat([v, s, action_feature, matched_feature, p], axis=-1), v, s

    def classify(self, features, training=False):
        x = features
        if self.drop is not None:
            x = self.drop(x, training=training)
        x = self.hidden(x)
        if self.drop is not None:
            x = self.drop(x, training=training)
        return self.logits_layer(x)

    @staticmethod
    def _two_layer_step(cells, inputs, states):
        h1, c1, h2, c2 = states
        h1, (h1, c1) = cells[0](inputs, [h1, c1])
        h2, (h2, c2) = cells[1](h1, [h2, c2])
        return [h1, c1, h2, c2]

    def advance(self, state, action, v, s):
        """Applies one action per episode: cursors, action stack, matched stack."""
        action = tf.cast(action, tf.int32)
        is_match = tf.equal(action, MATCH)
        is_pop_text = tf.equal(action, POP_TEXT)
        match_col = is_match[:, None]

        new_action = self._two_layer_step(self.action_cells, tf.one_hot(action, NUM_ACTIONS), state["action"])

        # Matched stack: one entry per matched text. The first match of a text
        # saves the state and pushes; a further match restores that saved state
        # first, then pushes, so the entry is replaced rather than stacked.
        match_sum = state["match_sum"] + tf.where(match_col, v, 0.0)
        match_count = state["match_count"] + tf.cast(is_match, tf.float32)
        first_match = is_match & tf.equal(state["match_count"], 0.0)
        saved = [tf.where(first_match[:, None], m, old) for m, old in zip(state["matched"], state["saved"])]
        mean = match_sum / tf.maximum(match_count, 1.0)[:, None]
        pushed = self._two_layer_step(self.matched_cells, tf.concat([mean, s], axis=-1), saved)
        matched = [tf.where(match_col, new, old) for new, old in zip(pushed, state["matched"])]

        pops_clip = tf.logical_not(is_pop_text)
        finishes = tf.where(is_pop_text, tf.equal(state["text_cursor"], 0), tf.equal(state["clip_cursor"], 0))
        return {
            "clip_cursor": tf.maximum(state["clip_cursor"] - tf.cast(pops_clip, tf.int32), 0),
            "text_cursor": tf.maximum(state["text_cursor"] - tf.cast(is_pop_text, tf.int32), 0),
            "action": new_action,
            "matched": matched,
            "saved": saved,
            "match_sum": tf.where(is_pop_text[:, None], 0.0, match_sum),
            "match_count": tf.where(is_pop_text, 0.0, match_count),
            "done": state["done"] | finishes,
        }

    # ------------------------------------------------------------------- call
    def call(self, inputs, training=False):
        from tfalign.model import decoding

        stacks = self.encode_stacks(inputs, training=training)
        if "actions" in inputs:
            return decoding.teacher_forced_logits(self, stacks, inputs["actions"], training=training)
        return decoding.greedy(self, stacks)

    def get_config(self):
        return {
            "encoder": self.encoder_kind, "normalization": self.normalization, "units": self.units,
            "action_units": self.action_units, "matched_units": self.matched_units,
            "hidden_units": self.hidden_units, "dropout": self.dropout_rate,
            "encoder_dropout": self.encoder_dropout, "projection_seeds": self.projection_seeds,
            "name": self.name,
        }
