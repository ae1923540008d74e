"""Every file the code blocks of the README and docs/usage.md write from the repository root is ignored by git."""

import pathlib
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
WRITTEN = ["runs/python-api/state.json", "presets/mine/config.json", "presets/zero-shot/config.json", "mine.keras",
           "demo/movie.mp4",
           "demo/aligned.srt", "episode/clips.npy", "response.json", "alignment.json", "timeline.png",
           "examples/0002/clips.npy", "saved_models/tfalign/1/saved_model.pb"]


def test_the_readme_blocks_outputs_are_ignored():
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    readme = (ROOT / "README.md").read_text() + (ROOT / "docs" / "usage.md").read_text()
    for path in ("presets/mine", "presets/zero-shot", "mine.keras", "demo/", "episode/", "response.json",
                 "alignment.json"):
        assert path in readme, path  # the list above follows the README
    done = subprocess.run(["git", "check-ignore", "--no-index", *WRITTEN], cwd=ROOT, capture_output=True, text=True)
    assert sorted(done.stdout.split()) == sorted(WRITTEN), done.stdout
