"""Shared command-line plumbing: parsers whose help shows the defaults, data
arguments, ``--verbose`` and one-line errors."""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys

from tfalign import console
from tfalign.data.datasets import DataConfig
from tfalign.data.features import FEATURE_WIDTHS
from tfalign.errors import UserError, first_line


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


class ArgumentParser(argparse.ArgumentParser):
    """Reports a bad command line as one line (argparse prints the usage too)."""

    def error(self, message):
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def number(kind=float, low=None, high=None, low_open=False, high_open=False):
    """An argparse ``type`` for a finite number in a range; the message states the range."""
    name = "an integer" if kind is int else "a number"
    bounds = []
    if low is not None:
        bounds.append(f"{'>' if low_open else '>='} {low:g}")
    if high is not None:
        bounds.append(f"{'<' if high_open else '<='} {high:g}")
    expected = name + (f" {' and '.join(bounds)}" if bounds else "")

    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not math.isfinite(value) or (low is not None and (value <= low if low_open else value < low)) or (
                high is not None and (value >= high if high_open else value > high)):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    parse.__name__ = expected  # argparse names the type in some messages
    return parse


def count_or_all(text):
    """An argparse ``type``: an integer >= 1, or "all"."""
    if text.strip().lower() == "all":
        return "all"
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1 or 'all', got {text!r}")
    return value


count_or_all.__name__ = "an integer >= 1 or 'all'"


def make_parser(prog: str, description: str | None) -> argparse.ArgumentParser:
    """A command's parser: help that keeps the docstring's layout, defaults
    shown, one-line errors, and ``--verbose``."""
    parser = ArgumentParser(prog=prog, description=description, formatter_class=HelpFormatter)
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's start-up and log lines and the commands' details (quiet by default)")
    return parser


# The running command's flags by the argument they set (dest -> "--flag"): a library
# error that names an argument (UserError.field) is shown with the command's flag.
_FLAGS: dict[str, str] = {}


def parse(parser: argparse.ArgumentParser, argv=None, known_only=False):
    """Parses the command line and starts the console (TensorFlow quiet unless --verbose)."""
    _FLAGS.clear()
    _FLAGS.update({action.dest: action.option_strings[-1] for action in parser._actions
                   if action.option_strings and action.option_strings[-1].startswith("--")})
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
                            f"(default: the experiment's, which is {d.dataset} for every experiment shipped; "
                            f"for a --baseline, {d.dataset}; for a --run, the run's own)")
    group.add_argument("--features", choices=sorted(FEATURE_WIDTHS), default=None,
                       help="feature kind: full 2048/768, rp 300/300 (random projection), lxmert 768/768, "
                            "joint 512/512 (clips and texts in one space, as CLIP or SigLIP give them: zero-shot DTW "
                            "works on them and the closed form is pulled toward the identity) (default: the "
                            "experiment's)")
    group.add_argument("--difficulty", type=number(float, 0, 1), default=None,
                       help=f"synthetic feature difficulty in [0, 1] (default {d.difficulty})")
    group.add_argument("--data-seed", type=number(int, 0), default=None,
                       help=f"seed of the synthetic features (default {d.seed})")
    group.add_argument("--feature-file", default=None,
                       help="YMS feature .npz ({video_id}/clip_features, ...); default: none, synthetic features")
    group.add_argument("--train-videos", type=number(int, 0), default=None,
                       help="train on N videos of the training split, drawn with the data seed (the baselines fit "
                            "on the same N); 0: no labelled video, the recipe learns from --unlabelled-videos alone, "
                            "starting from zero-shot DTW (features in one space, e.g. --features joint); the "
                            "labelled validation videos still choose the epochs, the drop cost and the prior "
                            "(default: all)")
    group.add_argument("--unlabelled-videos", type=count_or_all, default=None,
                       help="also give the run N (or all) of the training-split videos outside --train-videos, "
                            "*without* their labels (drawn with the data seed); the recipe's closed form learns "
                            "from them, with --set task.unlabelled_weight=1 its CRF too, on the pseudo-labels "
                            "it is surest of, and with --train-videos 0 its network (default: none)")
    group.add_argument("--unlabelled-file", default=None,
                       help="unlabelled video/narration pairs of your own: an episode .npz or a TFRecord folder "
                            "(their labels, if any, are not read) (default: none)")
    group.add_argument("--annotation-dir", default=None,
                       help="YMS annotation folder for --dataset yms "
                            "(default: $TFALIGN_YMS_DIR, else ../shared/data/yms)")


