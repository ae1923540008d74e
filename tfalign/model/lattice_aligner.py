"""The aligner whose decoder reads only its cursors: ``LatticeAligner``.

Without the paper's history (docs/recipe.md) the classifier sees only what the
two cursors point at, so every node of the (clip, text) lattice is scored at
once (``lattice_logits``, model/lattice_classifier.py) and decoded exactly
(dp/lattice.py). With ``dtw_start`` the lattice's scores are the DTW
baseline's own (the backbone's ridge similarity, a drop cost tuned on
validation) plus learned corrections that are zero at the start, the
classifier's among them behind a gate (layers/dtw_potentials.py): a CRF,
trained by its likelihood, whose posteriors give each clip its confidence.
"""

import keras
import tensorflow as tf

from tfalign.data.classical import cross_fitted_maps, self_trained_fit
from tfalign.data.ridge import SHARED_SPACE_RANKING, shared_space_ranking, shares_space
from tfalign.errors import UserError
from tfalign.layers import DTWPotentials
from tfalign.model import lattice_classifier, paths
from tfalign.model.aligner_task import AlignerTask, check_backbone, video_folds
from tfalign.model.decoding import greedy
from tfalign.dp.lattice import (best_path, clip_confidence, conditional_log_probabilities, greedy_walk,
                                   log_partition_table, posterior_marginals)


