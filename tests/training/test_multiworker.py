import json
import os
import socket
import subprocess
import sys

import pytest


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_workers_train_to_the_same_weights_with_one_chief_folder(tmp_path):
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    run_dir = tmp_path / "run"
    args = [sys.executable, "-m", "tfalign.train", "--experiment", "rp_lars_sbn", "--strategy", "multiworker",
            "--epochs", "2", "--max-steps-per-epoch", "2", "--batch-size", "8", "--dataset", "synthetic",
            "--no-export", "--collective-timeout", "120", "--output-dir", str(run_dir)]
    workers = []
    for index in range(2):
        env = {**os.environ, "PYTHONUNBUFFERED": "1",
               "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
        workers.append(subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    try:
        outputs = [w.communicate(timeout=600)[0] for w in workers]
    finally:
        for w in workers:
            w.kill()
    for w, out in zip(workers, outputs):
        assert w.returncode == 0, out[-3000:]
    digests = [next(l for l in out.splitlines() if l.startswith("final weights digest:")) for out in outputs]
    assert digests[0] == digests[1]
    assert "(2 replica(s))" in outputs[0]
    assert json.loads((run_dir / "state.json").read_text())["epoch"] == 2
    assert (run_dir / "metrics.json").exists()
    assert list((run_dir / "tensorboard" / "train").glob("events.out.tfevents.*"))
    # Only the chief's folder remains: the other worker's temporary folder is gone.
    assert sorted(p.name for p in run_dir.iterdir()) == ["checkpoints", "config.json", "metrics.json", "state.json",
                                                       "tensorboard"]
    assert not [p for p in tmp_path.iterdir() if p.name != "run"]
