"""Evaluate an alignment method on a dataset split.

Examples:
  python -m tfalign.evaluate --baseline dtw --dataset yms-synthetic --split test --json dtw.json
  python -m tfalign.evaluate --baseline unmatched --split test
  python -m tfalign.evaluate --baseline zero-shot --features joint --split test
After python -m tfalign.train --experiment tfalign_rp_sbn --epochs 40 (its run folder):
  python -m tfalign.evaluate --run runs/tfalign_rp_sbn-* --split test --decoding greedy --json out.json

Prints a table and writes {"clip_accuracy", "sentence_iou", "videos", ...}
(metrics as fractions in [0, 1], averaged over videos).

From Python: tfalign.evaluate(aligner, episodes) (aligner: a tfalign.Aligner).
"""

from __future__ import annotations

import argparse
import sys
import time

from tfalign import cli, console
from tfalign.files import write_json_atomic
from tfalign.data.datasets import load_episodes
from tfalign.data.decoding_choice import Decoding
from tfalign.evaluation.baselines import METHODS


def build_parser() -> argparse.ArgumentParser:
    parser = cli.make_parser("python -m tfalign.evaluate", __doc__)
    method = parser.add_mutually_exclusive_group(required=True)
    method.add_argument("--baseline", choices=list(METHODS),
                        help="md: minimum distance; dtw: monotone DTW with a drop cost (both on cosine similarity "
                             "after a ridge-regression joint embedding fitted on train, tuned on val); for features "
                             "in one space (a vision-language encoder's, --features joint): zero-shot (DTW on their "
                             "centred cosine, no training video read, the drop cost tuned on val) and dtw-prior "
                             "(the ridge map pulled toward the identity, its strength chosen on val); the trivial "
                             "references, which read no feature: unmatched (every clip unmatched), even (clips "
                             "spread evenly over the texts in order)")
    method.add_argument("--run", help="a training run folder written by python -m tfalign.train")
    parser.add_argument("--split", choices=["train", "val", "test"], default="test", help="the split to align")
    parser.add_argument("--checkpoint", choices=["clip_accuracy", "sentence_iou", "last"], default="clip_accuracy",
                        help="with --run: which checkpoint to evaluate (best by a validation metric, or the last)")
    parser.add_argument("--decoding", choices=Decoding.names(),
                        help="with --run: greedy, or the exact best path (decoders without history); default: the "
                             "run's own")
    parser.add_argument("--json", help="also write the result here as JSON, with per-video figures (default: none)")
    parser.add_argument("--per-video", action="store_true", help="also print each video's figures")
    cli.add_data_arguments(parser)
    return parser


def main(argv=None) -> int:
    args = cli.parse(build_parser(), argv)
    started = time.time()
    if args.baseline:
        from tfalign.evaluation.baselines import run_baseline

        config = cli.data_config_from_args(args)
        console.say(f"loading {config.dataset} ({config.features} features): train, val and {args.split}")
        episodes = {s: load_episodes(config, s) for s in ("train", "val", args.split)}
        console.say(f"running the {args.baseline} baseline on {len(episodes[args.split])} {args.split} videos"
                    + {"md": " (fitted on train, tuned on val)", "dtw": " (fitted on train, tuned on val)",
                       "dtw-prior": " (fitted on train with the prior, tuned on val)",
                       "zero-shot": " (tuned on val)"}.get(args.baseline, ""))
        result = run_baseline(args.baseline, episodes["train"], episodes["val"], episodes[args.split])
        result.update(method=args.baseline, dataset=config.dataset, features=config.features, split=args.split)
    else:
        from tfalign.evaluation.prediction import evaluate_run

        result = evaluate_run(args.run, args.split, checkpoint=args.checkpoint,
                              data_changes=cli.data_changes_from_args(args), decoding=args.decoding)
    result["seconds"] = round(time.time() - started, 2)
    if args.per_video:
        for row in result["per_video"]:
            print(f"  {row['video_id']:<12} clip acc {row['clip_accuracy']:.4f}  "
                  f"sentence IoU {row['sentence_iou']:.4f}")
    cli.print_table([
        ("method", str(result.get("method"))),
        ("dataset", f"{result.get('dataset')} ({result.get('features')}) / {args.split}"),
        ("videos", str(result["videos"])),
        ("clip accuracy", f"{result['clip_accuracy']:.4f}"),
        ("sentence IoU", f"{result['sentence_iou']:.4f}"),
    ])
    if args.json:
        write_json_atomic(args.json, result)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