@keras.saving.register_keras_serializable("tfalign")
class LatticeAligner(AlignerTask):
    """A backbone and a cursor-only classifier scored over the whole lattice; with
    ``dtw_start`` the lattice CRF that starts where the DTW baseline ends.

    Args:
        backbone: a ``NeuMatchBackbone`` (with ``ridge_similarity=True`` for ``dtw_start``).
        dtw_start: the lattice's scores are the DTW baseline's plus learned corrections
            (a CRF); its ridge map and drop cost are set in closed form before training
            (training/task.py).
        position, stack_features, hidden_units, ridge_channel: the classifier's
            (``AlignerTask``); no decoder dropout (it is per step: use the backbone's
            ``stack_dropout``).

    Example:
    >>> from tfalign.model.backbone import NeuMatchBackbone
    >>> backbone = NeuMatchBackbone(units=8, clip_dim=5, text_dim=3, ridge_similarity=True)
    >>> aligner = LatticeAligner(backbone, hidden_units=4, dtw_start=True)
    >>> aligner.build()
    >>> "exact" in aligner.decodings
    True
    """

    def __init__(self, backbone=None, dtw_start=False, position="paper", stack_features=True, hidden_units=300,
                 ridge_channel=False, dropout=0.0, **kwargs):
        check_backbone(backbone)
        if dropout:
            raise ValueError("LatticeAligner: decoder dropout is per step; use the backbone's stack_dropout")
        if dtw_start and backbone.ridge is None:
            raise ValueError("dtw_start needs a backbone with the ridge similarity (ridge_similarity=True)")
        super().__init__(backbone, position=position, stack_features=stack_features, hidden_units=hidden_units,
                         ridge_channel=ridge_channel, **kwargs)
        self.dtw_start = bool(dtw_start)
        self.potentials = DTWPotentials(name="dtw_potentials") if dtw_start else None
        self._classifier_layers()

    def build(self, input_shape=None):
        super().build(input_shape)
        if self.potentials is not None:  # no random draw: its weights start at the DTW baseline
            self.potentials.build()
        # Divides the lattice's scores where confidences are read (the marginals), not where paths
        # are chosen; fitted on validation after training (evaluation/calibration.py), 1 until then.
        self.confidence_temperature = self.add_weight(shape=(), initializer="ones", trainable=False,
                                                      name="confidence_temperature", dtype="float32")

    def posterior_marginals(self, scores, clip_lengths, text_lengths, table=None):
        """Each node's posterior probabilities [B, T_v, T_s, 3] of the lattice's scores divided by
        ``confidence_temperature`` (``table``: the log-partition table of the undivided scores,
        reused when the temperature is 1)."""
        temperature = tf.convert_to_tensor(self.confidence_temperature)
        return tf.cond(tf.equal(temperature, 1.0),
                       lambda: posterior_marginals(scores, clip_lengths, text_lengths, table=table)[1],
                       lambda: posterior_marginals(scores / temperature, clip_lengths, text_lengths)[1])

    # ------------------------------------------------------------ start
    def initialize(self, train, val, unlabelled=(), set_start=True) -> tuple[list, dict]:
        """``AlignerTask.initialize``; with ``dtw_start``, the closed form first
        (``data.classical.self_trained_fit``): the ridge map of the labelled videos, pulled
        toward the identity when the features share a space, refitted on the unlabelled
        ones as it aligns them, and the drop cost tuned on validation. Its start (with
        ``set_start``) is that ridge map and drop cost: exact decoding then returns the
        (self-trained) DTW baseline's alignments. The fold maps are fitted on the
        labelled videos and the unlabelled ones with their pseudo-labels.

        Returns:
            (the videos to train on: the labelled ones, or with none the unlabelled videos
            with the closed form's pseudo-labels (zero-shot DTW, self-trained); their folds).
        """
        if not self.dtw_start:
            return super().initialize(train, val, unlabelled, set_start)
        if not val:
            raise ValueError("initialize: a model that starts at DTW needs validation videos (its drop cost is "
                             "tuned on them)")
        videos = list(train)
        if not videos and not shares_space(val):
            raise UserError(f"data.train_videos: no labelled video: the start is zero-shot DTW, which needs clips "
                            f"and texts in one space, but the validation videos' plain cosine ranks a clip's own "
                            f"text first {shared_space_ranking(val):.0%} of the time (chance: 50%; one space: at "
                            f"least {SHARED_SPACE_RANKING:.0%}); give labelled videos, or features from a "
                            f"vision-language encoder", field="train_videos")
        fit, pseudo = self_trained_fit(videos, val, unlabelled)
        if not videos:
            videos, pseudo = pseudo, []
        if not videos:
            raise ValueError("initialize: no training video: give labelled videos, or unlabelled ones")
        self.backbone.ridge.set_fold_maps(cross_fitted_maps(videos, pseudo, prior=fit.embedding.prior))
        if set_start:
            self.backbone.ridge.set_map(fit.embedding)
            self.potentials.set_start(fit.drop_cost)
        return videos, video_folds(videos)

    # ------------------------------------------------------------ scores
    def lattice_logits(self, stacks):
        """Logits [B, T_v, T_s, 3] at every node (i, j) of the lattice (natural order: i
        clips and j texts consumed): the classifier a block of rows at a time
        (model/lattice_classifier.py)."""
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

    # ---------------------------------------------------------- training
    def training_outputs(self, inputs, training=False):
        """What the losses need: ``lattice_logits`` (the classifier's), ``lattice_scores``
        (what the CRF normalizes), the teacher-forced ``logits`` [B, L, 3] (the lattice
        logits along the path) and ``similarities`` when the joint embedding is on."""
        stacks = self.encode_stacks(inputs, training=training)
        lattice = tf.cast(self.lattice_logits(stacks), tf.float32)
        clips, texts = paths.path_nodes(inputs["actions"], stacks["clip_lengths"], stacks["text_lengths"])
        outputs = {"logits": tf.gather_nd(lattice, tf.stack([clips, texts], axis=-1), batch_dims=1),
                   "lattice_logits": lattice, "lattice_scores": self.lattice_scores(stacks, lattice)}
        if self.similarity_units:
            outputs["similarities"] = self.learned_similarities(stacks)
        return outputs

    # ---------------------------------------------------------- decoding
    def greedy_path(self, inputs, compiled=True, confidence=False):
        """The greedy alignment of reversed inputs: {"actions", "num_actions", "probabilities"}.
        With ``dtw_start``, the most probable action at each node under the CRF, and with
        ``confidence`` its posterior ``marginals`` too (``complete_greedy`` reads each clip's
        confidence from them). ``compiled``: the stacks' loops XLA-compiled (layers/recurrence.py)."""
        stacks = self.encode_stacks(inputs, training=False, compiled=compiled)
        if not self.dtw_start:
            return greedy(self, stacks)
        lengths = stacks["clip_lengths"], stacks["text_lengths"]
        scores = self.lattice_scores(stacks)
        table = log_partition_table(scores, *lengths)  # shared by the conditionals and the marginals
        out = greedy_walk(conditional_log_probabilities(scores, *lengths, table=table), *lengths)
        if confidence:
            out["marginals"] = self.posterior_marginals(scores, *lengths, table=table)
        return out

    def exact_path(self, inputs, confidence=True, compiled=True):
        """The exact best action path (dp/lattice.py) of reversed inputs: {"actions",
        "num_actions", "clip_to_text", "score", "probabilities", "clip_confidence"}.
        ``clip_confidence`` [B, T_v]: the posterior probability of each clip's assignment, the
        lattice's scores read as a CRF. With ``dtw_start`` (a CRF), ``score`` is the path's
        log-probability among all complete paths and ``probabilities`` the CRF's conditional
        action probabilities at its nodes. ``compiled``: the stacks' loops XLA-compiled."""
        stacks = self.encode_stacks(inputs, training=False, compiled=compiled)
        lengths = stacks["clip_lengths"], stacks["text_lengths"]
        scores = self.lattice_scores(stacks)
        out = best_path(scores, *lengths)
        log_probs, table = scores, None
        if self.dtw_start:
            table = log_partition_table(scores, *lengths)
            log_probs = conditional_log_probabilities(scores, *lengths, table=table)
            out["score"] = out["score"] - table[:, 0, 0]
        out["probabilities"] = paths.probabilities_along(log_probs, out["actions"], out["num_actions"], *lengths)
        if confidence:  # the posterior marginals: the forward algorithm beside the backward table
            out["clip_confidence"] = clip_confidence(self.posterior_marginals(scores, *lengths, table=table),
                                                     out["clip_to_text"])
        return out

    def get_config(self):
        config = {**super().get_config(), "dtw_start": self.dtw_start}
        config.pop("dropout")
        return config
