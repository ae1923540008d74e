"""What every way of aligning shares, as keras-hub's ``Task``: ``AlignerTask``.

A task holds a ``NeuMatchBackbone`` (model/backbone.py) and a decoder on top of
its stacks: a classifier that reads the stack tops at two cursors, the
positions and the similarities around them, and chooses POP_CLIP, POP_TEXT or
MATCH. The subclasses are the ways of aligning: ``NeuMatchAligner`` (the paper's
decoder, with history; greedy) and ``LatticeAligner`` (a decoder that reads only
its cursors, scored at every node of the lattice and decoded exactly; with
``dtw_start`` the lattice CRF that starts where DTW ends). Each owns its loss's
outputs (``training_outputs``) and its paths (``greedy_path``, ``exact_path``);
``align`` is the one way in for every caller (model/decoding.py).
"""

import keras
import tensorflow as tf

from tfalign.data.classical import cross_fitted_maps, fold_of
from tfalign.data.decoding_choice import Decoding
from tfalign.data.oracle import NUM_ACTIONS
from tfalign.layers.initializers import dense
from tfalign.layers.tracking import CheckpointedCollections
from tfalign.model.backbone import NeuMatchBackbone
from tfalign.model.classifier_inputs import (NUM_POSITION_FEATURES, NUM_SIMILARITY_FEATURES, POSITIONS,
                                             padded_similarity_maps)
from tfalign.model.decoding import align_function, compiled_decoder, teacher_forced_logits
from tfalign.model.objective import LossWeights, alignment_loss


