"""NeuMATCH (Dogan et al., CVPR 2018) as the paper's code builds it (docs/network.md).

The paper's figure, top to bottom: the feature encoders, the video and text
LSTM stacks (sequence-wise batch normalization after them, or layer-norm cells
in them), and the decoder, whose classifier reads the stack tops at two
cursors (with, in the paper, the action and matched stacks: the decoder's
history, model/decoding.py) and chooses POP_CLIP, POP_TEXT or MATCH.

Inputs are padded batches whose sequences are *reversed* (position 0 holds the
last clip or text; tfalign.data.batching), so the recurrent state at a
position summarizes everything that remains from there on. ``align`` takes
natural order, as the SavedModel does, and reverses inside.

Beyond the paper (docs/recipe.md; every option off by default, so the paper's
experiments build exactly the paper's network):
- ``history=False``: the classifier sees only what the two cursors point at,
  so every node of the (clip, text) lattice can be scored at once
  (``lattice_logits``) and decoded exactly (model/lattice.py);
- ``position="normalized"``: the remaining fractions a/V and c/S only;
- ``similarity_units``, ``similarity_source``: a joint embedding of three views
  of the elements (layers/joint_embedding.py), whose similarities around the
  cursors feed the classifier;
- ``stack_features=False``: the classifier does not read the stack tops v, s;
- ``stack_dropout``: dropout on the stack outputs the decoder reads;
- ``dtw_start``: the lattice's scores are the DTW baseline's own (the ridge
  similarity, the tuned drop cost) plus learned corrections that are zero at
  the start, the network's classifier among them behind a gate
  (layers/dtw_potentials.py); trained as a CRF, decoded exactly.
"""

import keras
import tensorflow as tf

from tfalign.data.features import feature_widths
from tfalign.data.oracle import NUM_ACTIONS
from tfalign.layers import (DTWPotentials, FeatureEncoder, FixedProjection, LayerNormLSTMCell,
                            SequenceBatchNormalization, StackLSTMCell)
from tfalign.layers.initializers import dense
from tfalign.layers.joint_embedding import JointEmbedding
from tfalign.layers.recurrence import run_stack
from tfalign.layers.ridge_similarity import RidgeSimilarity
from tfalign.layers.tracking import CheckpointedCollections
from tfalign.model import lattice_classifier, paths
from tfalign.model.decoding import DecodingMixin, teacher_forced_logits
from tfalign.model.classifier_inputs import (NUM_POSITION_FEATURES, NUM_SIMILARITY_FEATURES, POSITIONS,
                                             padded_similarity_maps)
from tfalign.model.objective import LossWeights, alignment_loss

NORMALIZATIONS = ("none", "sbn", "2ln", "4ln")
# Where the joint embeddings read: the input features (SBN-standardized, linear
# heads: a ridge-like map that cannot memorise), the encoded elements, the stack outputs.
SIMILARITY_SOURCES = {"input": ("input",), "encoder": ("encoder",), "stacks": ("stacks",),
                      "both": ("encoder", "stacks"), "all": ("input", "encoder", "stacks")}


