"""What TF Serving warm-up buys: a stream of requests of the embedded data's
lengths against a freshly loaded SavedModel, with and without replaying its
warm-up records first (as TF Serving does at load).

One model (the recipe's network by default, random weights: the time does not
depend on them) is exported with ``--warmup CLIPSxTEXTS``; each mode then runs
in a fresh process: load the SavedModel, replay the warm-up file (``warm``
only), send ``--requests`` one-video requests to the per-shape compiled
signature (``align_greedy``), whose (clips, texts) are drawn from the embedded
data's videos, and time each one. Afterwards every shape met is timed again
(warm), so each request's latency is also given as a ratio to its shape's warm
latency: a ratio near 1 means nothing was compiled on the request's path.

    python benchmarks/serving_warmup.py --json benchmarks/results/serving_warmup.json
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import machine, one_video_request, peak_memory_mb, report  # noqa: E402

import numpy as np  # noqa: E402


def export(experiment: str, warmup: str, folder: str) -> str:
    from tfalign.experiments import get_experiment
    from tfalign.model import build_model
    from tfalign.serving.saved_model import export_saved_model
    from tfalign.serving.warmup import WarmupSize

    model = build_model(get_experiment(experiment).model, seed=0)
    return str(export_saved_model(model, os.path.join(folder, "model"), decoding="exact",
                                  warmup=WarmupSize.parse(warmup)))


def video_lengths() -> list[tuple[int, int]]:
    from tfalign.data.datasets import DataConfig, load_episodes

    return [(e.num_clips, e.num_texts) for split in ("train", "val", "test")
            for e in load_episodes(DataConfig(), split)]


def stream(path: str, warm: bool, requests: int, seed: int, signature: str) -> dict:
    """In this (fresh) process: load, maybe replay the warm-up, then the stream."""
    import tensorflow as tf

    from tfalign.serving.warmup import read_warmup_file, request_arrays

    start = time.perf_counter()
    signatures = tf.saved_model.load(path).signatures
    load_s = time.perf_counter() - start
    replayed, warmup_s = 0, 0.0
    if warm:
        start = time.perf_counter()
        for log in read_warmup_file(path):
            name, inputs = request_arrays(log)
            signatures[name](**{k: tf.constant(v) for k, v in inputs.items()})
            replayed += 1
        warmup_s = time.perf_counter() - start
    serve = signatures[signature]
    spec = serve.structured_input_signature[1]
    widths = (spec["clip_features"].shape[-1], spec["text_features"].shape[-1])
    rng = np.random.default_rng(seed)
    lengths = video_lengths()
    shapes = [lengths[i] for i in rng.integers(0, len(lengths), requests)]

    def call(clips, texts):
        inputs = one_video_request(widths, clips, texts, seed=int(rng.integers(1 << 31)))
        start = time.perf_counter()
        serve(**inputs)["num_actions"].numpy()
        return time.perf_counter() - start

    seconds = [call(c, t) for c, t in shapes]
    warm_of = {shape: min(call(*shape), call(*shape)) for shape in set(shapes)}
    ratios = [s / warm_of[shape] for s, shape in zip(seconds, shapes)]
    return {"warm_up": warm, "load_s": round(load_s, 2), "warmup_requests": replayed, "warmup_s": round(warmup_s, 1),
            "requests": requests, "distinct_shapes": len(warm_of),
            "latency_ms": {"p50": round(1000 * float(np.median(seconds)), 1),
                           "p99": round(1000 * float(np.quantile(seconds, 0.99)), 1),
                           "max": round(1000 * max(seconds), 1)},
            "ratio_to_warm": {"p50": round(float(np.median(ratios)), 2), "max": round(max(ratios), 2)},
            "requests_over_2x_warm": int(sum(r > 2 for r in ratios)),
            "peak_memory_mb": round(peak_memory_mb())}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiment", default="tfalign_rp_sbn")
    parser.add_argument("--warmup", default="512x192", help="the export's warm-up size (tfalign.export --warmup)")
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--signature", default="align_greedy", help="the signature the stream calls")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write the result here")
    parser.add_argument("--child", nargs=2, metavar=("SAVED_MODEL", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(stream(args.child[0], args.child[1] == "warm", args.requests, args.seed, args.signature)))
        return
    with tempfile.TemporaryDirectory(prefix="tfalign-warmup-") as folder:
        path = export(args.experiment, args.warmup, folder)
        runs = []
        for mode in ("cold", "warm"):
            done = subprocess.run([sys.executable, __file__, "--child", path, mode, "--requests", str(args.requests),
                                   "--seed", str(args.seed), "--signature", args.signature],
                                  capture_output=True, text=True, check=True)
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(f"{mode}: {runs[-1]}", flush=True)
    result = {"machine": machine(), "experiment": args.experiment, "export_warmup": args.warmup,
              "signature": args.signature, "runs": runs}
    report(result, args.json)


if __name__ == "__main__":
    main()
