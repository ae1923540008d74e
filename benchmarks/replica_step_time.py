"""Training step time on N replicas (MirroredStrategy) against one device, same global batch.

On a CPU the replicas are logical devices of the same cores, so the figure
shows the overhead of splitting and all-reducing, not a speed-up; on a machine
with several GPUs it shows the scaling. Run from the repository root:

    python benchmarks/replica_step_time.py --cpu-replicas 2 --json benchmarks/results/replicas_2.json
    python benchmarks/replica_step_time.py --cpu-replicas 1 --json benchmarks/results/replicas_1.json
"""

import argparse
import sys

import numpy as np

sys.path.insert(0, __import__("os").path.dirname(__file__))
from common import machine, time_calls, write  # noqa: E402

from tfalign.training.strategy import make_strategy  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpu-replicas", type=int, default=1, help="1: one device (default strategy)")
    parser.add_argument("--strategy", default=None, help="override: default, mirrored (e.g. over GPUs)")
    parser.add_argument("--experiment", default="rp_lars_sbn")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--json", default="benchmarks/results/replica_step_time.json")
    args = parser.parse_args(argv)
    name = args.strategy or ("mirrored" if args.cpu_replicas > 1 else "default")
    strategy = make_strategy(name, cpu_replicas=args.cpu_replicas if args.cpu_replicas > 1 else 0)

    from tfalign.data.batching import make_dataset
    from tfalign.data.cutting import cut_at_text_boundaries
    from tfalign.data.datasets import load_episodes
    from tfalign.experiments import get_experiment
    from tfalign.training.loop import Trainer

    config = get_experiment(args.experiment).override(batch_size=args.batch_size)
    samples = [s for e in load_episodes(config.data, "train") for s in cut_at_text_boundaries(e, 100)]
    trainer = Trainer(config, "/tmp/tfalign-benchmark", strategy=strategy, log=lambda *_: None)
    dataset = strategy.experimental_distribute_dataset(
        make_dataset(samples, args.batch_size, shuffle=True, drop_remainder=True, repeat=True))
    step = trainer._make_train_step(dataset.element_spec)
    batches = iter(dataset)
    seconds = time_calls(lambda: float(step(next(batches))[0]), args.steps, warmup=3)
    write({"benchmark": "replica_step_time", "strategy": name, "replicas": strategy.num_replicas_in_sync,
           "batch_size": args.batch_size, "seconds_per_step_median": float(np.median(seconds)),
           "sequences_per_second": float(args.batch_size / np.median(seconds)), "machine": machine()}, args.json)


if __name__ == "__main__":
    main()