@keras.saving.register_keras_serializable("tfalign")
class NeuMatchAligner(CheckpointedCollections, DecodingMixin, keras.Model):
    """The aligner: ``call`` gives the teacher-forced logits [B, L, 3] of the inputs' ``actions``;
    ``align`` decodes (greedy, or exactly without history), compiled once per decoding."""

    def __init__(self, encoder="rp", normalization="none", units=300, action_units=8, matched_units=20,
                 hidden_units=300, dropout=0.0, encoder_dropout=0.0, clip_dim=None, text_dim=None,
                 projection_seed=0, history=True, position="paper", similarity_units=0, stack_dropout=0.0,
                 similarity_source="encoder", stack_features=True, ridge_similarity=False, dtw_start=False,
                 **kwargs):
        super().__init__(**kwargs)
        _check_arguments(normalization=normalization, position=position, similarity_source=similarity_source,
                         stack_features=stack_features, similarity_units=similarity_units, dtw_start=dtw_start,
                         history=history)
        self.encoder_kind, self.normalization = encoder, normalization
        # Not "history": Keras sets model.history when fit() runs.
        self.decoder_history, self.position = bool(history), position
        self.units, self.action_units, self.matched_units = units, action_units, matched_units
        self.hidden_units = hidden_units
        self.dropout_rate, self.encoder_dropout, self.stack_dropout = dropout, encoder_dropout, stack_dropout
        self.similarity_units, self.similarity_source = int(similarity_units), similarity_source
        self.stack_features, self.projection_seed = bool(stack_features), int(projection_seed)
        default_clip, default_text = feature_widths(encoder)
        self.clip_dim, self.text_dim = int(clip_dim or default_clip), int(text_dim or default_text)

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
        if self.decoder_history:
            self.action_cells = [small_cell(action_units, name=f"action_stack_{i}", dtype=policy) for i in (1, 2)]
            self.matched_cells = [small_cell(matched_units, name=f"matched_stack_{i}", dtype=policy) for i in (1, 2)]
        self.joint_embedding = None
        if self.similarity_units:
            self.joint_embedding = JointEmbedding(self.similarity_units, SIMILARITY_SOURCES[similarity_source],
                                                  name="joint_embedding", dtype=policy)
        # The DTW baseline's similarity, fitted on the training videos' input features: a fixed
        # channel of the classifier's window (ridge_similarity), the base of the lattice scores (dtw_start).
        self.ridge_channel, self.dtw_start = bool(ridge_similarity), bool(dtw_start)
        self.ridge = (RidgeSimilarity(name="ridge_similarity", dtype=policy) if ridge_similarity or dtw_start
                      else None)
        self.potentials = DTWPotentials(name="dtw_potentials") if dtw_start else None
        self.stack_drop = keras.layers.Dropout(stack_dropout, dtype=policy) if stack_dropout else None
        self.video_norm = self.text_norm = None
        if normalization == "sbn":
            self.video_norm = SequenceBatchNormalization(name="video_stack_sbn", dtype=policy)
            self.text_norm = SequenceBatchNormalization(name="text_stack_sbn", dtype=policy)
        self.hidden = dense(hidden_units, "relu", name="decoder_hidden", dtype=policy)
        self.logits_layer = dense(NUM_ACTIONS, name="decoder_logits", dtype=policy)
        self.drop = keras.layers.Dropout(dropout, dtype=policy) if dropout else None
        self.__dict__["_align_functions"] = {}  # the compiled decoders (model/decoding.py), untracked

    @property
    def input_widths(self) -> tuple[int, int]:
        """The (clip, text) feature widths the model takes."""
        return self.clip_dim, self.text_dim

    @property
    def encoder_widths(self) -> tuple[int, int]:
        """The widths the encoder reads: after the in-graph projection, if any."""
        return (self.units if self.clip_projection else self.clip_dim,
                self.units if self.text_projection else self.text_dim)

    @property
    def feature_dim(self):
        """Width of the classifier input: [v, s, (action, matched), p, (similarities)]."""
        history = self.action_units + self.matched_units if self.decoder_history else 0
        sources = (len(SIMILARITY_SOURCES[self.similarity_source]) if self.similarity_units else 0) + \
            self.ridge_channel
        stacks = 2 * self.units if self.stack_features else 0
        return stacks + history + NUM_POSITION_FEATURES[self.position] + NUM_SIMILARITY_FEATURES * sources

    def build(self, input_shape=None):
        # The order of the builds is the order of the random initializations: keep it.
        clip_dim, text_dim = self.encoder_widths
        self.encoder.build(((None, clip_dim), (None, text_dim)))
        for cells, dim in ((self.video_cells, self.units), (self.text_cells, self.units),
                           (self.action_cells, NUM_ACTIONS), (self.matched_cells, 2 * self.units)):
            for cell in cells:
                cell.build((None, dim))
                dim = cell.units
        for norm in (self.video_norm, self.text_norm):
            if norm is not None:
                norm.build((None, None, self.units))
        if self.joint_embedding is not None:
            self.joint_embedding.build({"input": (clip_dim, text_dim), "encoder": (self.units,) * 2,
                                        "stacks": (self.units,) * 2})
        if self.ridge is not None:  # no random draw: its weights start at zero; it reads the raw inputs
            self.ridge.build(self.input_widths)
        self.hidden.build((None, self.feature_dim))
        self.logits_layer.build((None, self.hidden_units))
        if self.potentials is not None:  # no random draw either
            self.potentials.build()
        self.built = True

    def build_from_config(self, config):
        self.build()  # a reloaded model (keras.models.load_model) builds itself: the widths are in its config

    # ----------------------------------------------------------------- stacks
    @property
    def compiles_stacks(self) -> bool:
        """Whether decoding XLA-compiles the stacks' loops (plain LSTM cells: layers/recurrence.py)."""
        return all(isinstance(cell, StackLSTMCell) for cell in (*self.video_cells, *self.text_cells))

    def encode_stacks(self, inputs, training=False, compiled=False):
        """Video- and text-stack outputs [B, T, units] (before and after normalization), the
        lengths, and with the joint embedding its similarities and their padded maps.
        ``compiled`` (decoding: no gradient): the stacks' loops XLA-compiled per length bucket."""
        lengths = (inputs["clip_lengths"], inputs["text_lengths"])
        clips = tf.cast(inputs["clip_features"], self.compute_dtype)
        texts = tf.cast(inputs["text_features"], self.compute_dtype)
        ridge = None
        if self.ridge is not None:  # on the input features, as the DTW baseline (cross-fitted by fold in training)
            ridge = self.ridge(inputs["clip_features"], inputs["text_features"], *lengths, folds=inputs.get("fold"))
        if self.clip_projection is not None:
            clips = self.clip_projection(clips)
        if self.text_projection is not None:
            texts = self.text_projection(texts)
        similarities = {}
        sources = SIMILARITY_SOURCES[self.similarity_source] if self.similarity_units else ()

        def similar(source, clip_side, text_side):  # a channel of similarity features, if the source has heads
            if source in sources:
                similarities[source] = self.joint_embedding(clip_side, text_side, *lengths, source=source,
                                                            training=training)

        similar("input", clips, texts)
        if self.ridge_channel:
            similarities["ridge"] = ridge
        clips, texts = self.encoder((clips, texts), training=training)
        similar("encoder", clips, texts)
        video_raw = run_stack(self.video_cells, clips, compiled=compiled and not training)
        text_raw = run_stack(self.text_cells, texts, compiled=compiled and not training)
        video, text = video_raw, text_raw
        if self.video_norm is not None:
            video = self.video_norm(video_raw, mask=tf.sequence_mask(lengths[0], tf.shape(video_raw)[1]),
                                    training=training)
            text = self.text_norm(text_raw, mask=tf.sequence_mask(lengths[1], tf.shape(text_raw)[1]),
                                  training=training)
        similar("stacks", video, text)
        if self.stack_drop is not None:
            video, text = self.stack_drop(video, training=training), self.stack_drop(text, training=training)
        stacks = {"video": video, "text": text, "video_raw": video_raw, "text_raw": text_raw,
                  "clip_lengths": tf.cast(lengths[0], tf.int32), "text_lengths": tf.cast(lengths[1], tf.int32)}
        if similarities:
            stacks.update(similarities=similarities, similarity_maps=padded_similarity_maps(similarities))
        if ridge is not None:
            stacks["ridge"] = ridge
        return stacks

    # ---------------------------------------------------------------- decoder
    def classify(self, features, training=False):
        """The decoder's classifier: logits [..., 3] of its input features (dropout before each layer)."""
        drop = (lambda x: self.drop(x, training=training)) if self.drop is not None else (lambda x: x)
        return self.logits_layer(drop(self.hidden(drop(features))))

    def lattice_logits(self, stacks):
        """Logits [B, T_v, T_s, 3] at every node (i, j) of the lattice (natural order: i
        clips and j texts consumed), for a decoder without history: the classifier of
        ``decoding.step_features`` + ``classify``, a block of rows at a time
        (model/lattice_classifier.py)."""
        if self.decoder_history:
            raise ValueError("lattice_logits needs a decoder without history (history=False)")
        if self.drop is not None:
            raise ValueError("lattice_logits: decoder dropout is per step; use stack_dropout with the lattice")
        return lattice_classifier.of_model(self, stacks)

    def lattice_scores(self, stacks, lattice_logits=None):
        """The scores [B, T_v, T_s, 3] (float32) exact decoding maximizes and the CRF
        normalizes: the classifier's log-probabilities, or with ``dtw_start`` the DTW
        baseline's scores plus the learned corrections, the classifier's behind a gate."""
        if lattice_logits is None:
            lattice_logits = self.lattice_logits(stacks)
        log_probs = tf.nn.log_softmax(tf.cast(lattice_logits, tf.float32))
        if self.potentials is None:
            return log_probs
        return self.potentials(stacks["ridge"], stacks["clip_lengths"], stacks["text_lengths"], residual=log_probs)

    def start_distance(self):
        """How far the lattice's learned corrections are from the DTW start (L2-SP); 0 without ``dtw_start``."""
        return self.potentials.start_distance() if self.potentials is not None else tf.constant(0.0)

    # ------------------------------------------------------------- training
    def call(self, inputs, training=False):
        """Teacher-forced logits [B, L, 3] of ``inputs["actions"]`` (padding: any action)."""
        if "actions" not in inputs:
            raise ValueError("NeuMatchAligner.call needs inputs['actions'] (teacher forcing); align() decodes")
        stacks = self.encode_stacks(inputs, training=training)
        return tf.cast(teacher_forced_logits(self, stacks, inputs["actions"], training=training), tf.float32)

    def compile(self, optimizer="adam", terms: LossWeights | None = None, **kwargs):
        """Keras's ``compile`` with the aligner's own loss; ``terms`` (model/objective.py) weighs its parts."""
        super().compile(optimizer=optimizer, **kwargs)
        self.__dict__["_loss_terms"] = terms or LossWeights()

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """``fit``'s loss on a labelled batch ``x``: ``alignment_loss``, its path term from ``y_pred``
        (the lattice and contrastive terms recompute what they need; the trainer does not)."""
        terms = self.__dict__.get("_loss_terms") or LossWeights()
        outputs = {"logits": y_pred}
        if terms.lattice_weight or terms.contrastive_weight:
            outputs = self.training_outputs(x, training=training)
        return alignment_loss(outputs, x, terms)

    def training_outputs(self, inputs, training=False):
        """What the losses need: teacher-forced ``logits`` [B, L, 3], and for a
        decoder without history ``lattice_logits`` (the classifier's; ``logits`` are
        them along the path) and ``lattice_scores`` (what the CRF normalizes);
        ``similarities`` when the joint embedding is on."""
        stacks = self.encode_stacks(inputs, training=training)
        outputs = {}
        if self.decoder_history:
            outputs["logits"] = teacher_forced_logits(self, stacks, inputs["actions"], training=training)
        else:  # the teacher-forced steps are lattice nodes: gather them
            lattice = tf.cast(self.lattice_logits(stacks), tf.float32)
            scores = self.lattice_scores(stacks, lattice)
            clips, texts = paths.path_nodes(inputs["actions"], stacks["clip_lengths"], stacks["text_lengths"])
            outputs["logits"] = tf.gather_nd(lattice, tf.stack([clips, texts], axis=-1), batch_dims=1)
            outputs["lattice_logits"], outputs["lattice_scores"] = lattice, scores
        if self.similarity_units:  # the learned ones (the contrastive loss's), not the fixed ridge channel
            outputs["similarities"] = {k: tf.cast(v, tf.float32) for k, v in stacks["similarities"].items()
                                       if k != "ridge"}
        outputs["logits"] = tf.cast(outputs["logits"], tf.float32)
        return outputs

    def get_config(self):
        """The constructor's arguments on top of Keras's own (name, trainable, dtype policy)."""
        return {**super().get_config(), "encoder": self.encoder_kind, "normalization": self.normalization,
                "units": self.units, "action_units": self.action_units, "matched_units": self.matched_units,
                "hidden_units": self.hidden_units, "dropout": self.dropout_rate,
                "encoder_dropout": self.encoder_dropout,
                "clip_dim": self.clip_dim, "text_dim": self.text_dim, "projection_seed": self.projection_seed,
                "history": self.decoder_history, "position": self.position, "similarity_units": self.similarity_units,
                "stack_dropout": self.stack_dropout, "similarity_source": self.similarity_source,
                "stack_features": self.stack_features, "ridge_similarity": self.ridge_channel,
                "dtw_start": self.dtw_start}


def _check_arguments(normalization, position, similarity_source, stack_features, similarity_units, dtw_start,
                     history) -> None:
    for name, value, choices in (("normalization", normalization, NORMALIZATIONS), ("position", position, POSITIONS),
                                 ("similarity_source", similarity_source, tuple(SIMILARITY_SOURCES))):
        if value not in choices:
            raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
    if not stack_features and not similarity_units:
        raise ValueError("stack_features=False needs similarity features (similarity_units > 0)")
    if dtw_start and history:
        raise ValueError("dtw_start needs a decoder without history (history=False)")
