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

Beyond the paper (DESIGN.md 6; every option off by default, so the paper's
experiments build exactly the paper's network):
- ``history=False``: the classifier sees only what the two cursors point at
  (no action or matched stack), so every node of the (clip, text) lattice can
  be scored at once (``lattice_logits``) and decoded exactly (model/lattice.py);
- ``position="normalized"``: the remaining fractions a/V and c/S only, which
  stay in range on videos longer than the training samples;
- ``similarity_units``, ``similarity_source``: joint embeddings of the inputs
  (SBN-standardized, linear heads), the encoded elements and/or the stack
  outputs; a window of their cosine similarities around the cursors feeds the
  classifier, and a contrastive loss (training/losses.py) trains them;
- ``stack_features=False``: the classifier does not read the stack tops v, s;
- ``stack_dropout``: dropout on the stack outputs the decoder reads.
"""

import keras
import tensorflow as tf

from tfalign.data.features import feature_widths
from tfalign.data.oracle import MATCH, NUM_ACTIONS, POP_TEXT
from tfalign.layers import FeatureEncoder, FixedProjection, LayerNormLSTMCell, SequenceBatchNormalization, StackLSTMCell
from tfalign.layers.initializers import bias_initializer, dense_kernel_initializer
from tfalign.layers.recurrence import run_stack
from tfalign.model import lattice_classifier
from tfalign.model import paths
from tfalign.model.lattice import best_path

NORMALIZATIONS = ("none", "sbn", "2ln", "4ln")
DECODINGS = ("greedy", "exact")
INPUT_KEYS = ("clip_features", "text_features", "clip_lengths", "text_lengths")
POSITIONS = ("paper", "normalized")
NUM_POSITION_FEATURES = {"paper": 10, "normalized": 2}
# The similarity window read at node (i, j): clips i-1..i+2 against texts j-1..j+2
# (consecutive offsets: the window is a 4 x 4 patch of the padded maps).
WINDOW_OFFSETS = (-1, 0, 1, 2)
NUM_SIMILARITY_FEATURES = len(WINDOW_OFFSETS) ** 2
# Where the joint embeddings read: the input features (SBN-standardized, linear
# heads: a ridge-like map that cannot memorise), the encoded elements, the stack outputs.
SIMILARITY_SOURCES = {"input": ("input",), "encoder": ("encoder",), "stacks": ("stacks",),
                      "both": ("encoder", "stacks"), "all": ("input", "encoder", "stacks")}


def position_features(clip_cursor, text_cursor, clip_lengths, text_lengths):
    """The 10 position values of the paper's decoder (DESIGN.md 2.5)."""
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
    must hold 0, as ``similarity`` gives them)."""
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


def to_natural(sequence, lengths):
    """Reversed, left-aligned [B, T, D] -> natural order (padding stays after)."""
    return tf.reverse_sequence(sequence, tf.cast(lengths, tf.int32), seq_axis=1, batch_axis=0)


def pad_time(features, multiple):
    """[B, T, D] padded with zeros to T a multiple of ``multiple`` (T known or not)."""
    size = tf.shape(features)[1]
    target = (size + multiple - 1) // multiple * multiple
    return tf.pad(features, [[0, 0], [0, target - size], [0, 0]])


def _dense(units, activation=None, name=None, dtype=None):
    return keras.layers.Dense(units, activation=activation, kernel_initializer=dense_kernel_initializer(),
                              bias_initializer=bias_initializer(), name=name, dtype=dtype)


@keras.saving.register_keras_serializable("tfalign")
class NeuMatchAligner(keras.Model):
    """The aligner. ``call`` returns the teacher-forced logits [B, L, 3] of the
    ``actions`` in its inputs; ``align`` decodes (greedy, or the exact best
    path of a decoder without history) with a compiled function that
    ``make_align_function`` builds once per decoding, as keras-hub's
    ``generate`` does."""

    def __init__(self, encoder="rp", normalization="none", units=300, action_units=8, matched_units=20,
                 hidden_units=300, dropout=0.0, encoder_dropout=0.0, clip_dim=None, text_dim=None,
                 projection_seed=0, history=True, position="paper", similarity_units=0, stack_dropout=0.0,
                 similarity_source="encoder", stack_features=True, **kwargs):
        super().__init__(**kwargs)
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
        if position not in POSITIONS:
            raise ValueError(f"position must be one of {POSITIONS}, got {position!r}")
        self.history, self.position, self.similarity_units = bool(history), position, int(similarity_units)
        self.stack_dropout = stack_dropout
        if similarity_source not in SIMILARITY_SOURCES:
            raise ValueError(f"similarity_source must be one of {list(SIMILARITY_SOURCES)}, got {similarity_source!r}")
        if not stack_features and not self.similarity_units:
            raise ValueError("stack_features=False needs similarity features (similarity_units > 0)")
        self.similarity_source, self.stack_features = similarity_source, bool(stack_features)
        self.encoder_kind, self.normalization = encoder, normalization
        self.units, self.action_units, self.matched_units = units, action_units, matched_units
        self.hidden_units, self.dropout_rate, self.encoder_dropout = hidden_units, dropout, encoder_dropout
        default_clip, default_text = feature_widths(encoder)
        self.clip_dim, self.text_dim = int(clip_dim or default_clip), int(text_dim or default_text)
        self.projection_seed = int(projection_seed)

        # Every sublayer computes in the model's dtype policy (mixed precision: float32
        # weights, bfloat16/float16 math); logits and losses are float32 whatever it is.
        policy = self.dtype_policy
        self.encoder = FeatureEncoder(encoder, units, dropout=encoder_dropout, name="encoder", dtype=policy)
        # RP takes any width: an input that is not ``units`` wide goes through the fixed
        # projection in the graph (the text side seeded one higher, as the data's projection is).
        project = lambda width, seed, name: (FixedProjection(width, units, seed, name=name, dtype=policy)
                                             if encoder == "rp" and width != units else None)
        self.clip_projection = project(self.clip_dim, self.projection_seed, "clip_projection")
        self.text_projection = project(self.text_dim, self.projection_seed + 1, "text_projection")
        stack_cell = LayerNormLSTMCell if normalization in ("2ln", "4ln") else StackLSTMCell
        small_cell = LayerNormLSTMCell if normalization == "4ln" else StackLSTMCell
        self.video_cells = [stack_cell(units, name=f"video_stack_{i}", dtype=policy) for i in (1, 2)]
        self.text_cells = [stack_cell(units, name=f"text_stack_{i}", dtype=policy) for i in (1, 2)]
        self.action_cells = self.matched_cells = []
        if self.history:
            self.action_cells = [small_cell(action_units, name=f"action_stack_{i}", dtype=policy) for i in (1, 2)]
            self.matched_cells = [small_cell(matched_units, name=f"matched_stack_{i}", dtype=policy) for i in (1, 2)]
        self.similarity_heads, self.input_norms = {}, None
        if self.similarity_units:  # one pair of heads per source: clip and text into the joint space
            for source in SIMILARITY_SOURCES[similarity_source]:
                self.similarity_heads[source] = (
                    _dense(self.similarity_units, name=f"{source}_clip_head", dtype=policy),
                    _dense(self.similarity_units, name=f"{source}_text_head", dtype=policy))
            if "input" in self.similarity_heads:
                self.input_norms = (SequenceBatchNormalization(name="clip_input_sbn", dtype=policy),
                                    SequenceBatchNormalization(name="text_input_sbn", dtype=policy))
        self.stack_drop = keras.layers.Dropout(stack_dropout, dtype=policy) if stack_dropout else None
        self.video_norm = self.text_norm = None
        if normalization == "sbn":
            self.video_norm = SequenceBatchNormalization(name="video_stack_sbn", dtype=policy)
            self.text_norm = SequenceBatchNormalization(name="text_stack_sbn", dtype=policy)
        self.hidden = _dense(hidden_units, "relu", name="decoder_hidden", dtype=policy)
        self.logits_layer = _dense(NUM_ACTIONS, name="decoder_logits", dtype=policy)
        self.drop = keras.layers.Dropout(dropout, dtype=policy) if dropout else None
        # The compiled decoders, by decoding; in __dict__, out of Keras's and the SavedModel's tracking.
        self.__dict__["_align_functions"] = {}

    @property
    def input_widths(self) -> tuple[int, int]:
        """The (clip, text) feature widths the model takes."""
        return self.clip_dim, self.text_dim

    @property
    def encoder_widths(self) -> tuple[int, int]:
        """The widths the encoder reads: after the in-graph projection, if any."""
        return (self.units if self.clip_projection else self.clip_dim,
                self.units if self.text_projection else self.text_dim)

    # ------------------------------------------------------------------ build
    def build(self, input_shape=None):
        clip_dim, text_dim = self.encoder_widths
        encoded = self.units
        self.encoder.build(((None, clip_dim), (None, text_dim)))
        for cells, dim in ((self.video_cells, encoded), (self.text_cells, encoded),
                           (self.action_cells, NUM_ACTIONS), (self.matched_cells, 2 * self.units)):
            for cell in cells:
                cell.build((None, dim))
                dim = cell.units
        for norm in (self.video_norm, self.text_norm):
            if norm is not None:
                norm.build((None, None, self.units))
        for source, heads in self.similarity_heads.items():
            widths = (clip_dim, text_dim) if source == "input" else (encoded, encoded)
            for head, width in zip(heads, widths):
                head.build((None, width))
        if self.input_norms:
            for norm, width in zip(self.input_norms, (clip_dim, text_dim)):
                norm.build((None, None, width))
        self.hidden.build((None, self.feature_dim))
        self.logits_layer.build((None, self.hidden_units))
        self.built = True

    @property
    def feature_dim(self):
        """Width of the classifier input: [v, s, (action, matched), p, (similarities)]."""
        history = self.action_units + self.matched_units if self.history else 0
        similarity = NUM_SIMILARITY_FEATURES * len(self.similarity_heads)
        stacks = 2 * self.units if self.stack_features else 0
        return stacks + history + NUM_POSITION_FEATURES[self.position] + similarity

    # ----------------------------------------------------------------- stacks
    def encode_stacks(self, inputs, training=False):
        """Video- and text-stack outputs [B, T, units], before and after normalization."""
        clips = tf.cast(inputs["clip_features"], self.compute_dtype)
        texts = tf.cast(inputs["text_features"], self.compute_dtype)
        if self.clip_projection is not None:
            clips = self.clip_projection(clips)
        if self.text_projection is not None:
            texts = self.text_projection(texts)
        similarities = {}
        if self.input_norms:
            clip_mask = tf.sequence_mask(inputs["clip_lengths"], tf.shape(clips)[1])
            text_mask = tf.sequence_mask(inputs["text_lengths"], tf.shape(texts)[1])
            standardized = (self.input_norms[0](clips, mask=clip_mask, training=training),
                            self.input_norms[1](texts, mask=text_mask, training=training))
            similarities["input"] = self.similarity(self.similarity_heads["input"], *standardized, inputs)
        clips, texts = self.encoder((clips, texts), training=training)
        if "encoder" in self.similarity_heads:
            similarities["encoder"] = self.similarity(self.similarity_heads["encoder"], clips, texts, inputs)
        video_raw = run_stack(self.video_cells, clips)
        text_raw = run_stack(self.text_cells, texts)
        video, text = video_raw, text_raw
        if self.video_norm is not None:
            clip_mask = tf.sequence_mask(inputs["clip_lengths"], tf.shape(video_raw)[1])
            text_mask = tf.sequence_mask(inputs["text_lengths"], tf.shape(text_raw)[1])
            video = self.video_norm(video_raw, mask=clip_mask, training=training)
            text = self.text_norm(text_raw, mask=text_mask, training=training)
        if "stacks" in self.similarity_heads:
            similarities["stacks"] = self.similarity(self.similarity_heads["stacks"], video, text, inputs)
        if self.stack_drop is not None:
            video, text = self.stack_drop(video, training=training), self.stack_drop(text, training=training)
        stacks = {"video": video, "text": text, "video_raw": video_raw, "text_raw": text_raw,
                  "clip_lengths": tf.cast(inputs["clip_lengths"], tf.int32),
                  "text_lengths": tf.cast(inputs["text_lengths"], tf.int32)}
        if similarities:
            stacks["similarities"] = similarities
            stacks["similarity_maps"] = padded_similarity_maps(similarities)
        return stacks

    @staticmethod
    def similarity(heads, clips, texts, inputs):
        """Cosine similarity [B, T_v, T_s] (natural order) in a joint embedding,
        from reversed clip and text sequences; 0 at padding positions."""
        clip_head, text_head = heads
        clip_mask = tf.sequence_mask(inputs["clip_lengths"], tf.shape(clips)[1], dtype=clips.dtype)[:, :, None]
        text_mask = tf.sequence_mask(inputs["text_lengths"], tf.shape(texts)[1], dtype=texts.dtype)[:, :, None]
        clips = tf.math.l2_normalize(to_natural(clip_head(clips), inputs["clip_lengths"]), axis=-1) * clip_mask
        texts = tf.math.l2_normalize(to_natural(text_head(texts), inputs["text_lengths"]), axis=-1) * text_mask
        return tf.matmul(clips, texts, transpose_b=True)

    # ---------------------------------------------------------------- decoder
    def initial_state(self, stacks):
        batch, dtype = tf.shape(stacks["video"])[0], stacks["video"].dtype
        zeros = lambda units: tf.zeros([batch, units], dtype)
        action = [zeros(self.action_units) for _ in range(4)] if self.history else []
        matched = [zeros(self.matched_units) for _ in range(4)] if self.history else []
        return {
            "clip_cursor": stacks["clip_lengths"] - 1,
            "text_cursor": stacks["text_lengths"] - 1,
            "action": action,
            "matched": matched,
            "saved": [tf.identity(m) for m in matched],
            "match_sum": zeros(self.units),
            "match_count": tf.zeros([batch], dtype),
            "done": tf.zeros([batch], tf.bool),
        }

    def step_features(self, state, stacks):
        """Classifier input at the current cursors, and the stack tops v, s."""
        v = tf.gather(stacks["video"], state["clip_cursor"], batch_dims=1)
        s = tf.gather(stacks["text"], state["text_cursor"], batch_dims=1)
        p = tf.cast(POSITION_FUNCTIONS[self.position](state["clip_cursor"], state["text_cursor"],
                                                      stacks["clip_lengths"], stacks["text_lengths"]), v.dtype)
        parts = [v, s] if self.stack_features else []
        if self.history:
            parts += [state["action"][0] + state["action"][2], state["matched"][0] + state["matched"][2]]  # h1 + h2
        parts.append(p)
        if self.similarity_units:
            parts.append(window_features(stacks["similarity_maps"], stacks["clip_lengths"] - 1 - state["clip_cursor"],
                                         stacks["text_lengths"] - 1 - state["text_cursor"]))
        return tf.concat(parts, axis=-1), v, s

    def lattice_logits(self, stacks):
        """Logits [B, T_v, T_s, 3] at every node (i, j) of the lattice, natural
        order (i clips and j texts consumed), for a decoder without history.

        The same classifier as ``step_features`` + ``classify``, with its first
        layer split by input block, so that [v_i, s_j, p_ij, sim_ij] is never
        concatenated: hidden = relu(W_v v_i + W_s s_j + W_p p_ij + W_sim sim_ij + b),
        computed a block of rows at a time (model/lattice_classifier.py).
        """
        if self.history:
            raise ValueError("lattice_logits needs a decoder without history (history=False)")
        if self.drop is not None:
            raise ValueError("lattice_logits: decoder dropout is per step; use stack_dropout with the lattice")
        clip_lengths, text_lengths = stacks["clip_lengths"], stacks["text_lengths"]
        video, text = to_natural(stacks["video"], clip_lengths), to_natural(stacks["text"], text_lengths)
        dtype = video.dtype
        kernel = tf.cast(self.hidden.kernel, dtype)
        units = self.units if self.stack_features else 0
        positions = NUM_POSITION_FEATURES[self.position]
        columns = tf.cast(self.hidden.bias, dtype) * tf.ones_like(text[:, :, :1])
        rows = None  # without stack features (the model checks it has similarities then)
        if self.stack_features:
            rows = tf.matmul(video, kernel[:units])
            columns += tf.matmul(text, kernel[units:2 * units])
        return lattice_classifier.lattice_logits(
            rows, columns, stacks.get("similarity_maps"), clip_lengths, text_lengths,
            POSITION_FUNCTIONS[self.position], kernel[2 * units:2 * units + positions],
            kernel[2 * units + positions:] if self.similarity_units else None,
            tf.cast(self.logits_layer.kernel, dtype), tf.cast(self.logits_layer.bias, dtype),
            window=len(WINDOW_OFFSETS))

    def exact_path(self, inputs):
        """The exact best action path (model/lattice.py) of a decoder without history, on
        reversed inputs: {"actions", "num_actions", "clip_to_text", "score", "probabilities"}."""
        stacks = self.encode_stacks(inputs, training=False)
        log_probs = tf.nn.log_softmax(tf.cast(self.lattice_logits(stacks), tf.float32))
        out = best_path(log_probs, stacks["clip_lengths"], stacks["text_lengths"])
        out["probabilities"] = paths.probabilities_along(log_probs, out["actions"], out["num_actions"],
                                                         stacks["clip_lengths"], stacks["text_lengths"])
        return out

    def training_outputs(self, inputs, training=False):
        """What the losses need: teacher-forced ``logits`` [B, L, 3], and for a
        decoder without history ``lattice_logits``; ``similarity`` when the
        joint embedding is on."""
        stacks = self.encode_stacks(inputs, training=training)
        outputs = {}
        if self.history:
            from tfalign.model import decoding

            outputs["logits"] = decoding.teacher_forced_logits(self, stacks, inputs["actions"], training=training)
        else:  # the teacher-forced steps are lattice nodes: gather them
            lattice = tf.cast(self.lattice_logits(stacks), tf.float32)
            clips, texts = paths.path_nodes(inputs["actions"], stacks["clip_lengths"], stacks["text_lengths"])
            outputs["logits"] = tf.gather_nd(lattice, tf.stack([clips, texts], axis=-1), batch_dims=1)
            outputs["lattice_logits"] = lattice
        if "similarities" in stacks:
            outputs["similarities"] = {k: tf.cast(v, tf.float32) for k, v in stacks["similarities"].items()}
        outputs["logits"] = tf.cast(outputs["logits"], tf.float32)
        return outputs

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
        pops_clip = tf.logical_not(is_pop_text)
        finishes = tf.where(is_pop_text, tf.equal(state["text_cursor"], 0), tf.equal(state["clip_cursor"], 0))
        cursors = {
            "clip_cursor": tf.maximum(state["clip_cursor"] - tf.cast(pops_clip, tf.int32), 0),
            "text_cursor": tf.maximum(state["text_cursor"] - tf.cast(is_pop_text, tf.int32), 0),
            "done": state["done"] | finishes,
        }
        if not self.history:
            return {**state, **cursors}

        new_action = self._two_layer_step(self.action_cells, tf.one_hot(action, NUM_ACTIONS), state["action"])

        # Matched stack: one entry per matched text. The first match of a text
        # saves the state and pushes; a further match restores that saved state
        # first, then pushes, so the entry is replaced rather than stacked.
        match_sum = state["match_sum"] + tf.where(match_col, v, tf.zeros_like(v))
        match_count = state["match_count"] + tf.cast(is_match, state["match_count"].dtype)
        first_match = is_match & tf.equal(state["match_count"], 0.0)
        saved = [tf.where(first_match[:, None], m, old) for m, old in zip(state["matched"], state["saved"])]
        mean = match_sum / tf.maximum(match_count, 1.0)[:, None]
        pushed = self._two_layer_step(self.matched_cells, tf.concat([mean, s], axis=-1), saved)
        matched = [tf.where(match_col, new, old) for new, old in zip(pushed, state["matched"])]

        return {
            **cursors,
            "action": new_action,
            "matched": matched,
            "saved": saved,
            "match_sum": tf.where(is_pop_text[:, None], tf.zeros_like(match_sum), match_sum),
            "match_count": tf.where(is_pop_text, tf.zeros_like(match_count), match_count),
        }

    # ------------------------------------------------------------------- call
    def call(self, inputs, training=False):
        """Teacher-forced logits [B, L, 3] of ``inputs["actions"]`` (padding: any action)."""
        from tfalign.model import decoding

        if "actions" not in inputs:
            raise ValueError("NeuMatchAligner.call needs inputs['actions'] (teacher forcing); align() decodes")
        stacks = self.encode_stacks(inputs, training=training)
        return tf.cast(decoding.teacher_forced_logits(self, stacks, inputs["actions"], training=training), tf.float32)

    def greedy_path(self, inputs):
        """The greedy alignment of reversed inputs: {"actions", "num_actions",
        "probabilities"} (model/decoding.py); ``complete_greedy`` adds the rest."""
        from tfalign.model import decoding

        return decoding.greedy(self, self.encode_stacks(inputs, training=False))

    @staticmethod
    def complete_greedy(out, clip_lengths, max_clips):
        """A greedy path's outputs with what the exact path gives too: ``clip_to_text``
        [B, max_clips] and ``score``, the log-probability of the actions taken."""
        return {**out, "clip_to_text": paths.alignment_from_actions(out["actions"], out["num_actions"], clip_lengths,
                                                                     max_clips),
                "score": paths.greedy_score(out["probabilities"], out["actions"], out["num_actions"])}

    # --------------------------------------------------------------- decoding
    def make_align_function(self, decoding="greedy", xla=True, bucket=64):
        """The compiled decoder for ``align`` (built once per decoding, then cached).

        Greedy: XLA compiles the decoder's while loop into one kernel (about 2.5x
        faster on CPU), but once per input shape; the time axes are therefore
        padded to a multiple of ``bucket`` first, which changes nothing (padding
        follows the valid positions and the loop stops on the true lengths) and
        bounds the compilations. The padding runs eagerly: called from inside
        another tf.function with unknown shapes, TF 2.21's XLA path aborted the
        process here. Exact: the best path over the lattice (model/lattice.py).
        """
        key = (decoding, xla, bucket)
        if key in self._align_functions:
            return self._align_functions[key]
        compiled = self.compiled_decoder(decoding, xla)

        def align_function(inputs):
            missing = [k for k in INPUT_KEYS if k not in inputs]
            if missing:
                raise ValueError(f"align: the inputs have no {missing[0]!r} (they need {list(INPUT_KEYS)})")
            clip_lengths = tf.cast(tf.convert_to_tensor(inputs["clip_lengths"]), tf.int32)
            text_lengths = tf.cast(tf.convert_to_tensor(inputs["text_lengths"]), tf.int32)
            clips = tf.convert_to_tensor(inputs["clip_features"], tf.float32)
            texts = tf.convert_to_tensor(inputs["text_features"], tf.float32)
            # The network reads each sequence last-to-first (reversing is its own inverse).
            reversed_inputs = {"clip_features": to_natural(clips, clip_lengths),
                               "text_features": to_natural(texts, text_lengths),
                               "clip_lengths": clip_lengths, "text_lengths": text_lengths}
            if decoding == "exact":
                return compiled(reversed_inputs)
            if xla:
                reversed_inputs["clip_features"] = pad_time(reversed_inputs["clip_features"], bucket)
                reversed_inputs["text_features"] = pad_time(reversed_inputs["text_features"], bucket)
            return self.complete_greedy(compiled(reversed_inputs), clip_lengths, tf.shape(clips)[1])

        self._align_functions[key] = align_function
        return align_function

    def compiled_decoder(self, decoding="greedy", xla=True):
        """The tf.function of ``greedy_path`` (XLA-compiled per input shape) or
        ``exact_path``, on reversed inputs; callers pad the time axes to a few bucket
        sizes first (``make_align_function`` eagerly, the SavedModel's signatures in the graph)."""
        if decoding not in DECODINGS:
            raise ValueError(f"decoding: expected one of {list(DECODINGS)}, got {decoding!r}")
        key = ("compiled", decoding, xla and decoding == "greedy")
        if key not in self._align_functions:
            # One trace for any shape, but XLA's: it compiles per shape (padded to buckets).
            signature = [{"clip_features": tf.TensorSpec([None, None, self.clip_dim], tf.float32),
                          "text_features": tf.TensorSpec([None, None, self.text_dim], tf.float32),
                          "clip_lengths": tf.TensorSpec([None], tf.int32),
                          "text_lengths": tf.TensorSpec([None], tf.int32)}]
            if decoding == "exact":
                if self.history:
                    raise ValueError("decoding: 'exact' needs a decoder without history (history=False)")
                self._align_functions[key] = tf.function(self.exact_path, input_signature=signature)
            elif xla:
                self._align_functions[key] = tf.function(self.greedy_path, jit_compile=True)
            else:
                self._align_functions[key] = tf.function(self.greedy_path, input_signature=signature)
        return self._align_functions[key]

    def align(self, inputs, decoding="greedy"):
        """Decodes padded batches in natural order, as the SavedModel's signatures take them.

        Args:
            inputs: a dict of ``clip_features`` [B, T_v, D_v], ``text_features``
                [B, T_s, D_s] (zero-padded after each row's length),
                ``clip_lengths`` and ``text_lengths`` [B].
            decoding: "greedy" (the paper's) or "exact" (the best complete path
                over the lattice; a decoder without history).

        Returns:
            A dict of tensors, the same for both decodings: ``actions`` [B, L]
            (-1 after a row's end), ``num_actions`` [B], ``clip_to_text``
            [B, T_v] (-1 = unmatched), ``score`` [B] (the path's log-probability)
            and ``probabilities`` [B, L, 3] (the decoder's at each step taken).
        """
        return self.make_align_function(decoding)(inputs)

    def get_config(self):
        """The constructor's arguments on top of Keras's own (name, trainable, dtype policy)."""
        return {
            **super().get_config(),
            "encoder": self.encoder_kind, "normalization": self.normalization, "units": self.units,
            "action_units": self.action_units, "matched_units": self.matched_units,
            "hidden_units": self.hidden_units, "dropout": self.dropout_rate,
            "encoder_dropout": self.encoder_dropout, "clip_dim": self.clip_dim, "text_dim": self.text_dim,
            "projection_seed": self.projection_seed,
            "history": self.history, "position": self.position, "similarity_units": self.similarity_units,
            "stack_dropout": self.stack_dropout, "similarity_source": self.similarity_source,
            "stack_features": self.stack_features,
        }

    def build_from_config(self, config):
        """A reloaded model (``keras.models.load_model``) builds itself: the widths are in its config."""
        self.build()
