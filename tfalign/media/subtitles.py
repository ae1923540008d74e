"""An alignment written back as subtitles: the narration retimed to the video.

Each text's cue runs from its first aligned clip's start to its last aligned
clip's end, so every time lies on a clip boundary. A text no clip is aligned
to gets no cue (nothing is invented): ``unaligned`` lists them.
"""

from __future__ import annotations

import datetime
import pathlib

from tfalign.data.alignment import Alignment
from tfalign.files import write_text_atomic
from tfalign.media import require

FORMATS = (".srt", ".vtt")


def retimed_cues(alignment: Alignment, texts) -> list[tuple[int, float, float, str]]:
    """(text index, start, end, text) of each aligned text, in order."""
    return [(j, span[0], span[1], texts[j]) for j, span in enumerate(alignment.spans) if span is not None]


def srt_text(alignment: Alignment, texts) -> str:
    """The retimed narration as SRT (``srt.compose``)."""
    srt = require("srt", "writing .srt subtitles")
    return srt.compose([srt.Subtitle(k + 1, datetime.timedelta(seconds=s), datetime.timedelta(seconds=e), text)
                        for k, (_, s, e, text) in enumerate(retimed_cues(alignment, texts))], reindex=False)


def _vtt_stamp(seconds: float) -> str:
    millis = int(round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"


def vtt_text(alignment: Alignment, texts) -> str:
    """The retimed narration as WebVTT (``webvtt-py``'s captions)."""
    webvtt = require("webvtt", "writing .vtt subtitles")
    document = webvtt.WebVTT(captions=[webvtt.Caption(_vtt_stamp(s), _vtt_stamp(e), text)
                                       for _, s, e, text in retimed_cues(alignment, texts)])
    return document.content


def write_subtitles(alignment: Alignment, texts, path) -> pathlib.Path:
    """Writes the retimed narration to ``path`` (.srt or .vtt by its suffix), atomically.

    Args:
        alignment: the alignment of the video's clips with ``texts``, with clip times.
        texts: the narration's texts, in order.
        path: the subtitle file to write.

    Returns:
        The path written.

    Example:
    >>> write_subtitles(aligner.align(clips, features, clip_times=times), texts, "aligned.srt")  # doctest: +SKIP
    """
    path = pathlib.Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"{path}: expected a subtitle file ending in one of {list(FORMATS)}")
    write_text_atomic(path, srt_text(alignment, texts) if suffix == ".srt" else vtt_text(alignment, texts))
    return path
