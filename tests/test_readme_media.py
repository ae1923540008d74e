"""The README's media block runs as written (after ``<!-- media -->``): generated videos to ``aligned.srt``."""

import pathlib
import re
import shlex
import subprocess
import sys

import pytest

pytest.importorskip("av")
pytest.importorskip("scenedetect")
srt = pytest.importorskip("srt")
webvtt = pytest.importorskip("webvtt")

pytestmark = pytest.mark.large  # a (short) training run

ROOT = pathlib.Path(__file__).resolve().parents[1]


def bash_commands(marker: str) -> list[list[str]]:
    """The commands of the first bash block after ``<!-- marker -->``, continuations joined."""
    section = (ROOT / "README.md").read_text().split(f"<!-- {marker} -->", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, flags=re.S).group(1)
    lines = block.replace("\\\n", " ").splitlines()
    return [shlex.split(line, comments=True) for line in lines if line.strip() and not line.startswith("#")]


def test_the_media_block_goes_from_a_video_to_aligned_subtitles(tmp_path):
    commands = bash_commands("media")
    assert [c[:2] for c in commands] == [["pip", "install"], ["python", "scripts/media_demo.py"],
                                         ["python", "-m"]]
    outputs = []
    for command in commands[1:]:  # the install is .ci/run's job
        command = [sys.executable] + [str(ROOT / a) if a.startswith("scripts/") else a for a in command[1:]]
        done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, (command, done.stderr[-3000:])
        outputs.append(done.stdout)
    accuracy = float(re.search(r"validation clip accuracy ([0-9.]+)", outputs[0]).group(1))
    assert accuracy >= 0.9, outputs[0][-1000:]  # the demo aligns right
    demo = tmp_path / "demo"
    movie = list(srt.parse((demo / "movie.srt").read_text()))
    aligned = list(srt.parse((demo / "aligned.srt").read_text()))
    assert aligned and len(aligned) <= len(movie)
    starts = [c.start.total_seconds() for c in aligned]
    assert starts == sorted(starts) and all(c.end > c.start for c in aligned)
    assert {c.content for c in aligned} <= {c.content for c in movie}
    assert len(webvtt.read(str(demo / "aligned.vtt"))) == len(aligned)
    assert (demo / "alignment.json").is_file() and (demo / "timeline.png").is_file()
    retimed = list(srt.parse((demo / "retimed.srt").read_text()))  # every cue kept, only times changed
    assert [c.content for c in retimed] == [c.content for c in movie] and [c.index for c in retimed] == \
        [c.index for c in movie]
    for made, found in zip(movie, retimed):  # and the times are the generated truth's, to a frame
        assert abs((made.start - found.start).total_seconds()) <= 0.1, (made, found)
        assert abs((made.end - found.end).total_seconds()) <= 0.1, (made, found)
