"""NeuMATCH's backbone, as keras-hub's backbones: the feature encoders and the stacks.

The paper's figure below its decoder (docs/network.md): the feature encoders, the
video and text LSTM stacks (sequence-wise batch normalization after them, or
layer-norm cells in them), and, beyond the paper (docs/recipe.md), a joint
embedding of three views of the elements and the DTW baseline's ridge similarity
of the input features. Every way of aligning (model/neumatch.py, model/
lattice_aligner.py) reads what ``NeuMatchBackbone`` returns; its ``get_config``
is its constructor's arguments.

Inputs are padded batches whose sequences are *reversed* (position 0 holds the
last clip or text; tfalign.data.batching), so the recurrent state at a
position summarizes everything that remains from there on.
"""

import keras
import tensorflow as tf

from tfalign.data.features import feature_widths
from tfalign.layers import (FeatureEncoder, FixedProjection, LayerNormLSTMCell, SequenceBatchNormalization,
                            StackLSTMCell)
from tfalign.layers.joint_embedding import JointEmbedding
from tfalign.layers.recurrence import run_stack
from tfalign.layers.ridge_similarity import RidgeSimilarity
from tfalign.layers.tracking import CheckpointedCollections

NORMALIZATIONS = ("none", "sbn", "2ln", "4ln")
# Where the joint embeddings read: the input features (SBN-standardized, linear
# heads: a ridge-like map that cannot memorise), the encoded elements, the stack outputs.
SIMILARITY_SOURCES = {"input": ("input",), "encoder": ("encoder",), "stacks": ("stacks",),
                      "both": ("encoder", "stacks"), "all": ("input", "encoder", "stacks")}


