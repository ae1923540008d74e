"""The commands' console: a quiet TensorFlow start-up, phases and progress.

TensorFlow prints start-up lines on import and on first device use (oneDNN,
"Could not find cuda drivers", an ``E0000 ... failed call to cuInit`` that
reads like an error). They come from C++ before its logging is initialized,
so TF_CPP_MIN_LOG_LEVEL does not hold them back: ``start()`` imports
TensorFlow with the process's stderr pointed at a temporary file, shown only
if the import fails. ``--verbose`` (or TFALIGN_VERBOSE=1) lets everything
through and shows the commands' details.

``Progress`` draws a bar on a terminal; when the output is a file or a pipe it
prints a line every TFALIGN_PROGRESS_SECONDS (30 by default) instead.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time

_state = {"verbose": os.environ.get("TFALIGN_VERBOSE") == "1"}


def verbose() -> bool:
    return _state["verbose"]


@contextlib.contextmanager
def _stderr_to_file():
    """Points file descriptor 2 (C++ writes there, not to sys.stderr) at a temporary file."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield captured
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def start(verbose_output: bool = False) -> None:
    """Call at the start of a command, before anything imports TensorFlow."""
    _state["verbose"] = verbose_output or _state["verbose"]
    if _state["verbose"]:
        os.environ["TFALIGN_VERBOSE"] = "1"  # child processes (a push's reload check) inherit it
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    # Libraries' Python warnings (deprecations, numpy's "input contained no data") are for developers;
    # the commands say what matters themselves (console.warn).
    import warnings

    warnings.simplefilter("ignore")
    if "tensorflow" not in sys.modules:
        with _stderr_to_file() as captured:
            try:
                import tensorflow as tf

                tf.config.list_physical_devices()  # the device start-up lines come here
            except BaseException:
                captured.seek(0)
                sys.stderr.write(captured.read().decode(errors="replace"))
                raise
    import logging

    import tensorflow as tf

    tf.get_logger().setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)  # SavedModel writing warns through absl
    tf.autograph.set_verbosity(0)


def quiet_library_import() -> None:
    """``import tfalign`` from Python: TensorFlow imported with its C++ start-up lines
    held back and its Python logger (retracing warnings among them) at ERROR, unless
    the user has set TF_CPP_MIN_LOG_LEVEL, imported TensorFlow already or asked for
    ``TFALIGN_VERBOSE=1``: then their settings hold. Python warnings are left alone."""
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ or "tensorflow" in sys.modules or _state["verbose"]:
        return
    # 3: also the E-level lines that are no error (cuInit without a GPU, oneDNN's int32 fallback);
    # a real failure raises in Python.
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    with _stderr_to_file() as captured:
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()
        except BaseException:
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
    import logging

    tf.get_logger().setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)


def say(message: str) -> None:
    """One line of what the command is doing now."""
    print(message, flush=True)


def detail(message: str) -> None:
    """A line only ``--verbose`` shows (digests, internals)."""
    if _state["verbose"]:
        print(message, flush=True)


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def duration(seconds: float) -> str:
    seconds = round(max(0.0, float(seconds)))  # rounded first: never "1 min 60 s"
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min"


def _interval() -> float:
    try:
        return float(os.environ.get("TFALIGN_PROGRESS_SECONDS", "30"))
    except ValueError:
        return 30.0


class Progress:
    """Progress through ``total`` units of countable work.

    On a terminal: a bar redrawn in place, ended by ``close()``. Elsewhere: a
    line every TFALIGN_PROGRESS_SECONDS, so a log file shows where a long phase
    is. ``values`` are shown as given (pass means, not the last batch's).
    """

    def __init__(self, total: int, label: str, stream=None, enabled: bool = True):
        self.total, self.label = max(1, int(total)), label
        self.stream = stream or sys.stdout
        self.enabled = enabled
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.started = self.last_line = time.time()
        self.done, self.values = 0, {}

    def _text(self) -> str:
        elapsed = time.time() - self.started
        left = elapsed / self.done * (self.total - self.done) if self.done else None
        values = "".join(f"  {k} {v:.4f}" if isinstance(v, float) else f"  {k} {v}" for k, v in self.values.items())
        timing = f"  {duration(elapsed)}" + (f", ~{duration(left)} left" if left is not None and self.done < self.total
                                             else "")
        return f"{self.label} {self.done}/{self.total}{values}{timing}"

    def update(self, done: int, **values) -> None:
        self.done = min(int(done), self.total)
        self.values.update(values)
        if not self.enabled:
            return
        if self.tty:
            width = 20
            filled = int(width * self.done / self.total)
            bar = "=" * filled + (">" if filled < width else "") + "." * (width - filled - 1)
            self.stream.write(f"\r\x1b[K[{bar}] {self._text()}")
            self.stream.flush()
        elif time.time() - self.last_line >= _interval():
            self.last_line = time.time()
            print(self._text(), file=self.stream, flush=True)

    def close(self) -> None:
        """Ends the bar's line on a terminal (elsewhere the caller's summary line follows)."""
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()
