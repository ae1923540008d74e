import json
import os
import socket
import subprocess
import sys

import pytest

pytestmark = pytest.mark.large  # subprocesses, servers or training runs


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def start_workers(args, cluster):
    workers = []
    for index in range(2):
        env = {**os.environ, "PYTHONUNBUFFERED": "1",
               "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
        workers.append(subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    return workers


def test_a_dead_worker_stops_the_run_and_two_workers_resume_to_the_same_weights(tmp_path):
    """Two workers (LARS: its norms span the replicas) until one dies: the other stops with one line
    instead of hanging; the same command with --resume on two new workers finishes the run, both
    with the same final weights, in the chief's folder only."""
    import time

    cluster = {"worker": [f"127.0.0.1:{p}" for p in free_ports(2)]}
    run_dir = tmp_path / "run"
    args = [sys.executable, "-m", "tfalign.train", "--experiment", "rp_lars_sbn", "--strategy", "multiworker",
            "--max-steps-per-epoch", "2", "--batch-size", "8", "--dataset", "synthetic", "--no-export",
            "--collective-timeout", "30", "--output-dir", str(run_dir)]
    workers = start_workers(args + ["--epochs", "50"], cluster)
    state = run_dir / "state.json"
    try:
        deadline = time.time() + 300
        while time.time() < deadline and not state.exists():
            time.sleep(0.2)
        assert state.exists(), workers[0].stderr.read()[-2000:] if workers[0].poll() is not None else "no epoch"
        workers[1].kill()
        _, err = workers[0].communicate(timeout=200)  # a hang would time out here
    finally:
        for w in workers:
            w.kill()
    assert workers[0].returncode == 3
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: a collective operation failed") and "--resume" in last
    done_epochs = json.loads(state.read_text())["epoch"]

    cluster = {"worker": [f"127.0.0.1:{p}" for p in free_ports(2)]}
    # --verbose prints each worker's final weights digest; a longer timeout: on a loaded machine one
    # worker may still be tracing when the other's first collective waits for it.
    workers = start_workers(args + ["--epochs", str(done_epochs + 1), "--resume", "--verbose",
                                    "--collective-timeout", "120"], cluster)
    try:
        outputs = [w.communicate(timeout=600) for w in workers]
    finally:
        for w in workers:
            w.kill()
    assert [w.returncode for w in workers] == [0, 0], outputs[0][1][-1500:] + outputs[1][1][-2500:]
    assert f"resuming {run_dir} after epoch {done_epochs}" in outputs[0][0]
    assert "(2 replica(s))" in outputs[0][0]
    digests = [next(line for line in out.splitlines() if line.startswith("final weights digest:"))
               for out, _ in outputs]
    assert digests[0] == digests[1]
    assert json.loads(state.read_text())["epoch"] == done_epochs + 1
    assert (run_dir / "metrics.json").exists()
    assert list((run_dir / "tensorboard" / "train").glob("events.out.tfevents.*"))
    # Only the chief's folder remains: the other worker's temporary folder is gone.
    assert sorted(p.name for p in run_dir.iterdir()) == ["checkpoints", "config.json", "metrics.json", "state.json",
                                                       "tensorboard"]
    assert not [p for p in tmp_path.iterdir() if p.name != "run"]
