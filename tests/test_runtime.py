"""The training command's process settings (tfalign/runtime.py), each in a fresh interpreter:
they only act before TensorFlow starts."""

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.large

# Maps, touches and frees a 16 MB block twice and reports how much of it stays resident after the
# second free. glibc's default raises its mmap and trim thresholds when the first (mapped) block is
# freed, so the second is carved from the heap and kept; with the threshold fixed (at 32 MB) the
# trim threshold stays at 128 KB and the freed top of the heap goes back to the system.
PROBE = """
import ctypes, json, os, sys
sys.argv = ["tfalign-train"]
{setup}
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
def resident():
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
size = 16 << 20
for _ in range(2):
    before = resident()
    block = libc.malloc(size)
    ctypes.memset(block, 1, size)
    libc.free(block)
kept = resident() - before
print(json.dumps({{"settings": settings, "kept_mb": kept / 2**20,
                  "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS"), "tf": "tensorflow" in sys.modules}}))
"""


def probe(setup, env=None):
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "TF_ENABLE_ONEDNN"))}
    environment.update(env or {})
    out = subprocess.run([sys.executable, "-c", PROBE.format(setup=setup)], capture_output=True, text=True,
                         env=environment, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_the_training_command_turns_onednn_off_and_hands_freed_large_blocks_back_to_the_system():
    untouched = probe("settings = {}")
    assert untouched["kept_mb"] > 12  # the check can fail: glibc's default keeps the second block
    lean = probe("from tfalign.train import main\nfrom tfalign import runtime\n"
                 "settings = runtime.lean_training_process()")
    assert lean["settings"] == {"TF_ENABLE_ONEDNN_OPTS": "0", "malloc_mmap_threshold": 32 << 20}
    assert lean["onednn"] == "0" and not lean["tf"]  # importing the command does not start TensorFlow
    assert lean["kept_mb"] < 4
    command = probe("from tfalign.train import main\nmain(['--list'])\nsettings = None")  # the command does it
    assert command["onednn"] == "0" and command["tf"] and command["kept_mb"] < 4


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_the_user_s_own_settings_hold_and_nothing_is_set_once_tensorflow_runs():
    lean = "from tfalign import runtime\nsettings = runtime.lean_training_process()"
    own = probe(lean, env={"TF_ENABLE_ONEDNN_OPTS": "1"})
    assert own["settings"] == {"malloc_mmap_threshold": 32 << 20} and own["onednn"] == "1"
    own = probe(lean, env={"MALLOC_MMAP_THRESHOLD_": "65536"})
    assert own["settings"] == {"TF_ENABLE_ONEDNN_OPTS": "0"}
    late = probe("import tensorflow\nfrom tfalign import runtime\nsettings = runtime.lean_training_process()")
    assert late["settings"] == {} and late["onednn"] is None
