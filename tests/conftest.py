import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # as the commands run (tfalign.console)
# Two test workers share the two cores: OpenBLAS's threads, two a process, would spin-wait
# against each other's (a third of the quick set's CPU went there). Read when numpy loads
# (below), and by every process a test starts.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import pytest
from hypothesis import settings

# No per-example deadline: on a loaded 2-core CI machine a first example that
# imports or traces can take over Hypothesis's default 200 ms and fail spuriously.
settings.register_profile("tfalign", deadline=None)
settings.load_profile("tfalign")

from tfalign.data import yms

# The media tests need the [media] extra (PyAV, PySceneDetect, srt, webvtt-py, pysbd);
# `pip install -e ".[test]"` brings it, a bare checkout reports each of their files skipped.
try:
    import av, pysbd, scenedetect, srt, webvtt  # noqa: F401, E401
    MEDIA_MISSING = None
except ImportError as error:
    MEDIA_MISSING = str(error)


class _MediaExtraMissing(pytest.Item):
    def runtest(self):
        pytest.skip(f"the [media] extra is missing ({MEDIA_MISSING}): pip install -e '.[media]'")


class _MediaFileSkipped(pytest.File):
    """A media test file, not imported (its imports need the extra), reported as one skipped item."""

    def collect(self):
        yield _MediaExtraMissing.from_parent(self, name="media-extra-missing")


def pytest_pycollect_makemodule(module_path, parent):
    if MEDIA_MISSING and (module_path.parent.name == "media" or module_path.name == "test_readme_media.py"):
        return _MediaFileSkipped.from_parent(parent, path=module_path)
    return None

from tfalign.data.episode import Episode


def command_here(capfd, module: str, *args, check: bool = False):
    """``python -m MODULE ARGS`` in this process (``cli.run``, what the command and its
    console script run), for the tests whose subject is not the process itself: a process's
    start is seconds of imports. Returns a ``CompletedProcess`` (returncode, stdout, stderr)."""
    import importlib
    import subprocess

    from tfalign import cli

    capfd.readouterr()
    try:
        code = cli.run(importlib.import_module(module).main, [str(a) for a in args])
    except SystemExit as exit_:  # argparse's own exit
        code = exit_.code
    out, err = capfd.readouterr()
    if check:
        assert code == 0, out[-2000:] + err[-3000:]
    return subprocess.CompletedProcess([module, *map(str, args)], code, out, err)


@pytest.fixture
def yms_dir():
    folder = yms.default_annotation_dir()
    if folder is None:
        pytest.skip("the real YMS annotations are absent (set TFALIGN_YMS_DIR or place them at ../shared/data/yms)")
    return folder


def make_episode(clip_to_text, num_texts, clip_dim=6, text_dim=5, seed=0, video_id="ep"):
    """A small valid episode with unit-length clips and text spans covering their clips."""
    rng = np.random.default_rng(seed)
    c2t = np.asarray(clip_to_text, np.int64)
    times = np.stack([np.arange(len(c2t)), np.arange(len(c2t)) + 1.0], axis=1).astype(float)
    spans = []
    for t in range(num_texts):
        own = times[c2t == t]
        if len(own):
            spans.append([own[0, 0], own[-1, 1]])
        else:  # a text with no clips: a short span after the previous one
            start = spans[-1][1] if spans else 0.0
            spans.append([start, start + 0.5])
    spans = np.maximum.accumulate(np.asarray(spans).reshape(-1, 2), axis=0)
    return Episode(video_id=video_id, clip_features=rng.normal(size=(len(c2t), clip_dim)),
                   text_features=rng.normal(size=(num_texts, text_dim)), clip_times=times,
                   text_spans=spans, clip_to_text=c2t, unmatched_spans=times[c2t == -1])


# Media fixtures (tests/media): here, since a second conftest.py in a folder
# without __init__.py would shadow this one's helpers (make_episode).
@pytest.fixture(scope="session")
def extractors(tmp_path_factory):
    """Random-weight encoders saved to files (tfalign.media.samples.sample_encoders)."""
    pytest.importorskip("av")
    pytest.importorskip("keras_hub")
    from tfalign.media.samples import sample_encoders

    return sample_encoders(tmp_path_factory.mktemp("encoders"))


@pytest.fixture(scope="session")
def video_folder(tmp_path_factory):
    """Six generated videos with their .srt beside them (tests/media)."""
    pytest.importorskip("av")
    from tfalign.media.samples import sample_video

    folder = tmp_path_factory.mktemp("videos")
    rng = np.random.default_rng(3)
    made = {}
    for i in range(6):
        path, scenes, cues = sample_video(folder / f"clip{i}.mp4", rng)
        made[path.stem] = (path, scenes, cues)
    return folder, made
