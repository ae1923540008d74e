"""Optimizers: AdamLARS (the paper's "LARS"), and the factory for Adam and LAMB."""

from tfalign.optimizers.adam_lars import AdamLARS
from tfalign.optimizers.factory import OPTIMIZERS, make_optimizer

__all__ = ["AdamLARS", "OPTIMIZERS", "make_optimizer"]
