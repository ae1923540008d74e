"""Screenshots of TensorBoard's dashboards for a logdir, as a person sees them:
``tensorboard --logdir`` on 127.0.0.1 and headless Chromium (Debian's
``chromium`` package), one PNG per dashboard; TensorBoard is stopped after.

    python scripts/tensorboard_screenshots.py --logdir runs/paper --out screenshots/
    python scripts/tensorboard_screenshots.py --logdir runs/paper --only 'rp_*_sbn-[0-9a-f]*' --out shots/

TensorBoard selects no run on its legacy dashboards (Custom Scalars, ...) when
a logdir holds more than 40 (each run folder brings three: tensorboard/,
train/, val/); --only shows the run folders matching a glob, as a person
would pick two or three configurations to compare.
"""

import argparse
import pathlib
import tempfile
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

DASHBOARDS = ("hparams", "custom_scalars", "scalars", "images", "histograms", "timeseries")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, seconds: float = 60) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"error: TensorBoard did not answer at {url} within {seconds:.0f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--logdir", required=True, help="the folder TensorBoard reads")
    parser.add_argument("--out", default="screenshots", help="where the PNGs go (default: screenshots)")
    parser.add_argument("--browser", default=shutil.which("chromium") or shutil.which("chromium-browser") or "chromium",
                        help="the Chromium binary (default: chromium on the PATH)")
    parser.add_argument("--size", default="1700,1300", help="window width,height (default: 1700,1300)")
    parser.add_argument("--only", help="a glob of run folder names under --logdir to show (default: all)")
    args = parser.parse_args()
    if not pathlib.Path(args.logdir).is_dir():
        raise SystemExit(f"error: --logdir: {args.logdir} is not a folder")
    if not shutil.which(args.browser):
        raise SystemExit(f"error: --browser: {args.browser} not found (apt-get install chromium)")
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    logdir = args.logdir
    if args.only:  # a logdir of links to the chosen run folders
        logdir = tempfile.mkdtemp(prefix="tensorboard-only-")
        chosen = sorted(pathlib.Path(args.logdir).glob(args.only))
        if not chosen:
            raise SystemExit(f"error: --only: no run folder under {args.logdir} matches {args.only!r}")
        for run in chosen:
            (pathlib.Path(logdir) / run.name).symlink_to(run.resolve())
    port = free_port()
    board = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir", logdir, "--host",
                              "127.0.0.1", "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/data/runs")
        for dashboard in DASHBOARDS:
            png = out / f"{dashboard}.png"
            subprocess.run([args.browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                            f"--window-size={args.size}", "--virtual-time-budget=40000", f"--screenshot={png}",
                            f"http://127.0.0.1:{port}/#{dashboard}"], capture_output=True, timeout=120)
            print(f"{png}: {'written' if png.exists() else 'MISSING'}")
    finally:
        board.terminate()
        board.wait(timeout=30)
        if args.only:
            shutil.rmtree(logdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
