"""The process settings the training command makes before TensorFlow starts: the same run in less memory.

Measured on the README's main command (``benchmarks/train_memory.py``, docs/results.md): the
resident set grew epoch after epoch to about 2 GB. Two causes, each checked alone: TensorFlow's
oneDNN graph rewrites keep primitives and scratch memory for every new batch shape (each epoch
draws new crops), and glibc's malloc spreads freed tensors over one arena a thread and, once a
large block has been freed, serves the large ones from its heap, which fragments and is never
given back. With the rewrites off, two arenas, and blocks of 8 MB or more mapped and unmapped
on their own, the run holds about 1.3 GB and its figures do not move (the allocator never changes a
number; the rewrites only the float rounding of some kernels).

Each setting is left alone when the user has set it (``TF_ENABLE_ONEDNN_OPTS=1`` turns the
rewrites back on; ``MALLOC_ARENA_MAX``, ``MALLOC_MMAP_THRESHOLD_``), and nothing is set once
TensorFlow is imported: it has read its variables and started its threads by then.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

ARENAS = 2
MMAP_THRESHOLD_BYTES = 8 << 20
# glibc's mallopt parameters (malloc.h)
_M_MMAP_THRESHOLD, _M_ARENA_MAX = -3, -8


def lean_training_process() -> dict:
    """Sets the process up to train in less memory, before TensorFlow is imported.

    Returns:
        What was set: ``{"TF_ENABLE_ONEDNN_OPTS": "0", "malloc_arena_max": 2,
        "malloc_mmap_threshold": 8388608}``, fewer keys for what the user had set or the C
        library does not offer (glibc only), ``{}`` once TensorFlow is imported.

    Example:
    >>> import tfalign.runtime                                   # doctest: +SKIP
    >>> tfalign.runtime.lean_training_process()                  # doctest: +SKIP
    {'TF_ENABLE_ONEDNN_OPTS': '0', 'malloc_arena_max': 2, 'malloc_mmap_threshold': 8388608}
    >>> import tfalign                                           # doctest: +SKIP
    """
    if "tensorflow" in sys.modules:
        return {}
    settings = {}
    if "TF_ENABLE_ONEDNN_OPTS" not in os.environ:
        os.environ["TF_ENABLE_ONEDNN_OPTS"] = settings["TF_ENABLE_ONEDNN_OPTS"] = "0"
    libc = _glibc()
    for variable, parameter, value, key in (("MALLOC_ARENA_MAX", _M_ARENA_MAX, ARENAS, "malloc_arena_max"),
                                            ("MALLOC_MMAP_THRESHOLD_", _M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES,
                                             "malloc_mmap_threshold")):
        if libc is not None and variable not in os.environ and libc.mallopt(parameter, value) == 1:
            settings[key] = value
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
