"""Shared command-line plumbing: parsers whose help shows the defaults, data
arguments, ``--verbose`` and one-line errors."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from tfalign import console
from tfalign.data.datasets import FEATURE_KINDS, DataConfig
from tfalign.data.episode import EpisodeError

USER_ERRORS = (EpisodeError, ValueError, FileNotFoundError, KeyError)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the description's layout and appends each option's default to its
    help (unless the help already says it, or there is none to show)."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if ("default" in text.lower() or not action.option_strings or default is None or default is False
                or default == [] or default is argparse.SUPPRESS):
            return text
        return f"{text} (default: %(default)s)"


def make_parser(prog: str, description: str | None) -> argparse.ArgumentParser:
    """A command's parser: help that keeps the docstring's layout, defaults
    shown, and ``--verbose``."""
    parser = argparse.ArgumentParser(prog=prog, description=description, formatter_class=HelpFormatter)
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's start-up and log lines and the commands' details (quiet by default)")
    return parser


def parse(parser: argparse.ArgumentParser, argv=None, known_only=False):
    """Parses the command line and starts the console (TensorFlow quiet unless --verbose)."""
    if known_only:
        args, rest = parser.parse_known_args(argv)
        console.start(args.verbose)
        return args, rest
    args = parser.parse_args(argv)
    console.start(args.verbose)
    return args


def add_data_arguments(parser: argparse.ArgumentParser, defaults: DataConfig | None = None) -> None:
    d = defaults or DataConfig()
    group = parser.add_argument_group("data")
    group.add_argument("--dataset", default=None,
                       help=f"yms-synthetic (the real YMS structure, synthetic features; embedded, nothing to "
                            f"download), yms, synthetic, synthetic-lsmdc, tfrecord:DIR or npz:PATH "
                            f"(default: the experiment's; {d.dataset} for every experiment shipped)")
    group.add_argument("--features", choices=sorted(FEATURE_KINDS), default=None,
                       help="feature kind: full 2048/768, rp 300/300 (random projection), lxmert 768/768 "
                            "(default: the experiment's)")
    group.add_argument("--difficulty", type=float, default=None,
                       help=f"synthetic feature difficulty in [0, 1] (default {d.difficulty})")
    group.add_argument("--data-seed", type=int, default=None, help=f"seed of the synthetic features (default {d.seed})")
    group.add_argument("--feature-file", default=None,
                       help="YMS feature .npz ({video_id}/clip_features, ...); default: none, synthetic features")
    group.add_argument("--annotation-dir", default=None,
                       help="YMS annotation folder for --dataset yms (default: $TFALIGN_YMS_DIR, else ../shared/data/yms)")


def data_config_from_args(args, base: DataConfig | None = None) -> DataConfig:
    base = base or DataConfig()
    return dataclasses.replace(base, **data_changes_from_args(args))


def data_changes_from_args(args) -> dict:
    """The data options given on the command line (the others stay as they are)."""
    changes = {
        "dataset": args.dataset, "features": args.features, "difficulty": args.difficulty,
        "seed": args.data_seed, "feature_file": args.feature_file, "annotation_dir": args.annotation_dir,
    }
    return {k: v for k, v in changes.items() if v is not None}




def run(main_function, argv=None) -> int:
    """Runs a command; a user error becomes one line on stderr and exit 2."""
    try:
        return main_function(argv) or 0
    except USER_ERRORS as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def print_table(rows: list[tuple[str, str]]) -> None:
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"  {key:<{width}}  {value}")
