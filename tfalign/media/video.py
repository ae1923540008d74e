"""Decoding a video with PyAV: its facts, and the frames at given times.

Frames are read in time order, decoding forward and seeking (to the key frame
before a time) only across a gap, so a feature-length video is never held in
memory: at most one decoded frame at a time.

Damaged or odd files: a folder or a still image given as a video is refused in
one line that says what it is; an .mp4 cut short before its index (the
``moov`` box written last) is refused as truncated; a file whose frames stop
before the length its container states (a download cut short, an index that
promises more than the file holds) is used up to where it decodes, and
``probe`` warns once where that is; packets that do not decode (a damaged
stretch in the middle) are skipped, the clips there show the last good frame,
and ``read_frames`` warns once where they were. FFmpeg's own log lines stay
out of the console (``--verbose`` shows them).

Why FFmpeg is quieted by its own log level and never through PyAV's Python
log callback (``av.logging.set_level``): that callback takes the GIL from
FFmpeg's frame-decoding threads, so freeing a threaded decoder from Python
while one of them logs a decoding error deadlocks; a damaged video hung the
align command that way.
"""

from __future__ import annotations

import dataclasses
import logging
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
    except av.error.InvalidDataError:
        if _mp4_index_missing(path):
            raise UserError(f"{field}: {path}: is truncated: the file ends before its index (the mp4 'moov' box "
                            f"its writer puts last), as a download or copy cut short does; without it no frame "
                            f"can be found: use the whole file", field=field) from None
        raise UserError(f"{field}: {path}: not a video file PyAV can read (InvalidDataError)", field=field) from None
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
    """FFmpeg's own log lines (warnings about a damaged file, say) and PySceneDetect's
    stay out of the console; ``--verbose`` shows them. FFmpeg keeps its own log
    callback (no Python, no GIL: see the module's docstring)."""
    av.logging.restore_default_callback()
    av.logging.set_libav_level(av.logging.INFO if console.verbose() else av.logging.PANIC)


def quiet_scenedetect() -> None:
    """PySceneDetect's log lines (it stops at a damaged stretch and says so) stay out
    of the console; ``read_frames`` warns about the damage once."""
    logging.getLogger("pyscenedetect").setLevel(logging.INFO if console.verbose() else logging.CRITICAL + 1)


def _mp4_index_missing(path) -> bool:
    """Whether an ISO-media file (.mp4, .mov, .m4v) has its frames box but no index:
    its top-level boxes walked by their sizes, as the container lays them out."""
    with open(path, "rb") as file:
        head = file.read(12)
        if len(head) < 12 or head[4:8] != b"ftyp":
            return False
        file.seek(0)
        size_of_file, offset, seen = pathlib.Path(path).stat().st_size, 0, set()
        while offset + 8 <= size_of_file:
            file.seek(offset)
            header = file.read(16)
            size, kind = int.from_bytes(header[:4], "big"), header[4:8]
            if size == 1 and len(header) == 16:
                size = int.from_bytes(header[8:16], "big")
            seen.add(kind)
            if size < 8:  # 0: to the end of the file
                break
            offset += size
    return b"mdat" in seen and b"moov" not in seen


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
    times = np.asarray(times, np.float64).reshape(-1)
    if np.any(np.diff(times) < 0):
        raise ValueError("times: expected ascending times")
    damaged: list[float] = []  # the times of packets that did not decode
    with _open(path, field) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        half_frame = 0.5 / float(stream.average_rate or 25)
        frames = current = pending = None  # current: the latest frame at or before the target
        try:
            for count, target in enumerate(times):
                if frames is None or (current is not None and target - float(current.time or 0) > SEEK_GAP_SECONDS):
                    _close(frames)
                    container.seek(max(0, int(target / stream.time_base)), stream=stream, backward=True)
                    frames, current, pending = _decoded(container, stream, damaged), None, None
                while True:
                    if pending is None:
                        pending = next(frames, None)
                        if pending is None:
                            break  # past the last frame: the last one stays shown
                    if float(pending.time or 0) - half_frame > target:
                        break
                    current, pending = pending, None
                shown = current if current is not None else pending
                if shown is None:
                    raise UserError(f"{field}: {path}: the video stream holds no frame that decodes", field=field)
                yield shown.to_ndarray(width=size, height=size, format="rgb24")
                if progress is not None:
                    progress(count + 1)
        finally:  # the decoder goes before the container, here, not whenever the garbage is collected
            _close(frames)
    if damaged:
        console.warn(f"{field}: {path}: {len(damaged)} packet(s) between {min(damaged):.2f} s and "
                     f"{max(damaged):.2f} s cannot be decoded (the file is damaged there): the clips there show "
                     f"the last frame before the damage")


def _decoded(container, stream, damaged: list):
    """The stream's frames from where the container stands; a packet that does not
    decode is skipped (its time added to ``damaged``), as players do, and a
    container that cannot be read further ends the frames."""
    av = require("av", "reading a video")
    at = 0.0  # the latest packet's time
    try:
        for packet in container.demux(stream):
            if packet.pts is not None:
                at = float(packet.pts * packet.time_base)
            try:
                frames = packet.decode()
            except av.error.FFmpegError:
                damaged.append(at)
                continue
            yield from frames
    except av.error.FFmpegError:  # the demuxer itself: the rest of the file is unreadable
        damaged.append(at)


def _close(generator) -> None:
    if generator is not None:
        generator.close()
