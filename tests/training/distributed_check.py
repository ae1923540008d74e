"""Run by test_distributed.py in a fresh process (logical CPU devices must be
configured before TensorFlow starts). Prints one JSON line of differences:
{optimizer: {...}} for each optimizer named on the command line (one process for all)."""

import json
import sys

import numpy as np
import tensorflow as tf

from tfalign.training.strategy import make_strategy

strategy = make_strategy("mirrored", cpu_replicas=2)

from tfalign.data.batching import make_dataset  # noqa: E402
from tfalign.data.datasets import load_episodes  # noqa: E402
from tfalign.experiments import get_experiment  # noqa: E402
from tfalign.layers import SequenceBatchNormalization  # noqa: E402
from tfalign.training.loop import Trainer  # noqa: E402

result = {"replicas": strategy.num_replicas_in_sync}

# --- SBN statistics over the global batch --------------------------------------
rng = np.random.default_rng(0)
x = rng.normal(1.0, 2.0, size=(4, 6, 5)).astype(np.float32)
lengths = np.array([6, 2, 5, 3])
mask = np.arange(6)[None] < lengths[:, None]
single = SequenceBatchNormalization()
expected = single(x, mask=mask, training=True).numpy()
with strategy.scope():
    mirrored = SequenceBatchNormalization()
    mirrored.build(x.shape)
dataset = tf.data.Dataset.from_tensor_slices((x, mask)).batch(4)
batch = next(iter(strategy.experimental_distribute_dataset(dataset)))
per_replica = strategy.run(lambda a, m: mirrored(a, mask=m, training=True), args=batch)
got = np.concatenate([t.numpy() for t in strategy.experimental_local_results(per_replica)])
result["sbn_output"] = float(np.abs(got - expected)[mask].max())
result["sbn_moving_mean"] = float(np.abs(mirrored.moving_mean.numpy() - single.moving_mean.numpy()).max())
result["sbn_moving_variance"] = float(np.abs(mirrored.moving_variance.numpy() - single.moving_variance.numpy()).max())

# --- one training step ------------------------------------------------------------
def one_step(optimizer: str) -> dict:
    """One step of one device and of two replicas on the same global batch, from the same weights."""
    config = get_experiment("rp_lars_sbn").override({"optimizer.name": optimizer, "trainer.batch_size": 8,
                                                     "data.dataset": "synthetic", "data.difficulty": 0.5})
    episodes = load_episodes(config.data, "val")[:8]
    one = Trainer(config, "/tmp/unused-one", strategy=tf.distribute.get_strategy(), log=lambda *_: None)
    two = Trainer(config, "/tmp/unused-two", strategy=strategy, log=lambda *_: None)
    initial = one.model.get_weights()
    two.model.set_weights(initial)
    data = make_dataset(episodes, 8)
    loss_one, _, _ = one._make_train_step(data.element_spec)(next(iter(data)))
    distributed = strategy.experimental_distribute_dataset(data)
    loss_two, _, _ = two._make_train_step(distributed.element_spec)(next(iter(distributed)))
    diffs = [np.abs(a - b).max() / (np.abs(a).max() + 1e-12) for a, b in zip(one.model.get_weights(),
                                                                             two.model.get_weights())]
    moved = [np.abs(a - b).max() for a, b in zip(one.model.get_weights(), initial)]
    return {**result, "loss": [float(loss_one), float(loss_two)], "weights_max_relative_difference": float(max(diffs)),
            "weights_moved": float(max(moved))}


print(json.dumps({optimizer: one_step(optimizer) for optimizer in sys.argv[1:] or ["lars"]}))
