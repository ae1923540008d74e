"""A damaged video through ``tfalign.align`` again and again: does every run end by itself?

    python scripts/media_demo.py --out demo --videos 6 --epochs 3        # a model with its encoders
    python benchmarks/damaged_video.py --model demo/saved_model --runs 20 --json benchmarks/results/damaged_video.json
    python benchmarks/damaged_video.py --model demo/saved_model --runs 7 --against 97d7d17   # before the fix

Writes a 24-second video whose middle fifth of bytes are zeros
(``tfalign.media.samples.write_damaged_video``), then runs ``python -m
tfalign.align --video ... --narration ...`` ``--runs`` times, each under
``--timeout`` seconds, and records each run's exit code, wall time and the
warning and error lines it printed. A run the timeout ends has exit code null
(before the fix: 5 of 7 runs never exited). ``--against REF`` runs the
command of git revision REF instead (the same video, model and narration).
Prints and writes JSON.
"""

import argparse
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

from common import checkout, git_revision, machine, report


def one_run(model, video, narration, out, timeout: float, source=None) -> dict:
    """One run of the align command (of the checkout in ``source``, when given), under ``timeout``."""
    env = {**os.environ, "PYTHONPATH": str(source)} if source else None
    started = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-m", "tfalign.align", "--model", str(model), "--video", str(video),
                               "--narration", str(narration), "--out", str(out)], capture_output=True, text=True,
                              timeout=timeout, env=env, cwd=source)
        code, stderr = done.returncode, done.stderr
    except subprocess.TimeoutExpired as expired:  # subprocess.run kills the child
        code, stderr = None, (expired.stderr or b"").decode(errors="replace")
    lines = stderr.strip().splitlines()
    return {"exit_code": code, "seconds": round(time.perf_counter() - started, 2),
            "warnings": sum(line.startswith("warning:") for line in lines),
            "errors": sum(line.startswith("error:") for line in lines), "stderr_lines": len(lines),
            "output_written": pathlib.Path(out).is_file()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a SavedModel with its feature extractors (the demo's)")
    parser.add_argument("--runs", type=int, default=20, help="how many runs (default 20)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds a run may take (default 60)")
    parser.add_argument("--json", help="write the results here (default: print them)")
    parser.add_argument("--against", metavar="REF", help="run git revision REF's align command instead")
    args = parser.parse_args(argv)
    source = checkout(args.against) if args.against else None  # run from there: its tfalign goes first
    try:
        runs = _runs(args, source)
    finally:
        if source is not None:
            shutil.rmtree(source, ignore_errors=True)
    ended = [r for r in runs if r["exit_code"] is not None]
    report({"benchmark": "damaged_video", "command": " ".join(sys.argv),
            "revision": git_revision(args.against) if args.against else None, "runs": len(runs),
            "ended_by_themselves": len(ended), "exit_codes": sorted({r["exit_code"] for r in ended}),
            "max_seconds": max(r["seconds"] for r in runs), "per_run": runs, "machine": machine()}, args.json)
    return 0 if len(ended) == len(runs) else 1


def _runs(args, source) -> list[dict]:
    """The damaged video, its narration, and ``args.runs`` runs of the command on them."""
    from tfalign.media.samples import write_damaged_video

    with tempfile.TemporaryDirectory() as folder:
        folder = pathlib.Path(folder)
        video = write_damaged_video(folder / "zeroed.mp4")
        narration = folder / "narration.srt"
        narration.write_text("1\n00:00:01,000 --> 00:00:04,000\nThe red scene.\n\n"
                             "2\n00:00:05,000 --> 00:00:09,000\nThe green scene.\n")
        runs = []
        for k in range(args.runs):
            runs.append(one_run(pathlib.Path(args.model).resolve(), video, narration, folder / f"a{k}.json",
                                args.timeout, source))
            print(f"run {k + 1}: {runs[-1]}", flush=True)
    return runs


if __name__ == "__main__":
    sys.exit(main())
