"""The process settings the training command makes before TensorFlow starts: the same run in less memory.

Measured on the README's main command (``benchmarks/train_memory.py``, docs/results.md): the
resident set grew epoch after epoch to about 2 GB. TensorFlow's oneDNN graph rewrites keep
primitives and scratch memory for every new batch shape (each epoch draws new crops): with them
off the run holds about 1.45 GB between epochs (peak 1.65 GB against 2.08), 5-12% slower. glibc's
malloc raises its mmap threshold as large blocks are freed; it is fixed at its ceiling (32 MB)
from the start. Smaller thresholds and fewer arenas saved more (1.3 GB) but, with oneDNN off, made
training 1.5x slower: not kept. The figures move only by the float rounding of the kernels oneDNN
replaced.

Each setting is left alone when the user has set it (``TF_ENABLE_ONEDNN_OPTS=1`` turns the
rewrites back on; ``MALLOC_MMAP_THRESHOLD_``), and nothing is set once TensorFlow is imported: it
has read its variables and started its threads by then.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

MMAP_THRESHOLD_BYTES = 32 << 20  # glibc's ceiling of its own dynamic threshold (64-bit)
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter (malloc.h)


def lean_training_process() -> dict:
    """Sets the process up to train in less memory, before TensorFlow is imported.

    Returns:
        What was set: ``{"TF_ENABLE_ONEDNN_OPTS": "0", "malloc_mmap_threshold": 33554432}``,
        fewer keys for what the user had set or the C library does not offer (glibc only),
        ``{}`` once TensorFlow is imported.

    Example:
    >>> import tfalign.runtime                                   # doctest: +SKIP
    >>> tfalign.runtime.lean_training_process()                  # doctest: +SKIP
    {'TF_ENABLE_ONEDNN_OPTS': '0', 'malloc_mmap_threshold': 33554432}
    >>> import tfalign                                           # doctest: +SKIP
    """
    if "tensorflow" in sys.modules:
        return {}
    settings = {}
    if "TF_ENABLE_ONEDNN_OPTS" not in os.environ:
        os.environ["TF_ENABLE_ONEDNN_OPTS"] = settings["TF_ENABLE_ONEDNN_OPTS"] = "0"
    libc = _glibc()
    if (libc is not None and "MALLOC_MMAP_THRESHOLD_" not in os.environ
            and libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1):
        settings["malloc_mmap_threshold"] = MMAP_THRESHOLD_BYTES
    return settings


def _glibc():
    """The C library when it is glibc (mallopt and its parameters are glibc's), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        # Only glibc has it.
        libc.gnu_get_libc_version  # noqa: B018
    except (OSError, AttributeError):
        return None
    libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return libc
