"""The texts of a narration file, with their times when the file has them.

- ``.srt``: its cues, through ``srt`` (times kept);
- ``.vtt``: its cues, through ``webvtt-py`` (times kept);
- anything else: a plain-text script, split into sentences by ``pysbd``
  (``split="sentences"``, the default) or taken one text a line
  (``split="lines"``); no times.

A cue's text keeps its words on one line (line breaks inside a cue become
spaces) and loses markup tags such as ``<i>``.
"""

from __future__ import annotations

import dataclasses
import pathlib
import re

from tfalign.errors import UserError
from tfalign.media import require

SPLITS = ("sentences", "lines")
_TAG = re.compile(r"<[^>]+>")


@dataclasses.dataclass(frozen=True)
class Cue:
    """One text of a narration; ``start`` and ``end`` (seconds) when the file times it."""

    text: str
    start: float | None = None
    end: float | None = None


def _clean(text: str) -> str:
    return " ".join(_TAG.sub("", text).split())


def _one_line(error) -> str:
    return " ".join(str(error).split())[:100]


def _read_text(path: pathlib.Path, field: str) -> str:
    if not path.is_file():
        raise UserError(f"{field}: {path}: no such file", field=field)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise UserError(f"{field}: {path}: not UTF-8 text (byte {error.start})", field=field) from None
    if not text.strip():
        raise UserError(f"{field}: {path}: the file is empty", field=field)
    return text


def _srt_cues(text: str, path, field: str) -> list[Cue]:
    srt = require("srt", "reading .srt subtitles")
    try:
        subtitles = list(srt.parse(text))
    except (srt.SRTParseError, ValueError) as error:
        raise UserError(f"{field}: {path}: not a valid SRT file ({_one_line(error)})",
                        field=field) from None
    return [Cue(_clean(s.content), s.start.total_seconds(), s.end.total_seconds()) for s in subtitles]


def _vtt_cues(text: str, path, field: str) -> list[Cue]:
    webvtt = require("webvtt", "reading .vtt subtitles")
    try:
        captions = webvtt.from_string(text).captions
    except (webvtt.errors.MalformedFileError, webvtt.errors.MalformedCaptionError, ValueError) as error:
        raise UserError(f"{field}: {path}: not a valid WebVTT file ({_one_line(error)})", field=field) from None
    return [Cue(_clean(c.text), _seconds(c.start), _seconds(c.end)) for c in captions]


def _seconds(stamp: str) -> float:
    """``HH:MM:SS.mmm`` (or ``MM:SS.mmm``) in seconds, to the millisecond."""
    parts = [float(p) for p in stamp.replace(",", ".").split(":")]
    while len(parts) < 3:
        parts.insert(0, 0.0)
    return round(parts[0] * 3600 + parts[1] * 60 + parts[2], 3)


def _script_texts(text: str, split: str) -> list[Cue]:
    if split == "lines":
        return [Cue(_clean(line)) for line in text.splitlines() if line.strip()]
    pysbd = require("pysbd", "splitting a script into sentences")
    segmenter = pysbd.Segmenter(language="en", clean=False)
    paragraphs = [p for p in re.split(r"\n\s*\n", text) if p.strip()]  # a blank line always ends a sentence
    return [Cue(_clean(s)) for p in paragraphs for s in segmenter.segment(" ".join(p.split())) if s.strip()]


def read_narration(path, split: str = "sentences", field: str = "narration") -> list[Cue]:
    """The texts of a narration file, in order.

    Args:
        path: a ``.srt`` or ``.vtt`` file (cues with times), or a plain-text script.
        split: for a script: "sentences" (pysbd) or "lines" (one text a non-empty line).
        field: the argument's name, for errors.

    Returns:
        A list of ``Cue`` (times set for subtitle files). An error names
        ``field`` when the file is missing, empty, not UTF-8, a broken SRT/VTT
        or holds no text.

    Example:
    >>> [c.text for c in read_narration("script.txt")]   # doctest: +SKIP
    ['A man walks in.', 'He sits down.']
    """
    if split not in SPLITS:
        raise UserError(f"split: expected one of {list(SPLITS)}, got {split!r}", field="split")
    path = pathlib.Path(path)
    text = _read_text(path, field)
    suffix = path.suffix.lower()
    if suffix == ".srt":
        cues = _srt_cues(text, path, field)
    elif suffix == ".vtt":
        cues = _vtt_cues(text, path, field)
    else:
        cues = _script_texts(text, split)
    cues = [c for c in cues if c.text]
    if not cues:
        raise UserError(f"{field}: {path}: holds no text", field=field)
    if cues[0].start is not None:
        for k, cue in enumerate(cues):
            if cue.end < cue.start:
                raise UserError(f"{field}: {path}: cue {k + 1} ends before it starts", field=field)
        cues.sort(key=lambda c: (c.start, c.end))  # files are not always in time order
    return cues
