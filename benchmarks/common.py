"""Shared helpers of the benchmark scripts: timing, peak memory, the machine,
a second checkout timed side by side (``--against REF``), JSON output.

Imported before TensorFlow: it starts the console as the commands do (quiet
unless TFALIGN_VERBOSE=1). It runs against older checkouts of tfalign too
(``--against``), so it needs nothing of tfalign that they may lack.
"""

import json
import os
import pathlib
import platform
import resource
import shlex
import subprocess
import sys
import tempfile
import time

try:
    from tfalign import console

    console.start()
except ImportError:  # an older tfalign, timed with --against
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
RESULT_PREFIX = "BENCHMARK-RESULT "  # the line a child run prints its figures on


def peak_memory_mb() -> float:
    """Peak resident memory of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def one_video_request(widths, clips: int, texts: int, seed: int = 0) -> dict:
    """A request of one video of random features (the time does not depend on them), as tensors."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    return {"clip_features": tf.constant(rng.normal(size=(1, clips, widths[0])), tf.float32),
            "text_features": tf.constant(rng.normal(size=(1, texts, widths[1])), tf.float32),
            "clip_lengths": tf.constant([clips], tf.int32), "text_lengths": tf.constant([texts], tf.int32)}


def time_calls(fn, repeats: int, warmup: int = 2) -> np.ndarray:
    for _ in range(warmup):
        fn()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - start)
    return np.asarray(seconds)


def cpu() -> dict:
    """The CPU's model, clock and cores (figures move by 2x between machines of one kind)."""
    info = {}
    try:
        text = pathlib.Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "model name" and "model" not in info:
            info["model"] = value
        elif key == "cpu MHz" and "mhz" not in info:
            info["mhz"] = float(value)
        elif key == "flags" and "flags" not in info:
            flags = set(value.split())
            info["flags"] = sorted(f for f in flags if f.startswith(("avx512", "amx")) or f in ("avx2", "fma"))
    info.setdefault("model", platform.processor() or platform.machine())
    max_khz = pathlib.Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
    if max_khz.exists():
        info["max_mhz"] = int(max_khz.read_text()) / 1000
    info["cores"] = os.cpu_count()
    info["cores_usable"] = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return info


def machine() -> dict:
    import tensorflow as tf

    return {"cpu": cpu(), "cpus": os.cpu_count(), "python": platform.python_version(),
            "tensorflow": tf.__version__, "gpus": [d.name for d in tf.config.list_physical_devices("GPU")]}


def git_revision(ref: str = "HEAD") -> str:
    done = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], cwd=REPO,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"error: --against: {ref!r} is not a git revision of {REPO}")
    return done.stdout.strip()


def checkout(ref: str) -> pathlib.Path:
    """The repository's files at ``ref`` (git archive) in a temporary folder."""
    sha = git_revision(ref)
    folder = pathlib.Path(tempfile.mkdtemp(prefix=f"tfalign-{sha[:8]}-"))
    archive = subprocess.run(["git", "archive", sha], cwd=REPO, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def add_against_arguments(parser, what: str) -> None:
    """--against REF (``what`` it times of REF) and the hidden --child a run against REF is started with."""
    import argparse

    parser.add_argument("--against", metavar="REF", help=f"also time git revision REF's {what}, side by side")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)


def run_against(ref: str, script: str, argv: list[str]) -> dict:
    """Runs this checkout's benchmark ``script`` with the tfalign of revision
    ``ref`` (in a fresh process) and returns its figures."""
    import shutil

    folder = checkout(ref)
    try:
        env = {**os.environ, "PYTHONPATH": str(folder)}
        print(f"timing {ref} ({git_revision(ref)[:8]}) in a fresh process", flush=True)
        done = subprocess.run([sys.executable, str(pathlib.Path(script).resolve()), *argv, "--child"], cwd=folder,
                              env=env, capture_output=True, text=True)
        lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
        if done.returncode != 0 or not lines:
            raise SystemExit(f"error: the run against {ref} failed:\n{done.stderr[-3000:]}")
        return {"revision": ref, "commit": git_revision(ref), **json.loads(lines[-1][len(RESULT_PREFIX):])}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def child_result(result: dict) -> None:
    """A child run (--child) hands its figures to the parent on one line."""
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def code_hash() -> str:
    """A hash of the package's code (every ``tfalign/**/*.py``, its path and its bytes):
    what a reused run must have been trained with."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted((REPO / "tfalign").rglob("*.py")):
        digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def config_hash(config: dict) -> str:
    """A hash of a config (a dict; canonical JSON)."""
    import hashlib

    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


def stats(values) -> dict:
    """Mean, sample standard deviation (n - 1), range and number of ``values``."""
    values = np.asarray(values, float)
    return {"mean": float(values.mean()), "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
            "min": float(values.min()), "max": float(values.max()), "n": len(values)}


def spread(stats: dict) -> str:
    """A table cell of {"mean", "std", "n"[, "min", "max"]}: mean ± sample standard deviation (n) from
    three values on, the range for two. Files written before "min" was recorded hold the population
    deviation, converted here."""
    n = stats["n"]
    if n == 1:
        return f"{stats['mean']:.3f}"
    if n == 2 and "min" in stats:
        return f"{stats['mean']:.3f} ({stats['min']:.3f}-{stats['max']:.3f})"
    std = stats["std"] if "min" in stats else stats["std"] * (n / (n - 1)) ** 0.5
    return f"{stats['mean']:.3f} ± {std:.3f} (n={n})"


def provenance(config=None) -> dict:
    """Where a result comes from: the commit (``+changes`` when the tree was dirty), the
    command line, a hash of its config (``config``: a dict, e.g. the resolved experiment
    config; default: the command line's arguments), the machine and the date."""
    import datetime

    command = shlex.join(["python", os.path.relpath(sys.argv[0], REPO) if sys.argv[0] else "-", *sys.argv[1:]])
    digest = config_hash(config if config is not None else {"arguments": sys.argv[1:]})
    return {"commit": _head(), "command": command, "config_hash": digest, "code_hash": code_hash(),
            "machine": machine(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


def write(result: dict, path) -> None:
    """Strict JSON (no NaN or Infinity) with its ``provenance`` (the result's own
    "config", when it records one, is what its config hash covers), written
    atomically, and printed."""
    from tfalign.files import dumps_strict, write_json_atomic

    result = {**provenance(result.get("config")), **result}
    write_json_atomic(path, result)
    print(dumps_strict(result))
    print(f"wrote {path}")


def report(result: dict, path=None) -> None:
    """The benchmark's result: written to ``path`` (``write``), or printed as indented JSON."""
    if path:
        write(result, path)
    else:
        print(json.dumps(result, indent=2))


def _head() -> str:
    done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True,
                           text=True).stdout.strip()
    return done.stdout.strip() + ("+changes" if dirty else "") if done.returncode == 0 else "unknown"
