"""The exact decoder at film length: the best path over the (clip, text) lattice.

Figures a size, warm (the second and later calls of one shape), one video:
``best_path`` alone (dp/lattice.py: the dynamic programme and its
backtrack, on random log-probabilities); the whole exact alignment of the
recipe's network (random weights: the time does not depend on them) in process
(``model.align(..., decoding="exact")``: encoders, stacks, the lattice
classifier, the programme and each clip's posterior confidence) and through
its SavedModel (exported, reloaded, its ``align_exact`` and ``align_greedy``
signatures, as TF Serving runs them); the process's peak resident memory.
``--parts`` also times each part alone (the stacks, the lattice classifier,
the DTW potentials, the best path, the backward and the forward tables).
``--floors`` times what any row-by-row programme in TensorFlow ops pays at a
size, whatever it computes: a ``tf.while_loop`` of one row per clip that reads
and adds one row (the loop's own cost a row), ten rows (so the cost of one
more read and add in a row: the ops a programme's row is made of), one
cumulative log-sum-exp a row (the least a log-partition pass does), the same
loop XLA-compiled, and TensorFlow's cumulative log-sum-exp kernel over the
whole lattice in one call (its arithmetic alone, no loop).
``--against REF`` runs the same in a fresh process with git revision REF's
tfalign, and the digest of the paths decoded from the same log-probabilities
says whether the two decoders agree. Run from the repository root:

    python benchmarks/exact_decoder.py --against 1435eee --json benchmarks/results/exact_decoder.json
"""

import argparse
import hashlib
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import (add_against_arguments, child_result, machine, one_video_request, peak_memory_mb,  # noqa: E402
                    report, run_against)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

SIZES = ("249x95", "1000x300", "2000x500", "4000x800")


def warm_seconds(run, repeats):
    run()  # trace and first run
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - start)
    return float(np.median(seconds))


def best_path_figures(clips, texts, repeats):
    from tfalign.dp.lattice import best_path

    rng = np.random.default_rng(clips * 7919 + texts)
    logits = rng.normal(size=(1, clips, texts, 3)).astype(np.float32)
    log_probs = tf.nn.log_softmax(tf.constant(logits))
    decode = tf.function(best_path)
    lengths = (tf.constant([clips]), tf.constant([texts]))
    out = decode(log_probs, *lengths)
    digest = hashlib.sha256(out["actions"].numpy().tobytes()).hexdigest()[:16]
    return {"seconds": round(warm_seconds(lambda: decode(log_probs, *lengths)["num_actions"].numpy(), repeats), 4),
            "score": float(out["score"][0]), "actions_digest": digest}


def model_figures(model, clips, texts, repeats):
    request = one_video_request(model.input_widths, clips, texts, seed=1)
    return round(warm_seconds(lambda: model.align(request, decoding="exact")["num_actions"].numpy(), repeats), 3)


def saved_model_signatures(model, folder):
    """The model exported (no warm-up records) and reloaded: its signatures."""
    from tfalign.serving.saved_model import export_saved_model
    from tfalign.serving.warmup import WarmupSize

    path = export_saved_model(model, os.path.join(folder, "model"), decoding="exact", warmup=WarmupSize(0, 0))
    return tf.saved_model.load(str(path)).signatures


def signature_seconds(signature, widths, clips, texts, repeats):
    request = one_video_request(widths, clips, texts, seed=1)
    return round(warm_seconds(lambda: signature(**request)["num_actions"].numpy(), repeats), 3)


def part_figures(model, clips, texts, repeats) -> dict:
    """Each part of the exact alignment alone, warm, on the previous parts' outputs (seconds)."""
    from tfalign.data.batching import network_inputs
    from tfalign.dp.lattice import best_path, log_partition_table, posterior_marginals

    request = one_video_request(model.input_widths, clips, texts, seed=1)
    inputs = network_inputs(request)
    lengths = (inputs["clip_lengths"], inputs["text_lengths"])
    encode = tf.function(lambda: model.encode_stacks(inputs, training=False, compiled=True))
    stacks = encode()
    logits = tf.cast(model.lattice_logits(stacks), tf.float32)
    scores = model.lattice_scores(stacks, logits)
    table = log_partition_table(scores, *lengths)
    parts = {"stacks": lambda: encode()["video"], "lattice_classifier": lambda: model.lattice_logits(stacks),
             "dtw_potentials": lambda: model.lattice_scores(stacks, logits),
             "best_path": lambda: best_path(scores, *lengths)["num_actions"],
             "backward_table": lambda: log_partition_table(scores, *lengths),
             "forward_table_and_marginals": lambda: posterior_marginals(scores, *lengths, table=table)[1]}
    return {name: round(warm_seconds(lambda f=tf.function(fn): f().numpy(), repeats), 3) for name, fn in parts.items()}


