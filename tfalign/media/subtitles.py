"""An alignment written back as subtitles: the narration retimed to the video.

Each text's cue runs from its first aligned clip's start to its last aligned
clip's end, so every time lies on a clip boundary.

Two ways out:
- ``retimed_subtitles`` / ``retime_subtitles`` (``tfalign.align --subtitles``):
  the narration's own subtitle file with only its cues' times changed (its
  text, markup, numbering, headers, styles, encoding, byte-order mark and line
  ends as they were); a cue no clip is aligned to (and a comment, or a cue
  with no words) keeps its place: its times are mapped through the aligned
  cues around it (piecewise linear from their old times to their new), and it
  is listed as unaligned, never dropped. Into another subtitle format the
  retimed file is converted by pysubs2 (what the target format cannot hold,
  such as ASS styles in SRT, goes as pysubs2 converts it).
- ``srt_text`` / ``vtt_text`` (``--srt`` / ``--vtt``): plain cues of the
  aligned texts, markup removed; a text no clip is aligned to gets no cue.
  Given ``min_confidence`` (``--min-confidence``), a cue whose text's
  confidence (the mean posterior of its clips) is below it begins with
  ``UNCERTAIN_MARKER``, or is left out with ``drop_uncertain``.
"""

from __future__ import annotations

import datetime
import pathlib
import warnings


from tfalign.data.alignment import Alignment
from tfalign.errors import UserError
from tfalign.files import atomic_file, write_text_atomic, writing
from tfalign.media import require

FORMATS = (".srt", ".vtt")
UNCERTAIN_MARKER = "(?) "  # what begins a cue below --min-confidence
RETIMED_FORMATS = (".srt", ".vtt", ".ass", ".ssa")


def retimed_cues(alignment: Alignment, texts, min_confidence=None,
                 drop_uncertain=False) -> list[tuple[int, float, float, str]]:
    """(text index, start, end, text) of each aligned text, in order; below ``min_confidence``
    (``Alignment.uncertain_texts``) marked with ``UNCERTAIN_MARKER``, or left out (``drop_uncertain``)."""
    uncertain = set(alignment.uncertain_texts(min_confidence)) if min_confidence is not None else set()
    return [(j, span[0], span[1], UNCERTAIN_MARKER + texts[j] if j in uncertain else texts[j])
            for j, span in enumerate(alignment.spans)
            if span is not None and not (drop_uncertain and j in uncertain)]


def srt_text(alignment: Alignment, texts, min_confidence=None, drop_uncertain=False) -> str:
    """The retimed narration as SRT (``srt.compose``); the uncertain cues as ``retimed_cues`` says."""
    srt = require("srt", "writing .srt subtitles")
    cues = retimed_cues(alignment, texts, min_confidence, drop_uncertain)
    return srt.compose([srt.Subtitle(k + 1, datetime.timedelta(seconds=s), datetime.timedelta(seconds=e), text)
                        for k, (_, s, e, text) in enumerate(cues)], reindex=False)


def _vtt_stamp(seconds: float) -> str:
    millis = int(round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"


def vtt_text(alignment: Alignment, texts, min_confidence=None, drop_uncertain=False) -> str:
    """The retimed narration as WebVTT (``webvtt-py``'s captions); the uncertain cues as ``retimed_cues`` says."""
    webvtt = require("webvtt", "writing .vtt subtitles")
    document = webvtt.WebVTT(captions=[webvtt.Caption(_vtt_stamp(s), _vtt_stamp(e), text) for _, s, e, text
                                       in retimed_cues(alignment, texts, min_confidence, drop_uncertain)])
    return document.content


def write_subtitles(alignment: Alignment, texts, path, min_confidence=None, drop_uncertain=False) -> pathlib.Path:
    """Writes the retimed narration to ``path`` (.srt or .vtt by its suffix), atomically.

    Args:
        alignment: the alignment of the video's clips with ``texts``, with clip times.
        texts: the narration's texts, in order.
        path: the subtitle file to write.
        min_confidence: None, or a probability: the cues of texts whose confidence
            (``Alignment.text_confidence``) is below it begin with ``UNCERTAIN_MARKER``.
        drop_uncertain: leave those cues out instead.

    Returns:
        The path written.

    Example:
    >>> write_subtitles(aligner.align(clips, features, clip_times=times), texts, "aligned.srt")  # doctest: +SKIP
    """
    path = pathlib.Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"{path}: expected a subtitle file ending in one of {list(FORMATS)}")
    compose = srt_text if suffix == ".srt" else vtt_text
    write_text_atomic(path, compose(alignment, texts, min_confidence, drop_uncertain))
    return path


