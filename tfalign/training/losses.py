"""The losses a training task assembles; they are defined with the model
(model/objective.py), whose ``compute_loss`` uses them too."""

from tfalign.model.objective import (LossWeights, alignment_loss, contrastive_sum, lattice_cross_entropy_sum,
                                  masked_cross_entropy, masked_cross_entropy_sum, smoothed_targets)

__all__ = ["LossWeights", "alignment_loss", "contrastive_sum", "lattice_cross_entropy_sum", "masked_cross_entropy",
           "masked_cross_entropy_sum", "smoothed_targets"]
