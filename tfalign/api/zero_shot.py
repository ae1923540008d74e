"""Alignment with no training, for features in one space (a vision-language
encoder's): the model behind ``tfalign.Aligner.zero_shot`` (and so behind
``tfalign.align_video_zero_shot`` and ``tfalign.align --encoder`` without
``--model``).

The model is the recipe's network at its start: its lattice scores are DTW's
own on the ridge similarity (here the identity map: the centred cosine, data/
ridge.py) plus corrections that are zero, so exact decoding is zero-shot DTW,
and each clip gets its posterior probability.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from tfalign.errors import UserError

# A clip is left unmatched only when every text's plain cosine with it is negative: the drop cost
# of a zero-shot aligner built with nothing to centre on or tune with.
UNTUNED_DROP_COST = 1.0


def zero_shot_model(width=None, episodes=None, val=None, drop_cost=None, experiment="tfalign_rp_sbn"):
    """(the Keras model, its metadata) of ``Aligner.zero_shot`` (see its Args)."""
    from tfalign.data.classical import tune, zero_shot_drop_cost
    from tfalign.data.ridge import RidgeMap
    from tfalign.experiments import get_experiment
    from tfalign.model import build_model

    episodes, val = list(episodes or ()), list(val or ())
    widths = {e.widths for e in episodes + val} | ({(width, width)} if width is not None else set())
    if not widths:
        raise UserError("width: give the features' width, or episodes to read it from", field="width")
    if len({w for pair in widths for w in pair}) > 1:
        raise UserError(f"width: zero-shot alignment needs clips and texts of one width (one space), got "
                        f"{' and '.join(f'{c}/{t}' for c, t in sorted(widths))}", field="width")
    width = next(iter(widths))[0]
    seen = episodes + val
    embedding = RidgeMap.identity(seen) if seen else RidgeMap(np.zeros(width), np.ones(width), np.zeros(width),
                                                              np.eye(width), np.inf)
    if drop_cost is None:
        if val:
            drop_cost = tune("dtw", embedding, val)
        elif episodes:
            drop_cost = zero_shot_drop_cost([embedding.similarity(e) for e in episodes])
        else:
            drop_cost = UNTUNED_DROP_COST
    config = get_experiment(experiment)
    if not config.model.dtw_start:
        raise UserError(f"experiment: {experiment!r} does not start at DTW (model.dtw_start); zero-shot alignment "
                        "builds the recipe's network", field="experiment")
    model = build_model(config.model.with_input_widths(width, width), seed=config.trainer.seed)
    model.backbone.ridge.set_map(embedding)
    model.potentials.set_start(float(drop_cost))
    description = ("No training: features in one space aligned by their cosine similarity (zero-shot DTW), "
                   + (f"centred on the means of {len(seen)} videos" if seen else "not centred")
                   + f", drop cost {float(drop_cost):.4f}" + (f" tuned on {len(val)} videos" if val else ""))
    metadata = {"experiment": {"name": "zero-shot", "description": description,
                               "model": dataclasses.asdict(config.model)},
                "zero_shot": {"drop_cost": float(drop_cost), "centred_on": len(seen), "tuned_on": len(val)},
                "metrics": {"decoding": "exact"}, "decoding": "exact"}
    return model, metadata
