"""How well an experiment learns: step accuracy and greedy clip accuracy every N steps.

Trains on yms-synthetic training samples (<= 100 actions) and reports, every
``--every`` steps: teacher-forced per-step action accuracy on training samples
and on validation samples (both at inference, running SBN statistics), and the
greedy clip accuracy on validation cut into <= 100-action pieces and on whole
validation videos. It separates overfitting (train vs val step accuracy) from
the whole-video extrapolation of the greedy decoder (pieces vs whole).

    python benchmarks/learning_curve.py --experiment rp_lars_sbn --steps 500 \\
        --json benchmarks/results/curve_lars_sbn.json
    python benchmarks/learning_curve.py --experiment rp_adam_sbn --lr 1e-3 --normalization none --steps 500 \\
        --json benchmarks/results/curve_adam.json
"""

import argparse
import sys
import time

sys.path.insert(0, __import__("os").path.dirname(__file__))
from common import machine, write  # noqa: E402  (first: it quiets TensorFlow's start-up)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfalign.data.batching import make_dataset  # noqa: E402
from tfalign.data.cutting import cut_at_text_boundaries  # noqa: E402
from tfalign.data.datasets import load_episodes  # noqa: E402
from tfalign.experiments import get_experiment  # noqa: E402
from tfalign.evaluation.prediction import evaluate_model  # noqa: E402
from tfalign.training.loop import Trainer  # noqa: E402


def step_accuracy(model, episodes):
    correct = total = 0
    for batch in make_dataset(episodes, 32):
        predicted = tf.argmax(model(batch, training=False), -1, output_type=tf.int32).numpy()
        valid = np.arange(predicted.shape[1])[None] < batch["action_lengths"].numpy()[:, None]
        correct += (predicted == batch["actions"].numpy())[valid].sum()
        total += valid.sum()
    return float(correct / total)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiment", default="rp_lars_sbn")
    parser.add_argument("--lr", type=float)
    parser.add_argument("--normalization", choices=["none", "sbn", "2ln", "4ln"])
    parser.add_argument("--difficulty", type=float)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--json", default="benchmarks/results/learning_curve.json")
    args = parser.parse_args(argv)

    config = get_experiment(args.experiment).override({"optimizer.learning_rate": args.lr,
                                                       "model.normalization": args.normalization,
                                                       "data.difficulty": args.difficulty})
    train = load_episodes(config.data, "train")
    val = load_episodes(config.data, "val")
    samples = [s for e in train for s in cut_at_text_boundaries(e, 100)]
    val_pieces = [s for e in val for s in cut_at_text_boundaries(e, 100)]
    trainer = Trainer(config, "/tmp/tfalign-curve", log=lambda *_: None, evaluate=evaluate_model)
    dataset = make_dataset(samples, config.trainer.batch_size, shuffle=True, seed=config.trainer.seed, repeat=True)
    step = trainer._make_train_step(dataset.element_spec)
    batches, rows, started = iter(dataset), [], time.time()
    for i in range(1, args.steps + 1):
        loss = float(step(next(batches))[0])
        if i % args.every == 0:
            row = {"step": i, "loss": loss,
                   "train_step_accuracy": step_accuracy(trainer.model, samples[:64]),
                   "val_step_accuracy": step_accuracy(trainer.model, val_pieces),
                   "val_pieces_clip_accuracy": evaluate_model(trainer.model, val_pieces)["clip_accuracy"],
                   "val_whole_clip_accuracy": evaluate_model(trainer.model, val)["clip_accuracy"],
                   "seconds": time.time() - started}
            rows.append(row)
            print(" ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()), flush=True)
    write({"benchmark": "learning_curve", "experiment": args.experiment, "config": config.to_dict(), "rows": rows,
           "machine": machine()}, args.json)


if __name__ == "__main__":
    main()
