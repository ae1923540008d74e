"""NeuMATCH as keras-hub shapes a model: a backbone (the encoders and stacks) and a
task for each way of aligning (the paper's decoder, the lattice and its CRF), built
from its config."""

from tfalign.model.aligner_task import AlignerTask
from tfalign.model.backbone import NORMALIZATIONS, NeuMatchBackbone
from tfalign.model.lattice_aligner import LatticeAligner
from tfalign.model.neumatch import NeuMatchAligner, aligner_from_fields
from tfalign.model.builder import build_model, count_trainable

__all__ = ["AlignerTask", "LatticeAligner", "NORMALIZATIONS", "NeuMatchAligner", "NeuMatchBackbone",
           "aligner_from_fields", "build_model", "count_trainable"]
