"""Writing outputs all or nothing.

Every file goes to a temporary name beside its destination and is renamed
into place; a failure removes the temporary file and the folders this write
created. A folder (a SavedModel export) replaces an old one by an atomic
exchange of the two names where the kernel offers it (renameat2).

A write that runs out of space or quota (ENOSPC, EDQUOT, or EFBIG under a
file-size limit), however the library doing it reports it (an OSError,
TensorFlow's ResourceExhaustedError, h5py's OSError without an errno, an
error Beam re-raises), is a ``DiskFullError``: one line naming what could not
be written. ``writing(what, path)`` makes one of any such failure inside it.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import pathlib
import shutil

import numpy as np

from tfalign.errors import UserError


DISK_FULL_ERRNOS = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "the disk quota is exceeded",
                    errno.EFBIG: "the file is too large for the file system or the process's file-size limit"}
# How libraries that lose the errno say it (TensorFlow's and h5py's messages, Beam's re-raised ones).
_DISK_FULL_WORDS = {"no space left on device": errno.ENOSPC, "disk quota exceeded": errno.EDQUOT,
                    "file too large": errno.EFBIG, "errno = 28": errno.ENOSPC}


class DiskFullError(UserError):
    """A write ran out of space or quota: the message names what could not be written."""


def disk_full_reason(error: BaseException | None) -> str | None:
    """Why ``error`` (or an error it was raised from) is a full disk, in words; None if it is not one."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, DiskFullError):
            return str(error)
        code = getattr(error, "errno", None)
        if code in DISK_FULL_ERRNOS:
            return DISK_FULL_ERRNOS[code]
        text = str(getattr(error, "message", None) or error).lower()
        for words, code in _DISK_FULL_WORDS.items():
            if words in text:
                return DISK_FULL_ERRNOS[code]
        error = error.__cause__ or error.__context__
    return None


@contextlib.contextmanager
def writing(what: str, path=None):
    """Inside the block, a write that runs out of space is a DiskFullError:
    "``what`` (``path``) could not be written: no space left on the device"."""
    try:
        yield
    except DiskFullError:
        raise
    except Exception as error:
        reason = disk_full_reason(error)
        if reason is None:
            raise
        where = f" ({path})" if path is not None else ""
        raise DiskFullError(f"{what}{where} could not be written: {reason}") from None


def atomic_path(path: pathlib.Path, suffix: str = "") -> pathlib.Path:
    """The temporary name of ``path`` (hidden, tagged with this process's id)."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}{suffix}")


@contextlib.contextmanager
def atomic_file(path, suffix: str = ""):
    """The one temp-file-then-replace: yields a temporary path beside ``path`` to write;
    when the block succeeds it replaces ``path`` in one step, when it fails it is removed,
    so that no reader ever sees half a file. ``suffix``: for writers that go by it (".png").

    Example:
    >>> with atomic_file("out/table.csv") as tmp:   # doctest: +SKIP
    ...     tmp.write_text(table)
    """
    path = pathlib.Path(path)
    tmp = atomic_path(path, suffix)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def new_parents(path):
    """Creates the missing folders above ``path``; removes them again if the block fails."""
    path = pathlib.Path(path)
    created = []
    try:
        for parent in reversed(path.parents):
            if not parent.exists():
                parent.mkdir()
                created.append(parent)
        yield
    except BaseException:
        for folder in reversed(created):
            shutil.rmtree(folder, ignore_errors=True)
        raise


def check_output_path(path, field: str) -> pathlib.Path:
    """Refuses, before any work, an output path that cannot be written: a folder, a
    path under a file, or under a folder this process cannot write into. Missing
    folders are fine: the writers create them (and remove them again on failure).

    Example:
    >>> check_output_path("out/alignment.json", "out")   # doctest: +SKIP
    """
    path = pathlib.Path(path)
    if path.is_dir():
        raise UserError(f"{field}: {path} is a folder; expected a file name", field=field)
    existing = next(p for p in path.absolute().parents if p.exists())
    if not existing.is_dir():
        raise UserError(f"{field}: {path} cannot be written: {existing} is a file, not a folder", field=field)
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{field}: {path} cannot be written: {existing} is not writable", field=field)
    return path


def write_text_atomic(path, text: str) -> None:
    path = pathlib.Path(path)
    with writing(path.name, path), new_parents(path):
        if path.is_dir():
            raise IsADirectoryError(21, "Is a directory", str(path))
        with atomic_file(path) as tmp:
            tmp.write_text(text, encoding="utf-8")


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: pathlib.Path, b: pathlib.Path) -> bool:
    """Swaps two paths atomically (Linux renameat2); False where that is not available."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    return result == 0


def replace_folder(new: pathlib.Path, destination: pathlib.Path) -> None:
    """Moves the finished folder ``new`` to ``destination``. An existing
    destination is exchanged with it in one step (readers see the old or the
    new folder, never none), then removed."""
    new, destination = pathlib.Path(new), pathlib.Path(destination)
    if destination.exists() and _exchange(new, destination):
        shutil.rmtree(new, ignore_errors=True)  # now holds the old folder
        return
    if destination.exists():  # no atomic exchange here: two renames
        old = atomic_path(destination, ".old")
        os.replace(destination, old)
        os.replace(new, destination)
        shutil.rmtree(old, ignore_errors=True)
        return
    os.replace(new, destination)


@contextlib.contextmanager
def removed_on_failure(path, keep=lambda: False):
    """An output folder this block creates (with the folders above it that it
    creates) is removed again if the block fails, unless ``keep()`` says what
    it holds by then is worth keeping."""
    path = pathlib.Path(path)
    outermost = next((p for p in reversed([path, *path.parents]) if not p.exists()), None)
    try:
        yield path
    except BaseException:
        if outermost is not None and not keep():
            shutil.rmtree(outermost, ignore_errors=True)
        raise


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_leftovers(folder, pattern: str) -> list[pathlib.Path]:
    """Removes ``pattern`` matches in ``folder`` whose "tmp-PID" or "-PID-" tag
    names a process that is gone (a killed earlier run); returns them."""
    import re

    removed = []
    for path in pathlib.Path(folder).glob(pattern):
        match = re.search(r"(?:tmp|candidate)-(\d+)", path.name)
        if match and not pid_alive(int(match.group(1))):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def read_json_object(path, what: str = "file") -> dict:
    """A JSON object from ``path``; a missing, unreadable or malformed file is
    one UserError naming it."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such {what}")
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UserError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(value, dict):
        raise UserError(f"{path}: expected a JSON object, got {type(value).__name__}")
    return value


def strict_json(obj):
    """``obj`` with NumPy scalars and arrays as Python values and every
    non-finite float (NaN, inf) as None: JSON that every parser reads."""
    if isinstance(obj, dict):
        return {str(k): strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return strict_json(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def dumps_strict(obj, indent=2) -> str:
    return json.dumps(strict_json(obj), indent=indent, allow_nan=False)


def write_json_atomic(path, obj) -> None:
    """Writes strict JSON (no NaN or Infinity) under a temporary name, then
    renames: never half a file, nothing left if it fails."""
    write_text_atomic(path, dumps_strict(obj))