@keras.saving.register_keras_serializable("tfalign")
class NeuMatchBackbone(CheckpointedCollections, keras.Model):
    """The encoders and the video and text stacks: ``call`` gives the stacks' outputs.

    Args:
        encoder: the feature encoder: "rp" (random projection, any width), "full"
            or "lxmert" (layers/encoders.py).
        normalization: "none", "sbn" (sequence-wise batch normalization after the
            stacks), "2ln" (layer-norm cells in the video and text stacks) or "4ln"
            (and in the decoder's history stacks, which the paper's decoder owns).
        units: the width of the encoded elements and of the stacks.
        encoder_dropout: dropout in the encoders.
        stack_dropout: dropout on the stack outputs the decoder reads.
        clip_dim, text_dim: the input feature widths (default: the encoder's).
        projection_seed: the seed of the in-graph random projection (RP inputs that
            are not ``units`` wide; the text side seeded one higher).
        similarity_units: the width of the joint embedding (0: none).
        similarity_source: where it reads: a key of ``SIMILARITY_SOURCES``.
        ridge_similarity: whether to compute the DTW baseline's ridge similarity of the
            input features (fitted in closed form before training, not by gradients).

    Example:
    >>> backbone = NeuMatchBackbone(units=8, clip_dim=5, text_dim=3)
    >>> backbone.get_config()["units"], backbone.input_widths
    (8, (5, 3))
    """

    def __init__(self, encoder="rp", normalization="none", units=300, encoder_dropout=0.0, stack_dropout=0.0,
                 clip_dim=None, text_dim=None, projection_seed=0, similarity_units=0, similarity_source="encoder",
                 ridge_similarity=False, **kwargs):
        super().__init__(**kwargs)
        for name, value, choices in (("normalization", normalization, NORMALIZATIONS),
                                     ("similarity_source", similarity_source, tuple(SIMILARITY_SOURCES))):
            if value not in choices:
                raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
        self.encoder_kind, self.normalization, self.units = encoder, normalization, int(units)
        self.encoder_dropout, self.stack_dropout = encoder_dropout, stack_dropout
        self.similarity_units, self.similarity_source = int(similarity_units), similarity_source
        self.projection_seed, self.ridge_similarity = int(projection_seed), bool(ridge_similarity)
        default_clip, default_text = feature_widths(encoder)
        self.clip_dim, self.text_dim = int(clip_dim or default_clip), int(text_dim or default_text)

        # Every sublayer computes in the dtype policy (mixed precision: float32 weights,
        # bfloat16/float16 math). The order of construction is the order of the random
        # draws (Keras seeds an initializer when it is made): keep it.
        policy = self.dtype_policy
        self.encoder = FeatureEncoder(encoder, units, dropout=encoder_dropout, name="encoder", dtype=policy)
        # RP takes any width: an input that is not ``units`` wide goes through the fixed
        # projection in the graph (the text side seeded one higher, as the data's projection is).
        project = lambda width, seed, name: (FixedProjection(width, units, seed, name=name, dtype=policy)
                                             if encoder == "rp" and width != units else None)
        self.clip_projection = project(self.clip_dim, self.projection_seed, "clip_projection")
        self.text_projection = project(self.text_dim, self.projection_seed + 1, "text_projection")
        cell = LayerNormLSTMCell if normalization in ("2ln", "4ln") else StackLSTMCell
        self.video_cells = [cell(units, name=f"video_stack_{i}", dtype=policy) for i in (1, 2)]
        self.text_cells = [cell(units, name=f"text_stack_{i}", dtype=policy) for i in (1, 2)]
        self.joint_embedding = None
        if self.similarity_units:
            self.joint_embedding = JointEmbedding(self.similarity_units, SIMILARITY_SOURCES[similarity_source],
                                                  name="joint_embedding", dtype=policy)
        self.ridge = RidgeSimilarity(name="ridge_similarity", dtype=policy) if ridge_similarity else None
        self.stack_drop = keras.layers.Dropout(stack_dropout, dtype=policy) if stack_dropout else None
        self.video_norm = self.text_norm = None
        if normalization == "sbn":
            self.video_norm = SequenceBatchNormalization(name="video_stack_sbn", dtype=policy)
            self.text_norm = SequenceBatchNormalization(name="text_stack_sbn", dtype=policy)

    @property
    def input_widths(self) -> tuple[int, int]:
        """The (clip, text) feature widths the backbone takes."""
        return self.clip_dim, self.text_dim

    @property
    def encoder_widths(self) -> tuple[int, int]:
        """The widths the encoder reads: after the in-graph projection, if any."""
        return (self.units if self.clip_projection else self.clip_dim,
                self.units if self.text_projection else self.text_dim)

    @property
    def similarity_sources(self) -> tuple[str, ...]:
        """The views the joint embedding compares (none without it)."""
        return SIMILARITY_SOURCES[self.similarity_source] if self.similarity_units else ()

    @property
    def compiles_stacks(self) -> bool:
        """Whether decoding XLA-compiles the stacks' loops (plain LSTM cells: layers/recurrence.py)."""
        return all(isinstance(cell, StackLSTMCell) for cell in (*self.video_cells, *self.text_cells))

    def build(self, input_shape=None):
        clip_dim, text_dim = self.encoder_widths
        self.encoder.build(((None, clip_dim), (None, text_dim)))
        for cells in (self.video_cells, self.text_cells):
            dim = self.units
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
        self.built = True

    def call(self, inputs, training=False, compiled=False):
        """The stacks of a padded reversed batch.

        Args:
            inputs: ``clip_features`` [B, T_v, clip_dim], ``text_features`` [B, T_s, text_dim],
                ``clip_lengths``, ``text_lengths`` [B] (and in training ``fold``, each video's
                cross-fitting fold, which the ridge similarity reads).
            training: dropout and batch statistics on.
            compiled: the stacks' loops XLA-compiled per length bucket (decoding: no gradient).

        Returns:
            ``video``, ``text`` [B, T, units] (after normalization and dropout), ``video_raw``,
            ``text_raw`` (before), the lengths (int32); with the joint embedding its
            ``similarities`` {source: [B, T_v, T_s]}; with the ridge similarity ``ridge``.
        """
        lengths = (inputs["clip_lengths"], inputs["text_lengths"])
        clips = tf.cast(inputs["clip_features"], self.compute_dtype)
        texts = tf.cast(inputs["text_features"], self.compute_dtype)
        stacks = {}
        if self.ridge is not None:  # on the input features, as the DTW baseline (cross-fitted by fold in training)
            stacks["ridge"] = self.ridge(inputs["clip_features"], inputs["text_features"], *lengths,
                                         folds=inputs.get("fold"))
        if self.clip_projection is not None:
            clips = self.clip_projection(clips)
        if self.text_projection is not None:
            texts = self.text_projection(texts)
        similarities = {}

        def similar(source, clip_side, text_side):  # a channel of similarity features, if the source has heads
            if source in self.similarity_sources:
                similarities[source] = self.joint_embedding(clip_side, text_side, *lengths, source=source,
                                                            training=training)

        similar("input", clips, texts)
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
        stacks.update(video=video, text=text, video_raw=video_raw, text_raw=text_raw,
                      clip_lengths=tf.cast(lengths[0], tf.int32), text_lengths=tf.cast(lengths[1], tf.int32))
        if similarities:
            stacks["similarities"] = similarities
        return stacks

    def get_config(self):
        """The constructor's arguments on top of Keras's own (name, trainable, dtype policy)."""
        return {**super().get_config(), "encoder": self.encoder_kind, "normalization": self.normalization,
                "units": self.units, "encoder_dropout": self.encoder_dropout, "stack_dropout": self.stack_dropout,
                "clip_dim": self.clip_dim, "text_dim": self.text_dim, "projection_seed": self.projection_seed,
                "similarity_units": self.similarity_units, "similarity_source": self.similarity_source,
                "ridge_similarity": self.ridge_similarity}
