"""Training throughput (sequences per second) at the paper's training shapes.

Batch 32 of yms-synthetic training samples (cut at text boundaries to at most
100 actions: up to 92 clips, 41 texts, 100 actions; the paper's maxima are 94,
40 and 108), one full step each: forward, loss, gradients, clipping, the
optimizer. Run from the repository root:

    python benchmarks/train_throughput.py --experiment rp_lars_sbn --steps 20 --json benchmarks/results/train.json

For scale (the issue's figures, same 2-core machine): the paper's PyTorch code
takes about 2.0 s a step at batch 32 (16 sequences/s).
"""

import argparse
import sys

sys.path.insert(0, __import__("os").path.dirname(__file__))
from common import machine, peak_memory_mb, time_calls, write  # noqa: E402  (first: it quiets TensorFlow's start-up)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfalign.data.batching import make_dataset  # noqa: E402
from tfalign.data.cutting import cut_at_text_boundaries  # noqa: E402
from tfalign.data.datasets import load_episodes  # noqa: E402
from tfalign.experiments import get_experiment  # noqa: E402
from tfalign.training.loop import Trainer  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiment", default="rp_lars_sbn")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--json", default="benchmarks/results/train_throughput.json")
    args = parser.parse_args(argv)

    config = get_experiment(args.experiment).override(batch_size=args.batch_size)
    samples = [s for e in load_episodes(config.data, "train") for s in cut_at_text_boundaries(e, 100)]
    trainer = Trainer(config, "/tmp/tfalign-benchmark", log=lambda *_: None)
    dataset = make_dataset(samples, args.batch_size, shuffle=True, drop_remainder=True, repeat=True)
    step = trainer._make_train_step(dataset.element_spec)
    batches = iter(dataset)
    shapes = []

    def one_step():
        batch = next(batches)
        shapes.append([int(batch["clip_features"].shape[1]), int(batch["text_features"].shape[1]),
                       int(batch["actions"].shape[1])])
        float(step(batch)[0])

    seconds = time_calls(one_step, args.steps, warmup=3)

    # Where the time goes: the video and text stacks (encoders, two 2-layer
    # LSTMs, SBN), forward and backward, on one fixed batch, against the full step.
    model, fixed = trainer.model, next(batches)

    @tf.function
    def stacks_only(batch):
        with tf.GradientTape() as tape:
            stacks = model.encode_stacks(batch, training=True)
            total = tf.reduce_sum(stacks["video"]) + tf.reduce_sum(stacks["text"])
        return tape.gradient(total, model.trainable_variables)

    stacks_seconds = time_calls(lambda: [g.numpy() for g in stacks_only(fixed) if g is not None], 5, warmup=2)
    step_seconds = time_calls(lambda: float(step(fixed)[0]), 5, warmup=1)
    write({
        "benchmark": "train_throughput", "experiment": args.experiment, "batch_size": args.batch_size,
        "steps": args.steps, "seconds_per_step_median": float(np.median(seconds)),
        "seconds_per_step_mean": float(seconds.mean()),
        "sequences_per_second": float(args.batch_size / np.median(seconds)),
        "padded_shapes_max": np.max(shapes, axis=0).tolist(), "padded_shapes_mean": np.mean(shapes, axis=0).tolist(),
        "breakdown_on_one_batch": {
            "padded_shape": [int(fixed["clip_features"].shape[1]), int(fixed["text_features"].shape[1]),
                             int(fixed["actions"].shape[1])],
            "full_step_seconds": float(np.median(step_seconds)),
            "video_and_text_stacks_forward_backward_seconds": float(np.median(stacks_seconds)),
        },
        "peak_memory_mb": peak_memory_mb(),
        "paper_code_reference": {"seconds_per_step": 2.0, "sequences_per_second": 16},
        "machine": machine(),
    }, args.json)


if __name__ == "__main__":
    main()
