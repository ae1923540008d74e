"""Export a trained run as a SavedModel for TF Serving, safely.

  python -m tfalign.export --run runs/<run> [--name NAME] [--base-dir saved_models] [--min-clip-accuracy 0.0]

Writes saved_models/NAME/VERSION/ (VERSION increasing) after reloading the
export in a fresh process and checking it on the validation split (see
tfalign.serving.push). Its serving_default signature takes padded, natural-order
clip_features [B, T_v, D_v], text_features [B, T_s, D_s], clip_lengths [B],
text_lengths [B] and returns actions (0 POP_CLIP: the current clip is left
unmatched, 1 POP_TEXT: the current text is done, 2 MATCH: the current clip
belongs to the current text), num_actions and clip_to_text (-1 = unmatched);
action_probabilities adds the per-step probabilities. Each version carries in
assets/ the run's config.json, its metrics.json and a MODEL_CARD.md.

Example, after python -m tfalign.train --experiment tfalign_rp_sbn --epochs 40:
  python -m tfalign.export --run runs/tfalign_rp_sbn-* --name tfalign
"""

from __future__ import annotations

import sys

from tfalign import cli, console
from tfalign.errors import UserError


def build_parser():
    parser = cli.make_parser("python -m tfalign.export", __doc__)
    parser.add_argument("--run", required=True, help="a run folder written by python -m tfalign.train")
    parser.add_argument("--name", help="model name under --base-dir (default: the experiment's name)")
    parser.add_argument("--base-dir", default="saved_models",
                        help="TF Serving's base folder: versions go to BASE_DIR/NAME/VERSION")
    parser.add_argument("--checkpoint", choices=["clip_accuracy", "sentence_iou", "last"], default="clip_accuracy",
                        help="which checkpoint to export: the best by a validation metric, or the last")
    parser.add_argument("--min-clip-accuracy", type=cli.number(float, 0, 1), default=0.0,
                        help="refuse to push if the validation clip accuracy of the reloaded model is lower")
    parser.add_argument("--validation-videos", type=cli.number(int, 0), default=0,
                        help="check on the first N validation videos (0: all)")
    parser.add_argument("--no-xla", action="store_true",
                        help="export a decoder that runs op by op (about 3x slower) for a TF Serving without "
                             "--xla_cpu_compilation_enabled=true (default: XLA-compiled, as deploy/serve.sh serves)")
    parser.add_argument("--warmup", type=_warmup_size, default="512x192", metavar="CLIPSxTEXTS[xVIDEOS]",
                        help="write TF Serving warm-up requests (assets.extra/tf_serving_warmup_requests) for every "
                             "padded shape up to CLIPS clips x TEXTS texts (and requests of up to VIDEOS videos, "
                             "default 1), so that TF Serving compiles them when it loads the version, not on live "
                             "requests; 'none' for no warm-up (4000x800x4: films, several videos a request)")
    return parser


def _warmup_size(text):
    import argparse

    from tfalign.serving.warmup import WarmupSize

    try:
        return WarmupSize.parse(text)
    except UserError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix("warmup: ")) from None


def main(argv=None) -> int:
    args = cli.parse(build_parser(), argv)
    from tfalign.data.datasets import describe_data, load_episodes
    from tfalign.serving.model_card import export_assets
    from tfalign.serving.push import PushError, push
    from tfalign.training.checkpoints import load_model
    from tfalign.training.run_folder import run_decoding, run_metrics

    if args.name is not None and (not args.name or args.name in (".", "..") or "/" in args.name or args.name.isdigit()):
        raise UserError(f"--name: expected a model name (no '/', not a number: TF Serving's versions are numbers), "
                        f"got {args.name!r}")
    console.say(f"loading {args.run} ({args.checkpoint} checkpoint)")
    config, model = load_model(args.run, args.checkpoint)
    console.say(f"loading the validation split: {describe_data(config.data)}")
    validation = load_episodes(config.data, "val")
    if args.validation_videos:
        validation = validation[: args.validation_videos]
    decoding = run_decoding(args.run, config)
    assets = export_assets(config.to_dict(), run_metrics(args.run), model.input_widths)
    try:
        push(model, validation, args.base_dir, args.name or config.name, args.min_clip_accuracy,
             log=console.say, decoding=decoding, assets=assets, xla=not args.no_xla, warmup=args.warmup)
    except PushError as error:
        print(f"error: nothing pushed: {error}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
