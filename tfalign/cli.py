"""Shared command-line plumbing: data arguments and one-line errors."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from tfalign.data.datasets import FEATURE_KINDS, DataConfig
from tfalign.data.episode import EpisodeError

USER_ERRORS = (EpisodeError, ValueError, FileNotFoundError, KeyError)


def add_data_arguments(parser: argparse.ArgumentParser, defaults: DataConfig | None = None) -> None:
    d = defaults or DataConfig()
    group = parser.add_argument_group("data")
    group.add_argument("--dataset", default=None,
                       help=f"yms-synthetic (default: the real YMS structure, synthetic features), yms, synthetic, "
                            f"synthetic-lsmdc, tfrecord:DIR or npz:PATH (default {d.dataset})")
    group.add_argument("--features", choices=sorted(FEATURE_KINDS), default=None,
                       help="feature kind: full 2048/768, rp 300/300 (random projection), lxmert 768/768")
    group.add_argument("--difficulty", type=float, default=None, help="synthetic feature difficulty in [0, 1]")
    group.add_argument("--data-seed", type=int, default=None, help="seed of the synthetic features")
    group.add_argument("--feature-file", default=None, help="YMS feature .npz ({video_id}/clip_features, ...)")
    group.add_argument("--annotation-dir", default=None, help="YMS annotation folder (dataset yms)")


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