def data_config_from_args(args, base: DataConfig | None = None) -> DataConfig:
    base = base or DataConfig()
    return dataclasses.replace(base, **data_changes_from_args(args))


def data_changes_from_args(args) -> dict:
    """The data options given on the command line (the others stay as they are)."""
    changes = {
        "dataset": args.dataset, "features": args.features, "difficulty": args.difficulty,
        "seed": args.data_seed, "feature_file": args.feature_file, "annotation_dir": args.annotation_dir,
        "train_videos": args.train_videos, "unlabelled_videos": getattr(args, "unlabelled_videos", None),
        "unlabelled_file": getattr(args, "unlabelled_file", None),
    }
    return {k: v for k, v in changes.items() if v is not None}




def add_clip_arguments(parser) -> None:
    """How a video is cut (tfalign.media.clips.ClipOptions), for every command that cuts
    videos; the defaults are ClipOptions'."""
    from tfalign.media.clips import ClipOptions

    defaults = ClipOptions()
    parser.add_argument("--clip-seconds", type=number(float, 0, low_open=True),
                        help="fixed clips of this length instead of shots (default: shots)")
    parser.add_argument("--shot-threshold", type=number(float, 0, low_open=True), default=defaults.threshold,
                        help="PySceneDetect's content threshold (lower finds more cuts)")
    parser.add_argument("--min-clip-seconds", type=number(float, 0, low_open=True), default=defaults.min_seconds,
                        help="the shortest shot")
    parser.add_argument("--max-clip-seconds", type=number(float, 0, low_open=True), default=defaults.max_seconds,
                        help="longer shots are split into equal parts")


def clip_options_from_args(args):
    """The ClipOptions of ``add_clip_arguments``' flags."""
    from tfalign.media.clips import ClipOptions

    return ClipOptions(args.clip_seconds, args.shot_threshold, args.min_clip_seconds, args.max_clip_seconds)


def error_line(error: BaseException) -> str:
    """One line for a user's error: an OSError names its file."""
    if isinstance(error, OSError) and error.strerror:
        return f"{error.filename}: {error.strerror}" if error.filename else str(error.strerror)
    first = first_line(error)
    field = getattr(error, "field", None)
    head = first.split(":", 1)[0]
    if field and field in _FLAGS and head.rsplit(".", 1)[-1] == field:  # "data.x:" or "x:", as the command spells it
        first = _FLAGS[field] + first[len(head):]
    return first if len(first) <= 600 else first[:600] + " ..."  # one line, whatever the message held


def user_errors() -> tuple:
    """The exceptions that are the user's: ours, the file system's, and
    TensorFlow's for a missing or malformed input (when it is loaded)."""
    errors = (UserError, OSError)
    tf = sys.modules.get("tensorflow")
    if tf is not None:
        errors += (tf.errors.NotFoundError, tf.errors.InvalidArgumentError, tf.errors.DataLossError,
                   tf.errors.FailedPreconditionError)
    return errors


EXIT_PREEMPTED = 75  # as training/preemption.py: stopped by a signal, the same command with --resume continues


def run(main_function, argv=None) -> int:
    """Runs a command; a user error (a full disk included) becomes one line on
    stderr and exit 2; a run stopped by a signal, its line and exit 75. Anything
    else is a bug and keeps its traceback."""
    from tfalign.files import disk_full_reason

    try:
        return main_function(argv) or 0
    except KeyboardInterrupt as error:
        if type(error).__name__ == "Preempted":  # training/preemption.py, without importing TensorFlow here
            print(f"error: {error}", file=sys.stderr)
            return EXIT_PREEMPTED
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of our output went away (| head): stop quietly
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as error:
        reason = None if isinstance(error, user_errors()) else disk_full_reason(error)
        if reason is not None:  # a write the command did not name ran out of space
            print(f"error: a write failed: {reason}", file=sys.stderr)
            return 2
        if not isinstance(error, user_errors()):
            raise
        print(f"error: {error_line(error)}", file=sys.stderr)
        return 2


def entry_point(module_name: str):
    """The installed console scripts (tfalign-train, ...) run as ``python -m`` does."""
    import importlib

    def script() -> None:
        sys.exit(run(importlib.import_module(module_name).main))

    return script


train_script = entry_point("tfalign.train")
compare_script = entry_point("tfalign.compare")
evaluate_script = entry_point("tfalign.evaluate")
export_script = entry_point("tfalign.export")
align_script = entry_point("tfalign.align")


def print_table(rows: list[tuple[str, str]]) -> None:
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"  {key:<{width}}  {value}")
