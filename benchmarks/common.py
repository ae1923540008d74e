"""Shared helpers of the benchmark scripts: timing, peak memory, JSON output.

Imported before TensorFlow: it starts the console as the commands do (quiet
unless TFALIGN_VERBOSE=1)."""

import os
import platform
import resource
import time

from tfalign import console

console.start()

import numpy as np


def peak_memory_mb() -> float:
    """Peak resident memory of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def time_calls(fn, repeats: int, warmup: int = 2) -> np.ndarray:
    for _ in range(warmup):
        fn()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - start)
    return np.asarray(seconds)


def machine() -> dict:
    import tensorflow as tf

    return {"cpus": os.cpu_count(), "python": platform.python_version(), "tensorflow": tf.__version__,
            "gpus": len(tf.config.list_physical_devices("GPU"))}


def write(result: dict, path) -> None:
    """Strict JSON (no NaN or Infinity), written atomically, and printed."""
    from tfalign.files import dumps_strict, write_json_atomic

    write_json_atomic(path, result)
    print(dumps_strict(result))
    print(f"wrote {path}")