def floor_figures(clips, texts, repeats) -> dict:
    """What a row loop costs at ``clips`` x ``texts`` before computing anything useful (seconds;
    ``per_read_and_add_per_row_us``: one more row read and added in a row, microseconds)."""
    rows = tf.constant(np.random.default_rng(0).normal(size=(clips, 1, texts + 1)).astype(np.float32))

    def row_loop(step, jit_compile=False):
        def run(rows):
            def body(i, row):
                return i + 1, step(i, row)
            return tf.while_loop(lambda i, _: i < clips, body, (0, tf.zeros([1, texts + 1])))[1]
        function = tf.function(run, jit_compile=jit_compile)
        return round(warm_seconds(lambda: function(rows).numpy(), repeats), 4)

    def reads_and_adds(count):  # ``count`` rows read and added: what a programme's row does most
        return lambda i, row: row + sum(rows[(i + k) % clips] for k in range(count))

    def cumulative(i, row):
        return tf.math.cumulative_logsumexp(row + rows[i], axis=1, reverse=True) - 1.0

    whole = tf.function(lambda x: tf.math.cumulative_logsumexp(x, axis=2, reverse=True))
    one, ten = row_loop(reads_and_adds(1)), row_loop(reads_and_adds(10))
    return {"loop_one_read": one, "loop_ten_reads": ten,
            "per_read_and_add_per_row_us": round((ten - one) / 9 / clips * 1e6, 2),
            "loop_cumulative_logsumexp": row_loop(cumulative),
            "loop_cumulative_logsumexp_xla": row_loop(cumulative, jit_compile=True),
            "whole_lattice_cumulative_logsumexp": round(warm_seconds(lambda: whole(rows).numpy(), repeats), 4)}


def measure(args) -> dict:
    import tempfile

    from tfalign.experiments import get_experiment
    from tfalign.model import build_model

    model = build_model(get_experiment(args.experiment).model, seed=0)
    rows = []
    with tempfile.TemporaryDirectory(prefix="tfalign-exact-") as folder:
        signatures = None if args.no_model else saved_model_signatures(model, folder)
        for size in args.sizes.split(","):
            clips, texts = (int(v) for v in size.split("x"))
            row = {"clips": clips, "texts": texts, "best_path": best_path_figures(clips, texts, args.repeats)}
            if args.floors:
                row["floors_seconds"] = floor_figures(clips, texts, args.repeats)
            if not args.no_model:
                row["align_exact_seconds"] = model_figures(model, clips, texts, args.repeats)
                for name in ("align_exact", "align_greedy"):
                    row[f"saved_model_{name}_seconds"] = signature_seconds(signatures[name], model.input_widths,
                                                                           clips, texts, args.repeats)
                if args.parts:
                    row["parts_seconds"] = part_figures(model, clips, texts, args.repeats)
            rows.append(row)
            print(row, flush=True)
    return {"sizes": rows, "peak_memory_mb": round(peak_memory_mb())}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiment", default="tfalign_rp_sbn")
    parser.add_argument("--sizes", default=",".join(SIZES), help="CLIPSxTEXTS, comma-separated")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-model", action="store_true", help="time best_path alone")
    parser.add_argument("--parts", action="store_true",
                        help="also time each part of the exact alignment alone (this checkout only)")
    parser.add_argument("--floors", action="store_true",
                        help="also time what any row loop of TensorFlow ops pays (this checkout only)")
    parser.add_argument("--json", help="write the result here")
    add_against_arguments(parser, "exact decoder")
    args = parser.parse_args(argv)
    if args.child:
        return child_result(measure(args))
    shared = ["--experiment", args.experiment, "--sizes", args.sizes, "--repeats", str(args.repeats)] + \
        (["--no-model"] if args.no_model else [])
    other = run_against(args.against, __file__, shared) if args.against else None
    result = {"benchmark": "exact_decoder", "machine": machine(), "experiment": args.experiment,
              "this": measure(args)}
    if other:
        result["against"] = other
        result["same_paths"] = all(a["best_path"]["actions_digest"] == b["best_path"]["actions_digest"]
                                   for a, b in zip(result["this"]["sizes"], other["sizes"]))
        result["speedup_best_path"] = [round(b["best_path"]["seconds"] / a["best_path"]["seconds"], 2)
                                       for a, b in zip(result["this"]["sizes"], other["sizes"])]
        if not args.no_model:
            result["speedup_saved_model_exact"] = [
                round(b["saved_model_align_exact_seconds"] / a["saved_model_align_exact_seconds"], 2)
                for a, b in zip(result["this"]["sizes"], other["sizes"])]
    report(result, args.json)

if __name__ == "__main__":
    main()
