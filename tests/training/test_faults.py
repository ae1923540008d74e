"""Faults: a requeued command, a signal mid-epoch, a full disk at every kind of write, a damaged shard.

The uninterrupted run's final weights digest is the reference: every fault,
then the same command with --resume, must end at it.
"""

import errno
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import command_here, make_episode
from tfalign.files import DiskFullError

pytestmark = pytest.mark.large  # subprocesses and training runs

ARGS = ["--experiment", "rp_adam_sbn", "--dataset", "synthetic", "--batch-size", "4", "--epochs", "2",
        "--max-steps-per-epoch", "6", "--no-export"]
ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "TFALIGN_PROGRESS_SECONDS": "0"}  # a progress line every step


def train(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "tfalign.train", *args], capture_output=True, text=True,
                          timeout=timeout, env=ENV)


def train_here(capfd, *args) -> int:
    """The command in this process (conftest.command_here), for the cases that need no process of their own;
    what it wrote stays in capfd for the test to read."""
    done = command_here(capfd, "tfalign.train", *args)
    print(done.stdout, end="")
    print(done.stderr, end="", file=sys.stderr)
    return done.returncode


def digest(run_dir) -> str:
    return json.loads((pathlib.Path(run_dir) / "state.json").read_text())["weights_digest"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    done = train(*ARGS, "--output-dir", str(run_dir))
    assert done.returncode == 0, done.stderr[-2000:]
    return digest(run_dir)


def start(run_dir, *extra):
    log = open(pathlib.Path(run_dir).parent / f"{pathlib.Path(run_dir).name}.log", "w")
    process = subprocess.Popen([sys.executable, "-m", "tfalign.train", *ARGS, "--output-dir", str(run_dir), *extra],
                               stdout=log, stderr=subprocess.STDOUT, env=ENV)
    return process, pathlib.Path(log.name)


def wait_for(condition, process, seconds=300):
    deadline = time.time() + seconds
    while not condition():
        assert process.poll() is None, "the run ended before the fault"
        assert time.time() < deadline, "the run did not get there in time"
        time.sleep(0.05)


def test_a_run_killed_before_its_first_save_restarts_with_the_same_resume_command(tmp_path, reference, capfd):
    run_dir = tmp_path / "run"
    process, _ = start(run_dir)
    wait_for(lambda: (run_dir / "config.json").exists(), process)
    process.kill()
    process.wait()
    assert not (run_dir / "state.json").exists()
    done = train(*ARGS, "--output-dir", str(run_dir), "--resume")  # what a scheduler requeues
    assert done.returncode == 0, done.stderr[-2000:]
    assert "holds no saved epoch yet" in done.stdout and "starting the run from the beginning" in done.stdout
    assert digest(run_dir) == reference
    # A folder that does not exist, or another experiment's start, is still an error (a typo must not train).
    assert train_here(capfd, *ARGS, "--output-dir", str(tmp_path / "typo"), "--resume") == 2
    assert "holds no run to resume" in capfd.readouterr().err
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(run_dir / "config.json", other / "config.json")
    assert train_here(capfd, "--experiment", "rp_adam_2ln", "--dataset", "synthetic", "--output-dir", str(other),
                      "--resume") == 2
    assert "holds the start of another run" in capfd.readouterr().err.strip().splitlines()[-1]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_mid_epoch_saves_at_the_step_and_resume_is_exact(tmp_path, reference, signum):
    run_dir = tmp_path / "run"
    process, log = start(run_dir)
    wait_for(lambda: "epoch 1/2 3/6" in log.read_text(), process)
    process.send_signal(signum)
    assert process.wait(timeout=120) == 75
    lines = [line for line in log.read_text().splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "--resume" in lines[0] and "Traceback" not in log.read_text()
    state = json.loads((run_dir / "state.json").read_text())
    assert state["epoch"] == 0 and state["partial"]["steps"] >= 3  # saved in the middle of epoch 1
    if signum == signal.SIGINT:  # the same handler: resuming from its save is tested once, after SIGTERM
        return
    done = train(*ARGS, "--output-dir", str(run_dir), "--resume")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "resuming" in done.stdout and f"step {state['partial']['steps']}" in done.stdout
    assert digest(run_dir) == reference
    assert sorted(p.name for p in (run_dir / "checkpoints" / "last").iterdir()) == [
        "ckpt-2.data-00000-of-00001", "ckpt-2.index"]  # the mid-epoch checkpoint went with its epoch


def test_a_full_tmpfs_ends_in_one_line_and_resume_continues_exactly(tmp_path, reference):
    """The issue's own fault: a small tmpfs as the run folder (a user and mount namespace of our own)."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare is not installed")
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", f"mount -t tmpfs -o size=1m tmpfs {tmp_path}"],
                           capture_output=True)
    if probe.returncode:
        pytest.skip("this machine cannot mount a tmpfs in a namespace of ours")
    disk = tmp_path / "disk"
    disk.mkdir()
    argv = " ".join([sys.executable, "-m", "tfalign.train", *ARGS, "--output-dir", str(disk / "run")])
    script = (f"mount -t tmpfs -o size=80m tmpfs {disk} && {{ {argv} > {tmp_path}/1.out 2> {tmp_path}/1.err; "
              f"echo $? > {tmp_path}/1.rc; mount -o remount,size=400m {disk} && {argv} --resume "
              f"> {tmp_path}/2.out 2> {tmp_path}/2.err; echo $? > {tmp_path}/2.rc; "
              f"cp {disk}/run/state.json {tmp_path}/state.json; }}")
    subprocess.run(["unshare", "-rm", "sh", "-c", script], timeout=900, env=ENV, check=True)
    first = (tmp_path / "1.err").read_text().strip().splitlines()
    assert (tmp_path / "1.rc").read_text().strip() == "2" and len(first) == 1, first
    assert "could not be written: no space left on the device" in first[0]
    assert "the last complete checkpoint (epoch 1) is intact" in first[0]
    assert (tmp_path / "2.rc").read_text().strip() == "0", (tmp_path / "2.err").read_text()[-2000:]
    assert json.loads((tmp_path / "state.json").read_text())["weights_digest"] == reference


# ----------------------------------------------------------- every kind of write
def episodes(count, seed):
    return [make_episode([-1, 0, 0, 1, 2, 2, -1, 3], 4, clip_dim=300, text_dim=300, seed=seed + i,
                         video_id=f"v{seed}-{i}") for i in range(count)]


def quick_train(folder, **options):
    import tfalign

    return tfalign.train("rp_adam_sbn", train=episodes(6, 0), val=episodes(2, 10), output_dir=folder, epochs=2,
                         batch_size=3, log=lambda *_: None, **options)


def no_space(*_, **__):
    raise OSError(errno.ENOSPC, "No space left on device")


def export_runs_out(model, folder, *_, **__):
    """An export that had begun writing its folder when the disk filled."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "saved_model.pb").write_bytes(b"partial")
    no_space()


def fail_on_call(original, failure, call):
    """``original``, but its ``call``-th call raises ``failure``."""
    calls = []

    def wrapped(*args, **kwargs):
        calls.append(1)
        if len(calls) == call:
            raise failure
        return original(*args, **kwargs)

    return wrapped


@pytest.fixture(scope="module")
def quick_reference(tmp_path_factory):
    return quick_train(tmp_path_factory.mktemp("quick") / "run").state.weights_digest


FULL = tf.errors.ResourceExhaustedError(None, None, "SaveV2: /x/ckpt-2_temp; No space left on device")


def fill_the_disk_at(kind, folder, monkeypatch, call, **options):
    """``quick_train`` into ``folder`` with its ``call``-th write of ``kind`` failing: the DiskFullError's message."""
    from tfalign.training import diagnostics
    from tfalign.training.run_folder import RunFolder

    targets = {"resume checkpoint": (tf.train.Checkpoint, "write", FULL),
               "best checkpoint": (keras.Model, "save_weights", OSError(errno.ENOSPC, "No space left")),
               "TensorBoard events": (diagnostics.RunSummaries, "write_epoch", OSError(errno.EDQUOT, "quota")),
               "state.json": (RunFolder, "write_state", OSError(errno.ENOSPC, "No space left"))}
    owner, name, failure = targets[kind]
    with monkeypatch.context() as patch:
        patch.setattr(owner, name, fail_on_call(getattr(owner, name), failure, call))
        with pytest.raises(DiskFullError) as info:
            quick_train(folder, **options)
    message = str(info.value)
    assert "\n" not in message and "--resume" in message, (kind, message)
    return message


def test_a_full_disk_before_the_first_save_leaves_a_folder_the_same_command_starts_again(tmp_path, monkeypatch,
                                                                                        quick_reference):
    """The first epoch's best checkpoint (the only one sure to improve) fails: nothing was saved."""
    message = fill_the_disk_at("best checkpoint", tmp_path / "run", monkeypatch, call=1)
    assert "nothing of the run was saved yet" in message
    assert not (tmp_path / "run" / "state.json").exists() and (tmp_path / "run" / "config.json").exists()
    assert not [p for p in (tmp_path / "run" / "checkpoints").rglob("*") if p.is_file()]
    assert quick_train(tmp_path / "run", resume=True).state.weights_digest == quick_reference


def test_a_full_disk_at_each_write_of_an_epoch_keeps_the_checkpoint_before(tmp_path, monkeypatch, quick_reference):
    """Epoch 2 fails at each of its writes in turn (each resume meets the next): what it wrote goes,
    epoch 1's checkpoint stays named, and the last resume ends at the uninterrupted run's weights."""
    run = tmp_path / "run"
    for attempt, kind in enumerate(["resume checkpoint", "TensorBoard events", "state.json"]):
        # The first run's second write of the kind is epoch 2's; a resumed run's first one is.
        message = fill_the_disk_at(kind, run, monkeypatch, call=2 if attempt == 0 else 1, resume=attempt > 0)
        state = json.loads((run / "state.json").read_text())
        assert state["epoch"] == 1 and "the last complete checkpoint (epoch 1) is intact" in message, (kind, message)
        named = {state["last_checkpoint"]} | {b["path"] for b in state["best"].values() if b["path"]}
        on_disk = {str(p.relative_to(run)) for p in (run / "checkpoints").rglob("*") if p.is_file()}
        assert {p.removesuffix(".index").removesuffix(".data-00000-of-00001") for p in on_disk} == named, kind
    assert quick_train(run, resume=True).state.weights_digest == quick_reference


def test_a_full_disk_at_the_other_writes_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    import matplotlib.figure

    from tfalign.data import records
    from tfalign.files import write_json_atomic
    from tfalign.serving import document, saved_model
    from tfalign.api.aligner import Aligner
    from tfalign.serving.push import push
    from tfalign.training.run_folder import update_index

    run = quick_train(tmp_path / "run")
    aligner = run.aligner
    alignment = aligner.align(episodes(1, 5)[0].clip_features, episodes(1, 5)[0].text_features)
    out = tmp_path / "out"
    out.mkdir()
    cases = [  # (what is patched to fail, the write, what the message names, what must not be left)
        ((saved_model, "_write_archive"), lambda: aligner.export(out / "model"), "the SavedModel",
         ["model", ".model.tmp-*"]),
        ((keras.Model, "save_weights"), lambda: aligner.save_to_preset(out / "preset"), "the preset",
         ["preset", ".preset.tmp-*"]),
        ((pathlib.Path, "write_text"), lambda: update_index(out), "index.csv", ["index.csv", ".index.csv.tmp-*"]),
        ((pathlib.Path, "write_text"), lambda: write_json_atomic(out / "o.json", {}), "o.json", ["o.json"]),
        ((np, "savez"), lambda: records.write_npz(episodes(2, 0), out / "eps.npz"), "episode file",
         ["eps.npz", ".eps.npz.tmp-*"]),
        ((matplotlib.figure.Figure, "savefig"), lambda: document.write_outputs(
            alignment.to_dict(), alignment.clip_times, None, out / "a.json", out / "a.png"), "picture",
         ["a.json", "a.png", ".a.png.tmp-*"]),
    ]
    for (owner, name), write, named, leftovers in cases:
        with monkeypatch.context() as patch:
            patch.setattr(owner, name, export_runs_out if name == "_write_archive" else no_space)
            with pytest.raises(DiskFullError) as info:
                write()
                pytest.fail(f"{named}: nothing raised")
        assert named in str(info.value) and "no space left" in str(info.value) and "\n" not in str(info.value)
        assert not [p for pattern in leftovers for p in out.glob(pattern)], (named, sorted(out.iterdir()))
    with monkeypatch.context() as patch:  # a push: its candidate export fills the disk
        patch.setattr(saved_model, "_write_archive", export_runs_out)
        with pytest.raises(DiskFullError, match="the SavedModel"):
            push(aligner.model, episodes(2, 10), base_dir=out / "served", name="m", log=lambda *_: None)
    assert [p.name for p in (out / "served" / "m").iterdir() if p.name != ".push.lock"] == []
    assert isinstance(Aligner.from_run(run.folder), Aligner)  # the run itself is untouched


def test_a_full_disk_in_a_beam_pipeline_removes_its_unfinished_shards(tmp_path):
    beam = pytest.importorskip("apache_beam")
    from pipelines.beam_metrics import run_pipeline

    out = tmp_path / "features"
    (out / "beam-temp-shards-0001").mkdir(parents=True)  # what a sink leaves while it writes
    pipeline = beam.Pipeline()
    _ = pipeline | beam.Create([1, 2]) | beam.Map(lambda _: no_space())
    with pytest.raises(DiskFullError) as info:
        run_pipeline(pipeline, str(out), "the features pipeline")
    assert "the features pipeline could not write its shards" in str(info.value) and "\n" not in str(info.value)
    assert not list(out.glob("**/beam-temp-*"))


def test_a_full_disk_in_a_command_is_one_line_without_traceback(tmp_path, capfd, monkeypatch):
    """Through the command line (cli.run): exit 2 and one line, for a write no one wrapped too."""
    def full(*_, **__):
        raise tf.errors.ResourceExhaustedError(None, None, "{{function_node SaveV2}} No space left on device")

    monkeypatch.setattr(tf.train.Checkpoint, "write", full)
    code = train_here(capfd, *ARGS, "--max-steps-per-epoch", "1", "--output-dir", str(tmp_path / "run"))
    err = capfd.readouterr().err
    lines = [line for line in err.strip().splitlines() if line.startswith("error")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err[-2000:]
    assert "resume checkpoint" in lines[0] and "no space left" in lines[0] and "function_node" not in lines[0]


def test_a_damaged_tfrecord_shard_names_its_file_and_record(tmp_path):
    from tfalign.data import records
    from tfalign.data.episode import EpisodeError

    folder = records.write_tfrecords(episodes(3, 0), tmp_path / "eps")
    shard = next(folder.glob("*.tfrecord"))
    data = shard.read_bytes()
    shard.write_bytes(data[:-5])  # cut inside the last record (its data and checksum)
    with pytest.raises(EpisodeError) as info:
        records.read_tfrecords(folder)
    message = str(info.value)
    assert str(shard) in message and "record 2" in message and "function_node" not in message
    assert "\n" not in message and len(message) < 300
