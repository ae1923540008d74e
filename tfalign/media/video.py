"""Decoding a video with PyAV: its facts, and the frames at given times.

Frames are read in time order, decoding forward and seeking (to the key frame
before a time) only across a gap, so a feature-length video is never held in
memory: at most one decoded frame at a time.

Damaged or odd files: a folder or a still image given as a video is refused in
one line that says what it is; a file whose frames stop before the length its
container states (a download cut short, an index that promises more than the
file holds) is used up to where it decodes, and ``probe`` warns once where
that is; FFmpeg's own log lines stay out of the console (``--verbose`` shows them).
"""

from __future__ import annotations

import dataclasses
import pathlib

import numpy as np

from tfalign import console
from tfalign.errors import UserError
from tfalign.media import require

SEEK_GAP_SECONDS = 2.0  # farther ahead than this, a seek beats decoding forward
END_CHECK_SECONDS = 2.0  # a video's last frame must decode within this of its stated end


@dataclasses.dataclass(frozen=True)
class VideoInfo:
    """What ``probe`` finds: the duration (seconds), frames a second, the frame size."""

    path: str
    duration: float
    fps: float
    width: int
    height: int

    @property
    def frame_seconds(self) -> float:
        return 1.0 / self.fps


def _open(path, field: str):
    av = require("av", "reading a video")
    path = pathlib.Path(path)
    if path.is_dir():
        raise UserError(f"{field}: {path}: is a folder, not a video file", field=field)
    if not path.is_file():
        raise UserError(f"{field}: {path}: no such file", field=field)
    quiet_ffmpeg(av)
    try:
        container = av.open(str(path))
    except av.error.EOFError:
        raise UserError(f"{field}: {path}: the file ends before its first frame (it holds no frame)",
                        field=field) from None
    except (av.error.FFmpegError, UnicodeDecodeError) as error:
        raise UserError(f"{field}: {path}: not a video file PyAV can read ({type(error).__name__})",
                        field=field) from None
    if not container.streams.video:
        container.close()
        raise UserError(f"{field}: {path}: holds no video stream", field=field)
    if container.format.name == "image2" or container.format.name.endswith("_pipe"):
        codec = container.streams.video[0].codec_context.name
        container.close()
        raise UserError(f"{field}: {path}: is a still image ({codec}), not a video", field=field)
    return container


def quiet_ffmpeg(av) -> None:
    """FFmpeg's own log lines (warnings about a damaged file, say) stay out of the console."""
    if not console.verbose():
        av.logging.set_level(av.logging.PANIC)
        av.logging.set_libav_level(av.logging.PANIC)


def probe(path, field: str = "video") -> VideoInfo:
    """The facts of a video: its duration, frame rate and size; an error naming
    ``field`` when it is not a video, has no video stream or no frame.

    Args:
        path: the video file.
        field: the argument's name, for errors.

    Returns:
        A ``VideoInfo``. The duration is the last frame's end (the last decoded
        frame's time plus one frame) when the container does not say.

    Example:
    >>> probe("movie.mp4").duration   # doctest: +SKIP
    12.0
    """
    key = _file_key(path)
    if key is not None and key in _PROBED:  # once a file: its warning is said once
        return _PROBED[key]
    av = require("av", "reading a video")
    with _open(path, field) as container:
        stream = container.streams.video[0]
        rate = float(stream.average_rate or stream.guessed_rate or 0) or 25.0
        try:
            first = next(container.decode(stream), None)
        except av.error.FFmpegError:
            first = None
        if first is None:
            raise UserError(f"{field}: {path}: the video stream holds no frame", field=field)
        duration = None
        if stream.frames:
            duration = stream.frames / rate
        elif stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration:
            duration = container.duration / 1e6
        if not duration:  # nothing says: decode to the end (a stream without an index)
            last = first
            for last in container.decode(stream):
                pass
            duration = float(last.time or 0.0) + 1.0 / rate
        else:
            duration = _decodable_end(container, stream, float(duration), rate, path, field)
        info = VideoInfo(str(path), float(duration), rate, first.width, first.height)
    if key is not None:
        _PROBED[key] = info
    return info


_PROBED: dict = {}  # (path, size, modification time) -> VideoInfo


def _file_key(path):
    try:
        stat = pathlib.Path(path).stat()
    except OSError:
        return None
    return str(pathlib.Path(path).resolve()), stat.st_size, stat.st_mtime_ns


def _decodable_end(container, stream, stated: float, rate: float, path, field: str) -> float:
    """``stated`` if a frame near it decodes; else where the frames stop (one warning says so)."""
    av = require("av", "reading a video")
    target = max(0.0, stated - END_CHECK_SECONDS)
    last = None
    try:
        container.seek(int(target / stream.time_base), stream=stream, backward=True)
        for frame in container.decode(stream):
            last = frame
            if float(frame.time or 0.0) >= target:
                return stated
    except av.error.FFmpegError:
        pass
    # The frames stop early: the last packet that decodes is where the video ends.
    container.seek(0, stream=stream, backward=True)
    last = None
    try:
        for frame in container.decode(stream):
            last = frame
    except av.error.FFmpegError:
        pass
    if last is None:
        raise UserError(f"{field}: {path}: the video stream holds no frame that decodes", field=field)
    end = float(last.time or 0.0) + 1.0 / rate
    console.warn(f"{field}: {path}: its frames stop at {end:.2f} s of the {stated:.2f} s its container states "
                 f"(the rest is damaged or missing): using the video up to {end:.2f} s")
    return end


def read_frames(path, times, size: int, progress=None, field: str = "video"):
    """Yields the RGB frame ([size, size, 3] uint8) shown at each of ``times``.

    Args:
        path: the video file.
        times: seconds, in ascending order.
        size: frames are resized to ``size`` x ``size``.
        progress: called with the count of frames read so far (optional).
        field: the argument's name, for errors.

    Yields:
        One frame a time; past the last frame, the last frame.
    """
    av = require("av", "reading a video")
    times = np.asarray(times, np.float64).reshape(-1)
    if np.any(np.diff(times) < 0):
        raise ValueError("times: expected ascending times")
    with _open(path, field) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        half_frame = 0.5 / float(stream.average_rate or 25)
        frames = current = pending = None  # current: the latest frame at or before the target
        for count, target in enumerate(times):
            if frames is None or (current is not None and target - float(current.time or 0) > SEEK_GAP_SECONDS):
                container.seek(max(0, int(target / stream.time_base)), stream=stream, backward=True)
                frames, current, pending = container.decode(stream), None, None
            while True:
                if pending is None:
                    try:
                        pending = next(frames, None)
                    except av.error.FFmpegError as error:
                        raise UserError(f"{field}: {path}: a frame near {target:.2f} s cannot be decoded "
                                        f"({type(error).__name__})", field=field) from None
                    if pending is None:
                        break  # past the last frame: the last one stays shown
                if float(pending.time or 0) - half_frame > target:
                    break
                current, pending = pending, None
            shown = current if current is not None else pending
            if shown is None:
                raise UserError(f"{field}: {path}: the video stream holds no frame", field=field)
            yield shown.to_ndarray(width=size, height=size, format="rgb24")
            if progress is not None:
                progress(count + 1)
