"""Export a trained run as a SavedModel for TF Serving, safely.

  python -m tfalign.export --run runs/<run> [--name NAME] [--base-dir saved_models] [--min-clip-accuracy 0.0]

Writes saved_models/NAME/VERSION/ (VERSION increasing) after reloading the
export in a fresh process and checking it on the validation split (see
tfalign.serving.push). Its serving_default signature takes padded, natural-order
clip_features [B, T_v, D_v], text_features [B, T_s, D_s], clip_lengths [B],
text_lengths [B] and returns actions, num_actions and clip_to_text (-1 =
unmatched); action_probabilities adds the per-step probabilities.
"""

from __future__ import annotations

import argparse
import sys

from tfalign import cli


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m tfalign.export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="a run folder written by python -m tfalign.train")
    parser.add_argument("--name", help="model name under --base-dir (default: the experiment's name)")
    parser.add_argument("--base-dir", default="saved_models")
    parser.add_argument("--checkpoint", choices=["clip_accuracy", "sentence_iou", "last"], default="clip_accuracy")
    parser.add_argument("--min-clip-accuracy", type=float, default=0.0,
                        help="refuse to push if the validation clip accuracy of the reloaded model is lower")
    parser.add_argument("--validation-videos", type=int, default=0, help="check on the first N videos (0: all)")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from tfalign.data.datasets import load_episodes
    from tfalign.serving.push import PushError, push
    from tfalign.training.run import load_run, run_decoding

    config, model = load_run(args.run, args.checkpoint)
    validation = load_episodes(config.data, "val")
    if args.validation_videos:
        validation = validation[: args.validation_videos]
    try:
        push(model, validation, args.base_dir, args.name or config.name, args.min_clip_accuracy,
             decoding=run_decoding(args.run, config))
    except PushError as error:
        print(f"error: nothing pushed: {error}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