def mapped_times(old_times, new_times: dict) -> list[tuple[float, float]]:
    """Every cue's new (start, end): ``new_times[k]`` for the cues in it; each other cue
    mapped linearly from the gap it stood in (between the old end of the given cue
    before it and the old start of the given cue after it, in time order) to that gap
    now, shifted as its one neighbour was at either end; unchanged when none is given.

    Args:
        old_times: (start, end) seconds of every cue, in file order.
        new_times: cue index -> its new (start, end), in time order as alignments are.

    Returns:
        A (start, end) a cue, non-negative, each end at or after its start; a cue
        mapped keeps its place between the given cues around it.

    Example:
    >>> mapped_times([(0, 1), (2, 3), (4, 5)], {0: (10, 11), 2: (20, 21)})
    [(10.0, 11.0), (14.0, 17.0), (20.0, 21.0)]
    """
    order = sorted(range(len(old_times)), key=lambda k: (old_times[k][0], old_times[k][1], k))
    given = [k for k in order if k in new_times]
    out = {k: (float(new_times[k][0]), float(new_times[k][1])) for k in given}
    before = None
    for position, k in enumerate(order):
        if k in new_times:
            before = k
            continue
        after = next((j for j in order[position + 1:] if j in new_times), None)
        start, end = (_gap_map(float(x), old_times, new_times, before, after) for x in old_times[k])
        out[k] = (start, max(start, end))
    return [out[k] for k in range(len(old_times))]


def _gap_map(x: float, old_times, new_times, before, after) -> float:
    """``x`` (an old time) in the gap between cues ``before`` and ``after`` (None: no such cue)."""
    if before is None and after is None:
        return max(0.0, x)
    if before is None:
        return max(0.0, min(float(new_times[after][0]), x + new_times[after][0] - old_times[after][0]))
    low, old_low = float(new_times[before][1]), float(old_times[before][1])
    if after is None:
        return max(0.0, low, x + low - old_low)
    high, old_high = float(new_times[after][0]), float(old_times[after][0])
    share = (x - old_low) / (old_high - old_low) if old_high > old_low else 0.0
    return max(0.0, low + min(max(share, 0.0), 1.0) * max(high - low, 0.0))


