"""Progress of a running pipeline, printed from where the work happens.

``ReportProgress`` passes elements through and counts them; on the
DirectRunner (this process) one count per label is shared by every bundle,
so the console shows "encoded 1200/5000 ..." as a bar on a terminal or a line
every TFALIGN_PROGRESS_SECONDS in a log; on a distributed runner each worker
reports its own share.
"""

from __future__ import annotations

import threading

import apache_beam as beam

from tfalign import console

_LOCK = threading.Lock()
_PROGRESS: dict[str, console.Progress] = {}


class ReportProgress(beam.DoFn):
    def __init__(self, label: str, total: int):
        self.label, self.total = label, total

    def process(self, element):
        with _LOCK:
            progress = _PROGRESS.setdefault(self.label, console.Progress(self.total, self.label))
            progress.update(progress.done + 1)
        yield element


def finish(label: str) -> None:
    """Ends a label's bar (on a terminal) once the pipeline is done."""
    progress = _PROGRESS.pop(label, None)
    if progress is not None:
        progress.close()
