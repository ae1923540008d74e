"""Training throughput (sequences per second) at the paper's training shapes.

Batch 32 of yms-synthetic training samples (cut at text boundaries to at most
100 actions: up to 92 clips, 41 texts, 100 actions; the paper's maxima are 94,
40 and 108), one full step each: forward, loss, gradients, clipping, the
optimizer. ``--against REF`` times the code of git revision REF the same way,
in a fresh process of the same run, and reports the speedup (absolute figures
move by 2x between machines of one kind; the ratio is the figure). Run from
the repository root:

    python benchmarks/train_throughput.py --experiment rp_lars_sbn --against d7c3338 \\
        --json benchmarks/results/train_throughput.json

For scale (the issue's figures, same 2-core machine): the paper's PyTorch code
takes about 2.0 s a step at batch 32 (16 sequences/s).
"""

import argparse
import sys

sys.path.insert(0, __import__("os").path.dirname(__file__))
from common import add_against_arguments, child_result, machine, peak_memory_mb, run_against, time_calls, write  # noqa: E402,E501

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def measure(args) -> dict:
    """The figures of the tfalign on the path (only what every version has: --against)."""
    from tfalign.data.batching import make_dataset
    from tfalign.data.cutting import cut_at_text_boundaries
    from tfalign.data.datasets import load_episodes
    from tfalign.experiments import get_experiment
    from tfalign.training.loop import Trainer

    config = get_experiment(args.experiment).override(batch_size=args.batch_size)
    if args.precision != "fp32":  # this checkout only: --against times fp32
        config = config.override({"trainer.precision": args.precision})
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
            total = tf.reduce_sum(tf.cast(stacks["video"], tf.float32)) + \
                tf.reduce_sum(tf.cast(stacks["text"], tf.float32))
        return tape.gradient(total, model.trainable_variables)

    stacks_seconds = time_calls(lambda: [g.numpy() for g in stacks_only(fixed) if g is not None], 5, warmup=2)
    step_seconds = time_calls(lambda: float(step(fixed)[0]), 5, warmup=1)
    return {
        "seconds_per_step_median": float(np.median(seconds)), "seconds_per_step_mean": float(seconds.mean()),
        "sequences_per_second": float(args.batch_size / np.median(seconds)),
        "padded_shapes_max": np.max(shapes, axis=0).tolist(), "padded_shapes_mean": np.mean(shapes, axis=0).tolist(),
        "breakdown_on_one_batch": {
            "padded_shape": [int(fixed["clip_features"].shape[1]), int(fixed["text_features"].shape[1]),
                             int(fixed["actions"].shape[1])],
            "full_step_seconds": float(np.median(step_seconds)),
            "video_and_text_stacks_forward_backward_seconds": float(np.median(stacks_seconds)),
        },
        "peak_memory_mb": peak_memory_mb(),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiment", default="rp_lars_sbn")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="fp32",
                        help="Keras mixed-precision policy of the model (fp32: none)")
    parser.add_argument("--json", default="benchmarks/results/train_throughput.json")
    add_against_arguments(parser, "training step (fp32)")
    args = parser.parse_args(argv)
    if args.child:
        child_result(measure(args))
        return
    shared = ["--experiment", args.experiment, "--steps", str(args.steps), "--batch-size", str(args.batch_size)]
    other = run_against(args.against, __file__, shared) if args.against else None
    ours = measure(args)
    result = {"benchmark": "train_throughput", "experiment": args.experiment, "batch_size": args.batch_size,
              "steps": args.steps, "precision": args.precision, **ours,
              "paper_code_reference": {"seconds_per_step": 2.0, "sequences_per_second": 16}, "machine": machine()}
    if other:
        result["against"] = other
        result["speedup"] = ours["sequences_per_second"] / other["sequences_per_second"]
        print(f"{ours['sequences_per_second']:.1f} sequences/s against {other['sequences_per_second']:.1f} at "
              f"{args.against}: {result['speedup']:.2f}x")
    write(result, args.json)


if __name__ == "__main__":
    main()
