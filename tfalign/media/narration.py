"""The texts of a narration file, with their times when the file has them.

- ``.srt``: its cues, through ``srt`` (times kept);
- ``.vtt``: its cues, through ``webvtt-py`` (times kept);
- ``.ass`` / ``.ssa``: its dialogue events, through ``pysubs2`` (times kept;
  comments and vector drawings are not texts);
- anything else: a plain-text script, split into sentences by ``pysbd``
  (``split="sentences"``, the default) or taken one text a line
  (``split="lines"``); no times.

Encodings: a byte-order mark says it (UTF-8, UTF-16, UTF-32); else UTF-8 if
the bytes are UTF-8; else ``charset-normalizer`` detects it (most subtitle
files in the wild are Windows-1252, Latin-1 or another legacy code page; a
short file that reads about as well in several goes to Windows-1252);
``encoding`` forces one. Text with control characters (a binary file, NULs)
is refused.

A cue's markup goes and its words stay: ASS override blocks (``{\\an8}``,
``{\\i1}``) and line breaks (``\\N``), HTML-like tags (``<i>``, ``<font
color=...>``, WebVTT's ``<c.red>``, ``<v Bob>`` and timestamps) are removed as
an HTML tokenizer reads them (so "x < 5 and y > 7" is text, not a tag), and
entities (``&amp;``) are decoded. A cue's lines become one line. Cues left
with no words (empty cues, markup only) are dropped, and ``read_narration``
says how many (``Narration.dropped``): they have nothing to align.
"""

from __future__ import annotations

import codecs
import dataclasses
import html.parser
import pathlib
import re
import unicodedata

from tfalign.errors import UserError
from tfalign.media import require

SPLITS = ("sentences", "lines")
SUBTITLE_SUFFIXES = (".srt", ".vtt", ".ass", ".ssa")
WESTERN_MARGIN = 0.3  # of charset-normalizer's mess ratio (0 = reads as clean text; another script in cp1252 ~1)
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
_ASS_OVERRIDE = re.compile(r"\{\\[^{}]*\}")  # {\an8}, {\i1}: a block with a backslash (other braces are text)
_ASS_DRAWING = re.compile(r"\{[^{}]*\\p[1-9]")
_ASS_BREAKS = re.compile(r"\\[Nnh]")
_VTT_TIMESTAMP = re.compile(r"<\d{1,2}(?::\d{2}){1,2}\.\d{3}>")


@dataclasses.dataclass(frozen=True)
class Cue:
    """One text of a narration; ``start`` and ``end`` (seconds) when the file times it."""

    text: str
    start: float | None = None
    end: float | None = None


class Narration(list):
    """The cues of a narration file (a list of ``Cue``), with what reading it found:
    ``encoding`` (how its bytes were read) and ``dropped`` (cues with no words)."""

    def __init__(self, cues=(), encoding: str = "utf-8", dropped: int = 0):
        super().__init__(cues)
        self.encoding, self.dropped = encoding, dropped


