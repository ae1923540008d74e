"""Greedy alignment latency for one whole test-sized video (249 clips, 95 texts).

Times, on one model (rp_lars_sbn's network, random weights: the time does
not depend on them), the in-process compiled decoder (``model.align``: XLA on
bucketed shapes) and the same model exported and reloaded with
tf.saved_model.load, its ``serving_default`` signature (what TF Serving runs).
``--saved-model DIR`` times an existing export instead of a fresh one;
``--against REF`` also times git revision REF's in-process path, in a fresh
process of the same run. Run from the repository root:

    python benchmarks/inference_latency.py --against d7c3338 --json benchmarks/results/inference_latency.json

For scale: the paper's PyTorch code takes about 0.18 s on 2 cores.
"""

import argparse
import sys
import tempfile

sys.path.insert(0, __import__("os").path.dirname(__file__))
from common import add_against_arguments, child_result, machine, one_video_request, peak_memory_mb, run_against, time_calls, write  # noqa: E402,E501

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def build(experiment):
    """(model, greedy function): this tfalign's, or an older one's (--against)."""
    from tfalign.experiments import get_experiment

    try:
        from tfalign.model import build_model

        model = build_model(get_experiment(experiment).model, seed=0)
        return model, model.make_align_function("greedy")
    except (ImportError, AttributeError):  # before model.align (d7c3338 and the like)
        from tfalign.training.loop import _greedy_fn, build_model

        model = build_model(get_experiment(experiment), seed=0)
        return model, _greedy_fn(model)


def timed(run, repeats) -> dict:
    steps = int(run()[0])
    seconds = time_calls(run, repeats, warmup=3)
    return {"decoder_steps": steps, "seconds_median": float(np.median(seconds)),
            "seconds_p90": float(np.quantile(seconds, 0.9)), "milliseconds_median": float(1000 * np.median(seconds))}


def in_process(args) -> dict:
    model, greedy = build(args.experiment)
    inputs = one_video_request(model.input_widths, args.clips, args.texts)
    return {"what": f"Keras model ({args.experiment}), compiled in process",
            **timed(lambda: greedy(inputs)["num_actions"].numpy(), args.repeats)}


def saved_model(args) -> dict:
    if args.saved_model:
        path, what = args.saved_model, f"SavedModel {args.saved_model}"
    else:
        from tfalign.serving.saved_model import export_saved_model

        model, _ = build(args.experiment)
        path = export_saved_model(model, tempfile.mkdtemp(prefix="tfalign-latency-") + "/model")
        what = f"SavedModel of the same network ({args.experiment}), exported and reloaded"
    serve = tf.saved_model.load(str(path)).signatures["serving_default"]
    spec = serve.structured_input_signature[1]
    widths = (spec["clip_features"].shape[-1], spec["text_features"].shape[-1])
    inputs = one_video_request(widths, args.clips, args.texts)
    return {"what": what, **timed(lambda: serve(**inputs)["num_actions"].numpy(), args.repeats)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiment", default="rp_lars_sbn")
    parser.add_argument("--saved-model", help="time this SavedModel's serving_default (default: export one)")
    parser.add_argument("--clips", type=int, default=249)
    parser.add_argument("--texts", type=int, default=95)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--json", default="benchmarks/results/inference_latency.json")
    add_against_arguments(parser, "in-process path")
    args = parser.parse_args(argv)
    if args.child:
        child_result(in_process(args))
        return
    shared = ["--experiment", args.experiment, "--clips", str(args.clips), "--texts", str(args.texts),
              "--repeats", str(args.repeats)]
    other = run_against(args.against, __file__, shared) if args.against else None
    ours, served = in_process(args), saved_model(args)
    result = {"benchmark": "inference_latency", "clips": args.clips, "texts": args.texts, "in_process": ours,
              "saved_model": served,
              "saved_model_over_in_process": served["seconds_median"] / ours["seconds_median"],
              "peak_memory_mb": peak_memory_mb(), "paper_code_reference_seconds": 0.18, "machine": machine()}
    if other:
        result["against"] = other
        result["speedup_in_process"] = other["seconds_median"] / ours["seconds_median"]
        result["speedup_saved_model"] = other["seconds_median"] / served["seconds_median"]
    print(f"in process {ours['milliseconds_median']:.1f} ms, SavedModel {served['milliseconds_median']:.1f} ms"
          + (f"; {args.against} in process {other['milliseconds_median']:.1f} ms" if other else ""))
    write(result, args.json)


if __name__ == "__main__":
    main()
