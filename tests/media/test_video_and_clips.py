"""Decoding and cutting generated videos whose scenes are known."""

import numpy as np
import pytest

from tfalign.errors import UserError
from tfalign.media.clips import ClipOptions, cut_video, fixed_windows, split_long
from tfalign.media.samples import (PALETTE, Scene, cut_times, write_bad_videos, write_damaged_video,
                                   write_scene_video)
from tfalign.media.video import probe, read_frames


@pytest.mark.parametrize("fps, seconds, pattern", [
    (10, [1.0, 2.3, 0.7, 3.1, 1.5], False),
    (25, [0.64, 1.2, 2.0, 0.8], True),
    (24, [3.0, 0.5, 0.75, 1.25, 2.5, 1.0], False),
])
def test_shot_cuts_are_found_within_a_frame(tmp_path, fps, seconds, pattern):
    scenes = [Scene(PALETTE[i], s, pattern=pattern and i % 2 == 0) for i, s in enumerate(seconds)]
    path = write_scene_video(tmp_path / "scenes.mp4", scenes, fps=fps)
    info = probe(path)
    assert info.fps == fps and abs(info.duration - sum(round(s * fps) for s in seconds) / fps) < 1e-6
    clips = cut_video(path, ClipOptions(min_seconds=0.2))
    assert clips.shape == (len(scenes), 2)
    found = clips[1:, 0]
    assert np.all(np.abs(found - np.asarray(cut_times(scenes, fps))) <= 1.0 / fps + 1e-6)
    assert clips[0, 0] == 0.0 and abs(clips[-1, 1] - info.duration) < 1e-6
    assert np.allclose(clips[1:, 0], clips[:-1, 1])  # they tile the video


def test_frames_at_times_show_their_scene_and_seek_forward(tmp_path):
    scenes = [Scene(PALETTE[i], s) for i, s in enumerate([1.0, 4.0, 0.5, 6.0, 1.0])]
    path = write_scene_video(tmp_path / "scenes.mp4", scenes, fps=10)
    edges = np.concatenate([[0.0], np.cumsum([1.0, 4.0, 0.5, 6.0, 1.0])])
    times = (edges[:-1] + edges[1:]) / 2  # scene centres, with a seek across the long ones
    frames = list(read_frames(path, np.concatenate([times, [99.0]]), size=16))
    assert len(frames) == 6 and frames[0].shape == (16, 16, 3) and frames[0].dtype == np.uint8
    for frame, scene in zip(frames, scenes):
        assert np.abs(frame.reshape(-1, 3).mean(0) - np.asarray(scene.color)).max() < 12
    assert np.abs(frames[-1].astype(int) - frames[-2].astype(int)).max() < 12  # past the end: the last frame
    with pytest.raises(ValueError, match="ascending"):
        list(read_frames(path, [2.0, 1.0], size=16))


def test_fixed_windows_and_long_shots_split():
    assert fixed_windows(5.0, 2.0).tolist() == [[0.0, 2.0], [2.0, 4.0], [4.0, 5.0]]
    assert fixed_windows(4.0, 2.0).tolist() == [[0.0, 2.0], [2.0, 4.0]]
    split = split_long(np.asarray([[0.0, 1.0], [1.0, 26.0]]), 10.0)
    assert split.tolist() == [[0.0, 1.0], [1.0, 1 + 25 / 3], [1 + 25 / 3, 1 + 50 / 3], [1 + 50 / 3, 26.0]]


def test_a_long_static_shot_is_split_and_windows_tile(tmp_path):
    path = write_scene_video(tmp_path / "long.mp4", [Scene(PALETTE[0], 7.0), Scene(PALETTE[1], 2.0)], fps=10)
    clips = cut_video(path, ClipOptions(max_seconds=3.0))
    assert len(clips) == 4 and np.all(np.diff(clips, axis=1) <= 3.0 + 1e-9) and abs(clips[2, 1] - 7.0) < 0.11
    windows = cut_video(path, ClipOptions(clip_seconds=2.0))
    assert windows.tolist() == [[0.0, 2.0], [2.0, 4.0], [4.0, 6.0], [6.0, 8.0], [8.0, 9.0]]


def test_clip_options_are_checked():
    with pytest.raises(UserError, match="clip_seconds: expected a positive number"):
        ClipOptions(clip_seconds=0)
    with pytest.raises(UserError, match="min_seconds: 5 is above max_seconds 2"):
        ClipOptions(min_seconds=5, max_seconds=2)


def test_bad_videos_are_one_line_naming_the_field(tmp_path):
    for name, expected in write_bad_videos(tmp_path).items():
        with pytest.raises(UserError, match=expected) as caught:
            probe(tmp_path / name)
        assert str(caught.value).startswith(f"video: {tmp_path / name}") and "\n" not in str(caught.value)
        assert caught.value.field == "video"


def test_a_video_cut_short_is_used_up_to_where_it_decodes(tmp_path, capfd):
    """An .mp4 whose index promises 8 s but whose second half is missing: one warning
    says where the frames stop, the clips tile what decodes, and no FFmpeg log line
    reaches the console."""
    scenes = [Scene(PALETTE[i % len(PALETTE)], 1.0) for i in range(8)]
    whole = write_scene_video(tmp_path / "whole.mp4", scenes, fps=10, index_first=True)
    data = whole.read_bytes()
    (tmp_path / "short.mp4").write_bytes(data[: len(data) // 2])
    capfd.readouterr()
    info = probe(tmp_path / "short.mp4")
    assert probe(tmp_path / "short.mp4") is info  # probed once a file: warned once
    clips = cut_video(tmp_path / "short.mp4", ClipOptions(clip_seconds=1.0))
    frames = list(read_frames(tmp_path / "short.mp4", clips.mean(1), 16))
    out, err = capfd.readouterr()
    assert 1.0 < info.duration < 7.0 and clips[-1, 1] == pytest.approx(info.duration)
    assert len(frames) == len(clips)
    warnings = [line for line in err.splitlines() if "frames stop at" in line]
    assert len(warnings) == 1 and "of the 8.00 s its container states" in warnings[0]
    assert err.strip() == warnings[0], err  # nothing of FFmpeg's own
    assert probe(whole).duration == pytest.approx(8.0)


def test_a_damaged_stretch_is_skipped_with_one_warning(tmp_path, capsys):
    import av

    path = write_damaged_video(tmp_path / "zeroed.mp4")
    info = probe(path)
    frames = list(read_frames(path, np.arange(0.0, info.duration, 0.5), 16))
    assert len(frames) == len(np.arange(0.0, info.duration, 0.5))  # every time has a frame
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "cannot be decoded (the file is damaged there)" in warnings[0]
    # FFmpeg keeps its own log callback: PyAV's Python one takes the GIL from decoding threads (the hang)
    assert av.logging.get_level() is None


def test_an_mp4_cut_short_before_its_index_is_refused_as_truncated(tmp_path):
    data = write_scene_video(tmp_path / "whole.mp4", [Scene(PALETTE[0], 2.0), Scene(PALETTE[1], 2.0)]).read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="video: .*cut.mp4: is truncated: the file ends before its index"):
        probe(tmp_path / "cut.mp4")
