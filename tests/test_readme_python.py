"""The README's Python blocks run as written (after ``<!-- python-api -->``), in a fresh process."""

import pathlib
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.large  # a training run

ROOT = pathlib.Path(__file__).resolve().parents[1]


def python_blocks(marker: str) -> list[str]:
    """The python blocks of the README section that starts at ``<!-- marker -->``."""
    section = (ROOT / "README.md").read_text().split(f"<!-- {marker} -->", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_the_python_api_block_runs_as_written(tmp_path):
    blocks = python_blocks("python-api")
    assert blocks and "tfalign.train(" in blocks[0] and "save_to_preset" in blocks[0]
    script = tmp_path / "readme.py"
    script.write_text("\n".join(blocks))
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "presets" / "mine" / "model.weights.h5").is_file() and (tmp_path / "mine.keras").is_file()
    assert (tmp_path / "runs" / "python-api" / "config.json").is_file()
    assert len(blocks) == 2 and "Aligner.zero_shot" in blocks[1]
    assert (tmp_path / "presets" / "zero-shot" / "model.weights.h5").is_file()
    assert 0.43 < float(done.stdout.strip().splitlines()[-1]) < 0.46  # the README's 0.448