class AlignerTask(CheckpointedCollections, keras.Model):
    """A backbone and a decoder's classifier; subclasses say how they decode and train.

    Args:
        backbone: a ``NeuMatchBackbone``.
        position: the classifier's position features: "paper" (ten) or "normalized"
            (the remaining fractions a/V and c/S).
        stack_features: whether the classifier reads the stack tops v, s.
        hidden_units: the width of the classifier's hidden layer.
        dropout: dropout before each layer of the classifier.
        ridge_channel: whether the classifier reads the backbone's ridge similarity
            around the cursors (beside the joint embedding's).
    """

    decoder_history = False  # whether the decoder keeps the paper's action and matched stacks
    dtw_start = False  # whether the lattice's scores start at the DTW baseline's (a CRF)

    def __init__(self, backbone, position="paper", stack_features=True, hidden_units=300, dropout=0.0,
                 ridge_channel=False, **kwargs):
        check_backbone(backbone)
        super().__init__(**kwargs)
        if position not in POSITIONS:
            raise ValueError(f"position must be one of {list(POSITIONS)}, got {position!r}")
        if not stack_features and not backbone.similarity_units:
            raise ValueError("stack_features=False needs similarity features (similarity_units > 0)")
        if ridge_channel and backbone.ridge is None:
            raise ValueError("ridge_channel needs a backbone with the ridge similarity (ridge_similarity=True)")
        self.backbone = backbone
        self.position, self.stack_features, self.ridge_channel = position, bool(stack_features), bool(ridge_channel)
        self.hidden_units, self.dropout_rate = int(hidden_units), dropout
        self.__dict__["_align_functions"] = {}  # the compiled decoders (model/decoding.py), untracked

    def _classifier_layers(self):
        """The classifier, made after the subclass's own layers (the order of the random draws)."""
        policy = self.dtype_policy
        self.hidden = dense(self.hidden_units, "relu", name="decoder_hidden", dtype=policy)
        self.logits_layer = dense(NUM_ACTIONS, name="decoder_logits", dtype=policy)
        self.drop = keras.layers.Dropout(self.dropout_rate, dtype=policy) if self.dropout_rate else None

    # ----------------------------------------------------- the backbone's
    @property
    def input_widths(self) -> tuple[int, int]:
        """The (clip, text) feature widths the model takes."""
        return self.backbone.input_widths

    @property
    def clip_dim(self) -> int:
        return self.backbone.clip_dim

    @property
    def text_dim(self) -> int:
        return self.backbone.text_dim

    @property
    def units(self) -> int:
        return self.backbone.units

    @property
    def similarity_units(self) -> int:
        return self.backbone.similarity_units

    @property
    def compiles_stacks(self) -> bool:
        """Whether decoding XLA-compiles the stacks' loops (plain LSTM cells: layers/recurrence.py)."""
        return self.backbone.compiles_stacks

    @property
    def decodings(self) -> tuple[str, ...]:
        """The decodings this model can run ("greedy", and "exact" without history)."""
        return Decoding.available(self.decoder_history)

    @property
    def feature_dim(self) -> int:
        """Width of the classifier input: [v, s, (action, matched), p, (similarities)]."""
        sources = len(self.backbone.similarity_sources) + self.ridge_channel
        stacks = 2 * self.units if self.stack_features else 0
        return stacks + self.history_width + NUM_POSITION_FEATURES[self.position] + NUM_SIMILARITY_FEATURES * sources

    @property
    def history_width(self) -> int:
        return 0

    def build(self, input_shape=None):
        if not self.backbone.built:  # a deserialized backbone comes built
            self.backbone.build()
        self.build_decoder()
        self.hidden.build((None, self.feature_dim))
        self.logits_layer.build((None, self.hidden_units))
        self.built = True

    def build_decoder(self):
        """Builds the subclass's own layers (before the classifier)."""

    def build_from_config(self, config):
        self.build()  # a reloaded model (keras.models.load_model) builds itself: the widths are in its config

    def encode_stacks(self, inputs, training=False, compiled=False):
        """The backbone's stacks, with the similarities the classifier reads padded into maps
        (``similarity_maps``: the joint embedding's, and the ridge channel)."""
        stacks = self.backbone(inputs, training=training, compiled=compiled)
        similarities = dict(stacks.get("similarities", {}))
        if self.ridge_channel:
            similarities["ridge"] = stacks["ridge"]
        if similarities:
            stacks.update(similarities=similarities, similarity_maps=padded_similarity_maps(similarities))
        return stacks

    # ----------------------------------------------------------- decoder
    def classify(self, features, training=False):
        """The decoder's classifier: logits [..., 3] of its input features (dropout before each layer)."""
        drop = (lambda x: self.drop(x, training=training)) if self.drop is not None else (lambda x: x)
        return self.logits_layer(drop(self.hidden(drop(features))))

    def start_distance(self):
        """How far the learned corrections are from the DTW start (L2-SP); 0 without one."""
        return tf.constant(0.0)

    # ------------------------------------------------------------ start
    def initialize(self, train, val, unlabelled=(), set_start=True) -> tuple[list, dict]:
        """What the model takes from the data before training (Model Garden's
        ``Task.initialize``), at the start of every training session, a resumed one too.

        With the backbone's ridge similarity: one ridge map per cross-fitting fold
        (``data.classical.cross_fitted_maps``: each training video is seen through a
        map fitted without it) and, with ``set_start`` (a run's first session; a resumed
        one has its weights), the ridge map of all of them.

        Args:
            train: the labelled training episodes.
            val: the validation episodes.
            unlabelled: episodes without labels (only a model that starts at DTW reads them).
            set_start: set the weights the closed form gives.

        Returns:
            (the videos to train on, {video id: its cross-fitting fold}; empty without a ridge similarity).
        """
        videos, ridge = list(train), self.backbone.ridge
        if ridge is None:
            return videos, {}
        if not videos:
            raise ValueError("initialize: no training video: give labelled videos, or unlabelled ones to a model "
                             "that starts at DTW")
        ridge.set_fold_maps(cross_fitted_maps(videos))
        if set_start:
            ridge.fit(videos)
        return videos, video_folds(videos)

    # ---------------------------------------------------------- training
    def call(self, inputs, training=False):
        """Teacher-forced logits [B, L, 3] of ``inputs["actions"]`` (padding: any action)."""
        if "actions" not in inputs:
            raise ValueError(f"{type(self).__name__}.call needs inputs['actions'] (teacher forcing); align() decodes")
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
        """What the losses need: teacher-forced ``logits`` [B, L, 3] (float32), and what the
        subclass's loss adds; ``similarities`` when the joint embedding is on."""
        raise NotImplementedError

    def learned_similarities(self, stacks) -> dict:
        """The joint embedding's similarities (the contrastive loss's), not the fixed ridge channel."""
        return {k: tf.cast(v, tf.float32) for k, v in stacks.get("similarities", {}).items() if k != "ridge"}

    # ---------------------------------------------------------- decoding
    def greedy_path(self, inputs, compiled=True, confidence=False):
        """The greedy alignment of reversed inputs: {"actions", "num_actions", "probabilities"}."""
        raise NotImplementedError

    def make_align_function(self, decoding_name="greedy", xla=True, confidence=True):
        """The compiled decoder behind ``align``, built once per decoding (model/decoding.py);
        ``confidence=False``: exact decoding without ``clip_confidence`` (faster)."""
        return align_function(self, decoding_name, xla, confidence)

    def compiled_decoder(self, decoding_name="greedy", xla=True, confidence=True):
        """``greedy_path`` or ``exact_path`` as a tf.function, on reversed inputs (model/decoding.py)."""
        return compiled_decoder(self, decoding_name, xla, confidence)

    def align(self, inputs, decoding="greedy"):
        """Decodes padded natural-order batches, as the SavedModel's signatures take them.

        Args:
            inputs: ``clip_features`` [B, T_v, D_v], ``text_features`` [B, T_s, D_s]
                (zero-padded), ``clip_lengths`` and ``text_lengths`` [B].
            decoding: "greedy" (the paper's) or "exact" (the best complete path; no history).

        Returns:
            The same for both decodings: ``actions`` [B, L] (-1 after a row's end),
            ``num_actions`` [B], ``clip_to_text`` [B, T_v] (-1 unmatched), ``score`` [B]
            (the path's log-probability), ``probabilities`` [B, L, 3] (each step's), and
            where the model has posteriors ``clip_confidence`` [B, T_v].
        """
        return self.make_align_function(decoding)(inputs)

    # ------------------------------------------------------------ config
    def get_config(self):
        """The constructor's arguments (the backbone serialized) on top of Keras's own."""
        return {**super().get_config(), "backbone": _unbuilt(keras.layers.serialize(self.backbone)),
                "position": self.position, "stack_features": self.stack_features,
                "hidden_units": self.hidden_units, "dropout": self.dropout_rate, "ridge_channel": self.ridge_channel}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.layers.deserialize(config["backbone"])
        return cls(**config)


def check_backbone(backbone) -> None:
    """A task's backbone is a ``NeuMatchBackbone``; else one line saying how the old flat fields build."""
    if not isinstance(backbone, NeuMatchBackbone):
        raise TypeError(f"backbone: expected a tfalign.NeuMatchBackbone, got {type(backbone).__name__} (the flat "
                        f"fields of an older tfalign, encoder=..., history=..., build with "
                        f"tfalign.model.aligner_from_fields)")


def video_folds(videos) -> dict:
    """{video id: its cross-fitting fold} of the training videos (``data.classical.fold_of``)."""
    return {e.video_id: fold_of(i, len(videos)) for i, e in enumerate(videos)}


def _unbuilt(serialized: dict) -> dict:
    """A serialized backbone without its build config: the task builds it, inside its own
    name scope, so that a reloaded model's weights have the paths the saved one's had."""
    return {key: value for key, value in serialized.items() if key != "build_config"}
