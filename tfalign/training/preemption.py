"""Preemption, as TensorFlow's ``PreemptionCheckpointHandler`` handles it.

A scheduler that takes a machine back (SLURM, Kubernetes, a spot instance)
sends SIGTERM and, after a grace period, SIGKILL; Ctrl-C sends SIGINT. While
``PreemptionWatch`` is active, such a signal does not kill the run: the
training loop asks ``requested`` after every step, saves a checkpoint at that
step (mid-epoch included) and ends with ``Preempted``, which the commands turn
into exit code ``EXIT_PREEMPTED`` (75, EX_TEMPFAIL: run the same command again
with ``--resume``).

Python runs a signal handler only between bytecodes, so a long step would
hold it back. The C-level handler also writes the signal to a wake-up pipe
(``signal.set_wakeup_fd``), which a watchdog thread reads at once: if the
run has not saved within the grace period, it exits without saving (the last
complete checkpoint stays intact; ``--resume`` continues from it).
"""

from __future__ import annotations

import os
import select
import signal
import sys
import threading
import time

EXIT_PREEMPTED = 75  # EX_TEMPFAIL: a temporary failure, the same command (with --resume) continues
DEFAULT_GRACE_SECONDS = 20.0  # below the 30 s schedulers usually wait before SIGKILL
SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Preempted(KeyboardInterrupt):
    """The run stopped for a signal; ``saved`` says whether a checkpoint was written at that step.

    A ``KeyboardInterrupt``, so that code which lets an interruption through lets this through too.
    """

    def __init__(self, signum: int, message: str):
        super().__init__(message)
        self.signum = signum


class PreemptionWatch:
    """Turns SIGTERM and SIGINT into a request the training loop answers at its next step.

    Args:
        grace_seconds: how long the loop has to save once a signal came; after
            it, the process exits with ``EXIT_PREEMPTED`` without saving.
        on_timeout: the line printed then (the last complete checkpoint's epoch is the caller's to say).

    A second signal while one is being answered exits at once. Outside the main
    thread (a notebook's worker thread) signals cannot be caught: the watch does nothing.
    """

    def __init__(self, grace_seconds: float = DEFAULT_GRACE_SECONDS, on_timeout=lambda: "error: preempted"):
        self.grace_seconds = float(grace_seconds)
        self.on_timeout = on_timeout
        self.requested: int | None = None
        self._previous = {}
        self._pipe = None
        self._finished = threading.Event()

    def __enter__(self) -> PreemptionWatch:
        if threading.current_thread() is not threading.main_thread():
            return self
        for signum in SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        read, write = os.pipe()
        os.set_blocking(write, False)
        try:
            self._previous_wakeup = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
        except ValueError:  # not allowed here: Python-level handling only
            os.close(read), os.close(write)
            return self
        self._pipe = (read, write)
        threading.Thread(target=self._watchdog, name="tfalign-preemption-watchdog", daemon=True).start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._finished.set()
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        if self._pipe is not None:
            signal.set_wakeup_fd(self._previous_wakeup)
            os.close(self._pipe[1])  # wakes the watchdog, which closes the read end
            self._pipe = None

    def _handle(self, signum, frame) -> None:
        if self.requested is not None:  # a second signal: stop now
            sys.stderr.write("error: interrupted again before the checkpoint was saved; the last complete "
                             "checkpoint is intact (--resume continues from it)\n")
            os._exit(EXIT_PREEMPTED)
        self.requested = signum

    def _watchdog(self) -> None:
        read = self._pipe[0]
        try:
            while not self._finished.is_set():
                ready, _, _ = select.select([read], [], [], 1.0)
                if not ready:
                    continue
                data = os.read(read, 64)
                if not data:  # the write end closed: the watch ended
                    return
                if not any(byte in (int(s) for s in SIGNALS) for byte in data):
                    continue
                deadline = time.monotonic() + self.grace_seconds
                while time.monotonic() < deadline:
                    if self._finished.wait(0.1):
                        return
                sys.stderr.write(self.on_timeout() + "\n")
                sys.stderr.flush()
                os._exit(EXIT_PREEMPTED)
        finally:
            os.close(read)
