"""Memory of a whole training run: the peak resident set, the resident set at
each epoch's end, and what the run folder holds.

Runs ``python -m tfalign.train --experiment E --epochs N`` (the README's main
command by default) in a child process into a temporary folder; its peak is
the kernel's own count (``wait4``'s ``ru_maxrss``), the per-epoch figures are
read from ``/proc`` as the epoch lines arrive. ``--against REF`` runs the
tfalign of git revision REF the same way afterwards, so two versions are
compared on one machine in one sitting. Run from the repository root:

    python benchmarks/train_memory.py --against 4adf97e --json benchmarks/results/train_memory.json

A 40-epoch run of the recipe takes about 4 minutes on 2 cores; ``--epochs``
makes a quicker check (the peak is set by the largest batch so far, so it
rises over the first epochs).
"""

import argparse
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import REPO, checkout, git_revision, machine, write  # noqa: E402

EPOCH_LINE = re.compile(r"^epoch (\d+)/(\d+)\s+loss")


def resident_mb(pid: int) -> float | None:
    try:
        for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def folder_sizes(run_dir: pathlib.Path) -> dict:
    """MB per part of the run folder; a file hard-linked twice counts once, as ``du`` counts it."""
    seen, sizes = set(), {}
    for path in sorted(run_dir.rglob("*")):
        if not path.is_file():
            continue
        stat = path.stat()
        if (stat.st_dev, stat.st_ino) in seen:
            continue
        seen.add((stat.st_dev, stat.st_ino))
        relative = path.relative_to(run_dir).parts
        part = "/".join(relative[:2]) if relative[0] == "checkpoints" else relative[0]
        sizes[part] = sizes.get(part, 0.0) + stat.st_size / 2**20
    return {"total": round(sum(sizes.values()), 1), **{k: round(v, 1) for k, v in sorted(sizes.items())}}


def measure(args, code: pathlib.Path) -> dict:
    """Trains once with the tfalign found in ``code``; returns its figures."""
    out = pathlib.Path(tempfile.mkdtemp(prefix="tfalign-memory-"))
    run_dir = out / "run"
    command = [sys.executable, "-m", "tfalign.train", "--experiment", args.experiment, "--epochs", str(args.epochs),
               "--output-dir", str(run_dir)]
    env = {**os.environ, "PYTHONPATH": str(code)}
    started = time.time()
    child = subprocess.Popen(command, cwd=out, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    epochs, tail, test_line, reaped = [], [], None, False
    try:
        for line in child.stdout:
            tail = (tail + [line])[-20:]
            if line.startswith("best val clip_accuracy"):
                test_line = line.split(": ", 1)[1].strip()
            match = EPOCH_LINE.match(line)
            if match:
                rss = resident_mb(child.pid) or 0.0
                epochs.append({"epoch": int(match.group(1)), "resident_mb": round(rss, 1),
                               "seconds": round(time.time() - started, 1)})
                print(f"  epoch {match.group(1)}/{match.group(2)}: {rss:.0f} MB resident", flush=True)
        _, status, usage = os.wait4(child.pid, 0)  # the kernel's peak of the child, whatever it did between lines
        reaped = True
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit("error: the training run failed:\n" + "".join(tail))
        return {"command": " ".join(["python", *command[1:7]]), "peak_resident_mb": round(usage.ru_maxrss / 1024, 1),
                "wall_seconds": round(time.time() - started, 1), "test": test_line, "epochs": epochs,
                "run_folder_mb": folder_sizes(run_dir)}
    finally:
        if not reaped:
            child.kill()
            child.wait()
        shutil.rmtree(out, ignore_errors=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiment", default="tfalign_rp_sbn")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--json", default="benchmarks/results/train_memory.json")
    parser.add_argument("--against", metavar="REF", help="also measure git revision REF's run, after this one")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error("--epochs: expected a positive number")
    if args.against:
        git_revision(args.against)  # a bad revision fails now, not after the first run
    print(f"training {args.experiment} for {args.epochs} epochs with this checkout", flush=True)
    # Allocator settings change the figures (README: Benchmarks); the run records them.
    settings = {k: v for k, v in os.environ.items()
                if k.startswith(("MALLOC_", "TF_ONEDNN", "TF_ENABLE_ONEDNN", "ONEDNN_", "LD_PRELOAD"))}
    result = {"experiment": args.experiment, "machine": machine(), "environment": settings,
              "this": measure(args, REPO)}
    if args.against:
        folder = checkout(args.against)
        try:
            print(f"training it with {args.against} ({git_revision(args.against)[:8]})", flush=True)
            result["against"] = {"revision": args.against, "commit": git_revision(args.against),
                                 **measure(args, folder)}
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        result["peak_ratio"] = round(result["this"]["peak_resident_mb"] / result["against"]["peak_resident_mb"], 3)
    write(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
