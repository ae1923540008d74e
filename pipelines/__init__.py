"""Apache Beam pipelines: from videos and narrations to features, and from
annotations and features to the episode TFRecords the trainer reads.

    python -m pipelines.videos ...     videos + subtitles -> clip elements and annotations
    python -m pipelines.features ...   frames and texts -> feature shards
    python -m pipelines.prepare ...    annotations + feature shards -> episodes

They run on the DirectRunner by default; any other Beam pipeline option
(--runner DataflowRunner, --project ..., FlinkRunner, ...) is passed through.
"""

import logging as _logging
import os as _os


class _KnownNoise(_logging.Filter):
    """Beam warns on import that BigQuery's client is missing (we use none of it)."""

    def filter(self, record):
        return not str(record.msg).startswith("apitools not found")


# Quiet by default, as the commands are (tfalign.console); --verbose shows Beam's warnings.
if _os.environ.get("TFALIGN_VERBOSE") != "1" and "--verbose" not in __import__("sys").argv:
    _logging.getLogger().addFilter(_KnownNoise())
    _logging.getLogger("apache_beam").setLevel(_logging.ERROR)


def exit_without_beam(command: str) -> None:
    """A pipeline command run without Apache Beam installed: one line naming the extra
    (its ``--help`` too: the options mean nothing without Beam), exit code 2."""
    import sys

    try:
        import apache_beam  # noqa: F401
    except ImportError:
        print(f"error: {command} needs Apache Beam, which is not installed: pip install -e \".[pipelines]\"",
              file=sys.stderr)
        sys.exit(2)