def retimed_subtitles(alignment: Alignment, narration, suffix: str | None = None,
                      encoding: str | None = None) -> tuple[bytes, list[dict]]:
    """The narration's subtitle file retimed to the alignment, as bytes, and its unaligned cues.

    Args:
        alignment: the alignment of the clips with the narration's texts (clip times set).
        narration: what ``read_narration`` returned for a subtitle file (or a script:
            then a new file is made of its texts).
        suffix: the format to write (".srt", ".vtt", ".ass", ".ssa"; default: the narration's own).
        encoding: the text encoding to write (default: the narration's, with its byte-order mark).

    Returns:
        (the file's bytes, one dict a cue no clip is aligned to: its ``cue`` number in
        the file, ``line``, ``text``, ``start`` and ``end`` as written).
    """
    document = narration.document
    own = f".{document.kind}" if document is not None else None
    suffix = (suffix or own or "").lower()
    if suffix not in RETIMED_FORMATS:
        raise UserError(f"subtitles: expected a file ending in one of {list(RETIMED_FORMATS)}, got {suffix!r}",
                        field="subtitles")
    spans = alignment.spans
    if document is None:  # a script: a new file of its texts
        text, kind = _script_subtitles(narration, spans), "srt"
        unaligned = [{"cue": j + 1, "line": None, "text": cue.text} for j, cue in enumerate(narration)
                     if spans[j] is None]
    else:
        aligned = {cue.index: spans[j] for j, cue in enumerate(narration) if spans[j] is not None}
        times = mapped_times([(c.start.seconds, c.end.seconds) for c in document.cues], aligned)
        text, kind = document.retimed(times), document.kind
        words = {cue.index: cue.text for cue in narration}
        unaligned = [{"cue": k + 1, "line": c.line, "text": words.get(k, ""), "start": round(times[k][0], 3),
                      "end": round(times[k][1], 3)} for k, c in enumerate(document.cues) if k not in aligned]
    if suffix != f".{kind}":
        text = _converted(text, kind, suffix.lstrip("."))
    return _encoded(text, narration, encoding, same_format=suffix == own), unaligned


def _script_subtitles(narration, spans) -> str:
    """A script's texts as SRT: aligned ones at their spans, the others between their neighbours."""
    srt = require("srt", "writing .srt subtitles")
    old = [(float(j), float(j) + 1.0) for j in range(len(narration))]
    times = mapped_times(old, {j: span for j, span in enumerate(spans) if span is not None})
    return srt.compose([srt.Subtitle(j + 1, datetime.timedelta(seconds=s), datetime.timedelta(seconds=e), cue.text)
                        for j, (cue, (s, e)) in enumerate(zip(narration, times))], reindex=False)


def _converted(text: str, kind: str, target: str) -> str:
    pysubs2 = require("pysubs2", "converting subtitles to another format")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pysubs2 warns of what it reads loosely
        return pysubs2.SSAFile.from_string(text, format_=kind).to_string(target)


def _encoded(text: str, narration, encoding: str | None, same_format: bool) -> bytes:
    field = "subtitles_encoding" if encoding else "subtitles"
    bom = narration.bom if encoding is None and same_format else b""
    encoding = encoding or (narration.encoding if same_format else "utf-8")
    try:
        return bom + text.encode(encoding)
    except LookupError:
        raise UserError(f"subtitles_encoding: unknown encoding {encoding!r} (e.g. utf-8, cp1252, utf-16)",
                        field="subtitles_encoding") from None
    except UnicodeEncodeError as error:
        line = text.count("\n", 0, error.start) + 1
        raise UserError(f"{field}: {encoding} cannot write {error.object[error.start]!r} (line {line}); name an "
                        f"encoding that can with subtitles_encoding (e.g. utf-8)", field=field) from None


def retime_subtitles(alignment: Alignment, narration, path, encoding: str | None = None) -> list[dict]:
    """Writes the narration's subtitle file retimed to ``path``, atomically (see ``retimed_subtitles``).

    Args:
        alignment: the alignment of the video's clips with the narration's texts, with clip times.
        narration: what ``read_narration`` returned.
        path: the file to write; its suffix is the format (.srt, .vtt, .ass, .ssa).
        encoding: the text encoding (default: the narration's, with its byte-order mark).

    Returns:
        The cues no clip is aligned to (kept in the file, their times mapped).

    Example:
    >>> narration = read_narration("movie.ass")                                  # doctest: +SKIP
    >>> alignment = aligner.align(clips, texts, clip_times=times)                # doctest: +SKIP
    >>> retime_subtitles(alignment, narration, "movie.retimed.ass")              # doctest: +SKIP
    []
    """
    path = pathlib.Path(path)
    data, unaligned = retimed_subtitles(alignment, narration, path.suffix, encoding)
    with writing("the subtitles", path), atomic_file(path, path.suffix) as tmp:
        tmp.write_bytes(data)
    return unaligned