class _TextOnly(html.parser.HTMLParser):
    """The text of HTML-like markup: tags dropped, entities decoded, by the stdlib tokenizer."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts = []

    def handle_data(self, data):
        self.parts.append(data)


def strip_markup(text: str) -> str:
    """A cue's words on one line: ASS override blocks and line breaks, HTML-like tags
    and WebVTT timestamps removed, entities decoded; ``<`` that starts no tag is kept.

    Example:
    >>> strip_markup("{\\\\an8}If x < 5 and y > 7, <i>the sea</i> is calm &amp; blue.")
    'If x < 5 and y > 7, the sea is calm & blue.'
    """
    text = _ASS_BREAKS.sub(" ", _ASS_OVERRIDE.sub("", text))
    parser = _TextOnly()
    parser.feed(_VTT_TIMESTAMP.sub("", text))
    parser.close()
    return " ".join("".join(parser.parts).split())


def _one_line(error) -> str:
    return " ".join(str(error).split())[:100]


def decode_text(data: bytes, path, field: str = "narration", encoding: str | None = None) -> tuple[str, str]:
    """(text, encoding) of a text file's bytes: the forced ``encoding``, else its BOM's,
    else UTF-8, else what charset-normalizer detects. Control characters are refused."""
    if encoding is not None:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise UserError(f"narration_encoding: unknown encoding {encoding!r} (e.g. utf-8, cp1252, latin-1, "
                            f"utf-16)", field="narration_encoding") from None
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError as error:
            raise UserError(f"{field}: {path}: not {encoding} text (byte {error.start})", field=field) from None
    else:
        text, encoding = _detected(data, path, field)
    text = text.removeprefix("\ufeff")
    for index, char in enumerate(text):
        if unicodedata.category(char) == "Cc" and char not in "\t\n\r":
            raise UserError(f"{field}: {path}: holds a control character (U+{ord(char):04X} at character "
                            f"{index}): not a text file", field=field)
    return text, encoding


def _detected(data: bytes, path, field: str) -> tuple[str, str]:
    for bom, name in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(name), name
            except UnicodeDecodeError as error:
                raise UserError(f"{field}: {path}: not {name} text though it starts with its byte-order mark "
                                f"(byte {error.start})", field=field) from None
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    charset_normalizer = require("charset_normalizer", "detecting a narration's encoding")
    best = charset_normalizer.from_bytes(data).best()
    # A short file reads about as well in several code pages (a detector may even rank Mac
    # Central European first); Windows-1252, the commonest for subtitles, wins when it reads
    # nearly as cleanly as the best: "déjà" must not come out as "dťjŗ". Text in another
    # script decoded as cp1252 reads as a mess (ratio ~1) and keeps its own code page.
    western = _as_cp1252(data)
    if western is not None:
        from charset_normalizer.md import mess_ratio

        if mess_ratio(western, 1.0) <= (best.chaos if best else 1.0) + WESTERN_MARGIN:
            return western, "cp1252"
    if best is None:
        raise UserError(f"{field}: {path}: not text in any encoding charset-normalizer knows; name it with "
                        f"--narration-encoding (e.g. cp1252)", field=field)
    return str(best), best.encoding


def _as_cp1252(data: bytes) -> str | None:
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:  # 0x81, 0x8D, 0x8F, 0x90, 0x9D are undefined in cp1252
        return None


def _read_text(path: pathlib.Path, field: str, encoding: str | None) -> tuple[str, str]:
    if path.is_dir():
        raise UserError(f"{field}: {path}: is a folder, not a narration file", field=field)
    if not path.is_file():
        raise UserError(f"{field}: {path}: no such file", field=field)
    text, encoding = decode_text(path.read_bytes(), path, field, encoding)
    if not text.strip():
        raise UserError(f"{field}: {path}: the file is empty", field=field)
    return text, encoding


def _srt_cues(text: str, path, field: str) -> list[Cue]:
    srt = require("srt", "reading .srt subtitles")
    try:
        subtitles = list(srt.parse(text))
    except (srt.SRTParseError, ValueError) as error:
        raise UserError(f"{field}: {path}: not a valid SRT file ({_one_line(error)})",
                        field=field) from None
    return [Cue(strip_markup(s.content), s.start.total_seconds(), s.end.total_seconds()) for s in subtitles]


def _vtt_cues(text: str, path, field: str) -> list[Cue]:
    webvtt = require("webvtt", "reading .vtt subtitles")
    try:
        captions = webvtt.from_string(text).captions
    except (webvtt.errors.MalformedFileError, webvtt.errors.MalformedCaptionError, ValueError) as error:
        raise UserError(f"{field}: {path}: not a valid WebVTT file ({_one_line(error)})", field=field) from None
    # raw_text: webvtt-py's own text drops "< 5 and y >" as if it were a tag.
    return [Cue(strip_markup(c.raw_text), _seconds(c.start), _seconds(c.end)) for c in captions]


def _ass_cues(text: str, path, field: str) -> list[Cue]:
    pysubs2 = require("pysubs2", "reading .ass/.ssa subtitles")
    kind = path.suffix.lower().lstrip(".")
    try:
        events = pysubs2.SSAFile.from_string(text, format_=kind).events
    except (pysubs2.exceptions.Pysubs2Error, ValueError) as error:
        raise UserError(f"{field}: {path}: not a valid {kind.upper()} file ({_one_line(error)})",
                        field=field) from None
    return [Cue(strip_markup(e.text), e.start / 1000.0, e.end / 1000.0) for e in events
            if not e.is_comment and not _ASS_DRAWING.search(e.text)]


def _seconds(stamp: str) -> float:
    """``HH:MM:SS.mmm`` (or ``MM:SS.mmm``) in seconds, to the millisecond."""
    parts = [float(p) for p in stamp.replace(",", ".").split(":")]
    while len(parts) < 3:
        parts.insert(0, 0.0)
    return round(parts[0] * 3600 + parts[1] * 60 + parts[2], 3)


def _script_texts(text: str, split: str) -> list[Cue]:
    if split == "lines":
        return [Cue(" ".join(line.split())) for line in text.splitlines() if line.strip()]
    pysbd = require("pysbd", "splitting a script into sentences")
    segmenter = pysbd.Segmenter(language="en", clean=False)
    paragraphs = [p for p in re.split(r"\n\s*\n", text) if p.strip()]  # a blank line always ends a sentence
    return [Cue(" ".join(s.split())) for p in paragraphs for s in segmenter.segment(" ".join(p.split()))
            if s.strip()]


def read_narration(path, split: str = "sentences", field: str = "narration",
                   encoding: str | None = None) -> Narration:
    """The texts of a narration file, in order.

    Args:
        path: a ``.srt``, ``.vtt``, ``.ass`` or ``.ssa`` file (cues with times), or a
            plain-text script.
        split: for a script: "sentences" (pysbd) or "lines" (one text a non-empty line).
        field: the argument's name, for errors.
        encoding: the file's text encoding (default: detected; see the module's docstring).

    Returns:
        A ``Narration``: the list of ``Cue`` (times set for subtitle files, in time
        order), the ``encoding`` read and the count of ``dropped`` cues without
        words. An error names ``field`` when the file is missing, a folder, empty,
        not text, a broken subtitle file or holds no text.

    Example:
    >>> [c.text for c in read_narration("script.txt")]   # doctest: +SKIP
    ['A man walks in.', 'He sits down.']
    """
    if split not in SPLITS:
        raise UserError(f"split: expected one of {list(SPLITS)}, got {split!r}", field="split")
    path = pathlib.Path(path)
    text, encoding = _read_text(path, field, encoding)
    suffix = path.suffix.lower()
    readers = {".srt": _srt_cues, ".vtt": _vtt_cues, ".ass": _ass_cues, ".ssa": _ass_cues}
    cues = readers[suffix](text, path, field) if suffix in readers else _script_texts(text, split)
    kept = [c for c in cues if c.text]
    if not kept:
        raise UserError(f"{field}: {path}: holds no text", field=field)
    if kept[0].start is not None:
        for k, cue in enumerate(kept):
            if cue.end < cue.start:
                raise UserError(f"{field}: {path}: cue {k + 1} ends before it starts", field=field)
        kept.sort(key=lambda c: (c.start, c.end))  # files are not always in time order
    return Narration(kept, encoding=encoding, dropped=len(cues) - len(kept))


def describe(narration: Narration, path) -> str | None:
    """The console line about what reading ``path`` left out, if anything."""
    if not getattr(narration, "dropped", 0):
        return None
    total = len(narration) + narration.dropped
    return (f"narration: {pathlib.Path(path).name}: {narration.dropped} of {total} cues hold no words (empty or "
            f"markup only) and are left out: there is nothing in them to align")
