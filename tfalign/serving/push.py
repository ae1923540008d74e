"""Safe push, the way a TFX Pusher works.

1. export the model to a temporary folder beside the destination;
2. reload it in a *fresh process* and align a validation batch there;
3. check that the reloaded model reproduces the in-process alignment exactly,
   and that its validation clip accuracy is not below a threshold;
4. only then move it atomically to ``base_dir/name/VERSION`` (VERSION one
   more than the highest there), TF Serving's layout.
A failed check removes the temporary folder and leaves the serving folder as it was.
Pushes at once take a lock for the version, so each gets its own; the reload
child dies with its parent; a killed push's candidate is removed by the next.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import signal
import pathlib
import shutil
import subprocess
import sys
import tempfile

import numpy as np

from tfalign import console
from tfalign.data.batching import episodes_request
from tfalign.errors import UserError
from tfalign.files import remove_leftovers, writing
from tfalign.serving.saved_model import export_saved_model

_RELOAD = """
import json, sys
import numpy as np
import tensorflow as tf
data = np.load(sys.argv[2])
signatures = tf.saved_model.load(sys.argv[1]).signatures
serve = signatures["serving_default"]
from tfalign.serving.warmup import read_warmup_file, request_arrays
for log in read_warmup_file(sys.argv[1]):  # as TF Serving will read them at load
    name, inputs = request_arrays(log)
    if name not in signatures or sorted(inputs) != sorted(signatures[name].structured_input_signature[1]):
        sys.exit(f"a warm-up request names signature {name!r} or inputs {sorted(inputs)} the model lacks")
out = serve(clip_features=tf.constant(data["clip_features"]), text_features=tf.constant(data["text_features"]),
            clip_lengths=tf.constant(data["clip_lengths"]), text_lengths=tf.constant(data["text_lengths"]))
print(json.dumps({"clip_to_text": out["clip_to_text"].numpy().tolist(), "actions": out["actions"].numpy().tolist()}))
"""


class PushError(RuntimeError):
    """The candidate model failed a check; nothing was pushed."""


def next_version(model_dir: pathlib.Path) -> int:
    versions = [int(p.name) for p in model_dir.glob("*") if p.is_dir() and p.name.isdigit()]
    return max(versions, default=0) + 1


def _die_with_parent() -> None:
    """In the reload child: the kernel kills it when the pushing process dies (Linux)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


@contextlib.contextmanager
def _version_lock(model_dir: pathlib.Path):
    """One push at a time chooses a version and moves its model there."""
    with open(model_dir / ".push.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def push(model, validation_episodes, base_dir="saved_models", name="tfalign", min_clip_accuracy=0.0,
         log=print, decoding="greedy", assets=None, xla=True, warmup=None) -> pathlib.Path:
    from tfalign.data.metrics import evaluate_alignments
    from tfalign.evaluation.prediction import predict_alignments

    model_dir = pathlib.Path(base_dir) / name
    if model_dir.exists() and not model_dir.is_dir():
        raise UserError(f"base_dir: {model_dir} exists and is not a folder", field="base_dir")
    model_dir.mkdir(parents=True, exist_ok=True)
    for leftover in remove_leftovers(model_dir, ".candidate-*"):
        log(f"removed {leftover.name}, left by a push that was killed")
    candidate = pathlib.Path(tempfile.mkdtemp(prefix=f".candidate-{os.getpid()}-", dir=model_dir))
    try:
        log(f"exporting a candidate ({decoding} decoding) under {model_dir}")
        export_saved_model(model, candidate / "model", decoding=decoding, assets=assets, xla=xla, warmup=warmup)
        request = episodes_request(validation_episodes)
        with writing("the push's validation request", candidate / "request.npz"):
            np.savez(candidate / "request.npz", **request)
        log(f"reloading the candidate in a fresh process and aligning {len(validation_episodes)} validation videos")
        done = subprocess.run([sys.executable, "-c", _RELOAD, str(candidate / "model"), str(candidate / "request.npz")],
                              capture_output=True, text=True, timeout=900, preexec_fn=_die_with_parent)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no message"])[-1]
            raise PushError(f"the exported model did not reload in a fresh process: {last}")
        served = json.loads(done.stdout.strip().splitlines()[-1])
        served_alignments = [np.asarray(served["clip_to_text"][i][: e.num_clips])
                             for i, e in enumerate(validation_episodes)]
        log("aligning them in this process to compare")
        progress = console.Progress(len(validation_episodes), "validation videos")
        local = predict_alignments(model, validation_episodes, decoding=decoding, progress=progress)
        progress.close()
        mismatched = [e.video_id for e, a, b in zip(validation_episodes, served_alignments, local)
                      if not np.array_equal(a, b)]
        if mismatched:
            raise PushError(f"the reloaded model aligns {len(mismatched)} validation video(s) differently "
                            f"from the in-process model (first: {mismatched[0]})")
        accuracy = evaluate_alignments(validation_episodes, served_alignments)["clip_accuracy"]
        if accuracy < min_clip_accuracy:
            raise PushError(f"validation clip accuracy {accuracy:.4f} is below the threshold {min_clip_accuracy:.4f}")
        with _version_lock(model_dir):
            destination = model_dir / str(next_version(model_dir))
            os.replace(candidate / "model", destination)
        log(f"pushed {destination} (validation clip accuracy {accuracy:.4f}, reload reproduces "
            f"{len(validation_episodes)} alignments)")
        return destination
    finally:
        shutil.rmtree(candidate, ignore_errors=True)
