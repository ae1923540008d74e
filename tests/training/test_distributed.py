import json
import pathlib
import subprocess
import sys

import pytest

pytestmark = pytest.mark.large  # subprocesses, servers or training runs

CHECK = pathlib.Path(__file__).with_name("distributed_check.py")


@pytest.fixture(scope="module")
def checked():
    """distributed_check.py's figures for both optimizers, from one fresh process."""
    done = subprocess.run([sys.executable, str(CHECK), "lars", "adam"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("optimizer", ["lars", "adam"])
def test_two_replicas_equal_one_device_with_the_same_global_batch(optimizer, checked):
    result = checked[optimizer]
    assert result["replicas"] == 2
    # SBN: statistics of the global batch, whatever the replica count (float32 round-off only).
    assert result["sbn_output"] < 1e-5
    assert result["sbn_moving_mean"] < 1e-6 and result["sbn_moving_variance"] < 1e-5
    # One step: the same loss and, to float32 round-off of the all-reduce, the same weights.
    assert result["loss"][0] == pytest.approx(result["loss"][1], rel=1e-5)
    assert result["weights_moved"] > 1e-4
    assert result["weights_max_relative_difference"] < 1e-4
