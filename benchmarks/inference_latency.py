"""Greedy alignment latency for one whole test-sized video (249 clips, 95 texts).

Times the in-graph greedy decoder (a tf.function around the Keras model) and,
with --saved-model, a SavedModel's serving_default signature loaded with
tf.saved_model.load. Run from the repository root:

    python benchmarks/inference_latency.py --json benchmarks/results/inference.json
    python benchmarks/inference_latency.py --saved-model runs/<run>/saved_model \
        --json benchmarks/results/saved_model.json

For scale: the paper's PyTorch code takes about 0.18 s on 2 cores.
"""

import argparse
import sys

sys.path.insert(0, __import__("os").path.dirname(__file__))
from common import machine, peak_memory_mb, time_calls, write  # noqa: E402  (first: it quiets TensorFlow's start-up)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfalign.experiments import get_experiment  # noqa: E402
from tfalign.model import build_model  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiment", default="rp_lars_sbn")
    parser.add_argument("--saved-model", help="time this SavedModel's serving_default instead")
    parser.add_argument("--clips", type=int, default=249)
    parser.add_argument("--texts", type=int, default=95)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--json", default="benchmarks/results/inference_latency.json")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    if args.saved_model:
        loaded = tf.saved_model.load(args.saved_model)
        serve = loaded.signatures["serving_default"]
        clip_dim = serve.structured_input_signature[1]["clip_features"].shape[-1]
        text_dim = serve.structured_input_signature[1]["text_features"].shape[-1]
        inputs = dict(clip_features=tf.constant(rng.normal(size=(1, args.clips, clip_dim)), tf.float32),
                      text_features=tf.constant(rng.normal(size=(1, args.texts, text_dim)), tf.float32),
                      clip_lengths=tf.constant([args.clips]), text_lengths=tf.constant([args.texts]))
        run = lambda: serve(**inputs)["num_actions"].numpy()
        what = f"SavedModel {args.saved_model}"
    else:
        model = build_model(get_experiment(args.experiment).model, seed=0)
        clip_dim, text_dim = model.input_widths
        inputs = {"clip_features": tf.constant(rng.normal(size=(1, args.clips, clip_dim)), tf.float32),
                  "text_features": tf.constant(rng.normal(size=(1, args.texts, text_dim)), tf.float32),
                  "clip_lengths": tf.constant([args.clips]), "text_lengths": tf.constant([args.texts])}
        greedy = model.make_align_function("greedy")
        run = lambda: greedy(inputs)["num_actions"].numpy()
        what = f"Keras model ({args.experiment}), tf.function"
    steps = int(run()[0])
    seconds = time_calls(run, args.repeats, warmup=3)
    write({
        "benchmark": "inference_latency", "what": what, "clips": args.clips, "texts": args.texts,
        "decoder_steps": steps, "seconds_median": float(np.median(seconds)),
        "seconds_p90": float(np.quantile(seconds, 0.9)),
        "milliseconds_median": float(1000 * np.median(seconds)), "peak_memory_mb": peak_memory_mb(),
        "paper_code_reference_seconds": 0.18, "machine": machine(),
    }, args.json)


if __name__ == "__main__":
    main()
