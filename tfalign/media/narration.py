"""The texts of a narration file, with their times when the file has them.

- ``.srt``, ``.vtt``, ``.ass`` / ``.ssa``: its cues with their times, read by
  ``subtitle_files`` with the place of every timestamp (so ``subtitles`` can
  write the file back retimed); the format is the content's (a WebVTT header,
  an ASS ``[Script Info]``) before the suffix's; ASS comments and vector
  drawings are not texts; blocks that cannot be read are left out and
  reported (``Narration.problems``);
- anything else: a plain-text script, split into sentences by ``pysbd``
  (``split="sentences"``, the default) or taken one text a line
  (``split="lines"``); no times. A subtitle format tfalign does not read
  (MicroDVD or SubViewer ``.sub``, YouTube ``.sbv``, TTML / DFXP, SAMI, LRC,
  MPL2, TMPlayer) is recognised by its content and refused in one line.

Encodings are detected by ``text_encoding`` (``encoding`` forces one); C1
controls in otherwise good text are repaired and counted (``Narration.repaired``).

A cue's markup goes and its words stay: ASS override blocks (``{\\an8}``,
``{\\i1}``) and line breaks (``\\N``), HTML-like tags (``<i>``, ``<font
color=...>``, WebVTT's ``<c.red>``, ``<v Bob>`` and timestamps) are removed as
an HTML tokenizer reads them (so "x < 5 and y > 7" is text, not a tag), and
entities (``&amp;``) are decoded. A cue's lines become one line. Cues left
with no words (empty cues, markup only) are dropped, and ``read_narration``
says how many (``Narration.dropped``): they have nothing to align.
"""

from __future__ import annotations

import dataclasses
import html.parser
import pathlib
import re

from tfalign.errors import UserError
from tfalign.media import require
from tfalign.media.subtitle_files import SubtitleError, parse_subtitles
from tfalign.media.text_encoding import decode_with_bom, readable

SPLITS = ("sentences", "lines")
SUBTITLE_SUFFIXES = (".srt", ".vtt", ".ass", ".ssa")
FORMAT_NAMES = {"srt": "SRT", "vtt": "WebVTT", "ass": "ASS", "ssa": "SSA"}
# Subtitle formats tfalign does not read, by their suffix (their content is checked too).
_OTHER_SUFFIXES = {".sbv": "a YouTube SBV subtitle file",
                   ".sub": "a MicroDVD, SubViewer or VobSub (.sub) subtitle file",
                   ".ttml": "a TTML (XML) subtitle file", ".dfxp": "a DFXP (XML) subtitle file",
                   ".smi": "a SAMI (.smi) subtitle file", ".sami": "a SAMI (.smi) subtitle file",
                   ".lrc": "an LRC lyrics file", ".stl": "an EBU STL subtitle file", ".idx": "a VobSub index",
                   ".scc": "a Scenarist (.scc) caption file", ".sup": "a Blu-ray (PGS) subtitle picture file"}
# Subtitle formats read as plain scripts would turn their timecodes into words: (name, first-line pattern).
_OTHER_FORMATS = (
    ("a TTML / DFXP (XML) subtitle file", re.compile(r"^\s*<(\?xml|tt[\s>])", re.I)),
    ("a SAMI (.smi) subtitle file", re.compile(r"^\s*<sami", re.I)),
    ("a MicroDVD (.sub) subtitle file", re.compile(r"^\{-?\d+\}\{-?\d*\}")),
    ("an MPL2 subtitle file", re.compile(r"^\[-?\d+\]\[-?\d*\]")),
    ("a SubViewer (.sub) subtitle file",
     re.compile(r"^\[INFORMATION\]|^\d{2}:\d{2}:\d{2}\.\d{2},\d{2}:\d{2}:\d{2}\.\d{2}\s*$")),
    ("a YouTube SBV subtitle file", re.compile(r"^\d+:\d{2}:\d{2}\.\d{3},\d+:\d{2}:\d{2}\.\d{3}\s*$")),
    ("an LRC lyrics file", re.compile(r"^\[(\d+:\d{2}([.:]\d+)?|ti:|ar:|al:|by:|offset:)")),
    ("a TMPlayer subtitle file", re.compile(r"^-?\d{1,2}:\d{2}:\d{2}[:=]\S")),
)
_ASS_OVERRIDE = re.compile(r"\{\\[^{}]*\}")  # {\an8}, {\i1}: a block with a backslash (other braces are text)
_ASS_BREAKS = re.compile(r"\\[Nnh]")
_VTT_TIMESTAMP = re.compile(r"<\d{1,2}(?::\d{2}){1,2}\.\d{3}>")


@dataclasses.dataclass(frozen=True)
class Cue:
    """One text of a narration; ``start`` and ``end`` (seconds) when the file times it."""

    text: str
    start: float | None = None
    end: float | None = None
    index: int | None = dataclasses.field(default=None, compare=False)  # the cue's place in its subtitle file


class Narration(list):
    """The cues of a narration file (a list of ``Cue``), with what reading it found:
    ``encoding`` (how its bytes were read), ``dropped`` (cues with no words),
    ``problems`` (blocks left out, a line each), ``repaired`` (C1 controls read as
    Windows-1252), and for a subtitle file its ``document`` (every timestamp's
    place: ``subtitles.retime_subtitles`` writes it back) with its ``bom``."""

    def __init__(self, cues=(), encoding: str = "utf-8", dropped: int = 0, document=None, bom: bytes = b"",
                 problems=(), repaired: int = 0):
        super().__init__(cues)
        self.encoding, self.dropped, self.document, self.bom = encoding, dropped, document, bom
        self.problems, self.repaired = list(problems), repaired


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


def _read_text(path: pathlib.Path, field: str, encoding: str | None) -> tuple[str, str, bytes]:
    if path.is_dir():
        raise UserError(f"{field}: {path}: is a folder, not a narration file", field=field)
    if not path.is_file():
        raise UserError(f"{field}: {path}: no such file", field=field)
    text, encoding, bom = decode_with_bom(path.read_bytes(), path, field, encoding)
    if not text.strip():
        raise UserError(f"{field}: {path}: the file is empty", field=field)
    return text, encoding, bom


def subtitle_kind(text: str, suffix: str) -> str | None:
    """"srt", "vtt", "ass" or "ssa" for a subtitle file (its content first, then its
    suffix); None for a plain-text script. A subtitle format tfalign does not read is
    refused (``UserError`` without a field: the caller names the file)."""
    first = _first_line(text)
    if first.startswith("WEBVTT"):
        return "vtt"
    if first.lower().startswith("[script info]"):
        return "ssa" if suffix == ".ssa" else "ass"
    if suffix in SUBTITLE_SUFFIXES:
        return suffix.lstrip(".")
    for name, pattern in _OTHER_FORMATS:
        if pattern.search(first):
            raise UserError(f"is {name}, a format tfalign does not read: convert it to .srt, .vtt or .ass (e.g. "
                            f"ffmpeg -i FILE out.srt, or pysubs2)")
    return None


def _first_line(text: str) -> str:
    head = text.lstrip("\ufeff \t\r\n")
    return head.splitlines()[0] if head else ""


def _refuse_other_format(path: pathlib.Path, field: str, encoding: str | None) -> None:
    """A file named as a subtitle format tfalign does not read: refused, named by its
    content when that says which (a .sub is MicroDVD or SubViewer), else by its name."""
    name = _OTHER_SUFFIXES[path.suffix.lower()] + " (by its name)"
    try:
        first = _first_line(_read_text(path, field, encoding)[0])
        name = next((found for found, pattern in _OTHER_FORMATS if pattern.search(first)), name)
    except UserError:  # binary (EBU STL, PGS) or empty: the name says it
        pass
    raise UserError(f"{field}: {path}: is {name}, a format tfalign does not read: convert it to .srt, .vtt or "
                    f".ass (e.g. ffmpeg -i FILE out.srt, or pysubs2)", field=field)


def _subtitle_cues(text: str, kind: str, path, field: str, forced: bool):
    try:
        document = parse_subtitles(text, kind)
    except SubtitleError as error:
        hint = " (the forced encoding may be wrong: leave it out to detect it)" if forced else ""
        raise UserError(f"{field}: {path}: not a valid {FORMAT_NAMES[kind]} file: {error}{hint}", field=field) \
            from None
    # a negative time (some editors write them before a video's start) is read as the start
    cues = [Cue(_words(c.text), max(0.0, c.start.seconds), max(0.0, c.end.seconds), index=k)
            for k, c in enumerate(document.cues) if c.is_text]
    return document, cues


def _words(text: str) -> str:
    return strip_markup(readable(text)[0])


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
        order, each with its ``index`` in the file), the ``encoding`` read, the
        count of ``dropped`` cues without words, the ``problems`` (blocks left out)
        and, for a subtitle file, its ``document``. An error names ``field`` and the
        line when the file is missing, a folder, empty, not text, a broken subtitle
        file, a subtitle format tfalign does not read, or holds no text.

    Example:
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "script.txt"
    >>> _ = path.write_text("A man walks in. He sits down.")
    >>> [c.text for c in read_narration(path)]
    ['A man walks in.', 'He sits down.']
    """
    if split not in SPLITS:
        raise UserError(f"split: expected one of {list(SPLITS)}, got {split!r}", field="split")
    path = pathlib.Path(path)
    if path.suffix.lower() in _OTHER_SUFFIXES and path.is_file():
        _refuse_other_format(path, field, encoding)
    forced = encoding is not None
    text, encoding, bom = _read_text(path, field, encoding)
    try:
        kind = subtitle_kind(text, path.suffix.lower())
    except UserError as error:
        raise UserError(f"{field}: {path}: {error}", field=field) from None
    document, problems = None, []
    clean, repaired = readable(text)  # once: the count, and a script's words
    if kind is None:
        cues = _script_texts(clean, split)
    else:
        document, cues = _subtitle_cues(text, kind, path, field, forced)
        problems = document.problems
    kept = [c for c in cues if c.text]
    if not kept:
        raise UserError(f"{field}: {path}: holds no text", field=field)
    if kept[0].start is not None:
        for cue in kept:
            if cue.end < cue.start:
                line = document.cues[cue.index].line
                raise UserError(f"{field}: {path}: line {line}: the cue ends before it starts", field=field)
        kept.sort(key=lambda c: (c.start, c.end))  # files are not always in time order
    return Narration(kept, encoding=encoding, dropped=len(cues) - len(kept), document=document, bom=bom,
                     problems=problems, repaired=repaired)


def describe(narration: Narration, path) -> str | None:
    """The console lines about what reading ``path`` left out or repaired, if anything."""
    name, lines = pathlib.Path(path).name, []
    if getattr(narration, "dropped", 0):
        total = len(narration) + narration.dropped
        lines.append(f"narration: {name}: {narration.dropped} of {total} cues hold no words (empty or markup only) "
                     f"and are left out: there is nothing in them to align")
    for problem in getattr(narration, "problems", [])[:5]:
        lines.append(f"narration: {name}: {problem}")
    if len(getattr(narration, "problems", [])) > 5:
        lines.append(f"narration: {name}: {len(narration.problems) - 5} more blocks left out")
    if getattr(narration, "repaired", 0):
        lines.append(f"narration: {name}: {narration.repaired} C1 control character(s) read as Windows-1252 reads "
                     f"their byte (a file converted from Windows-1252 as if it were Latin-1)")
    return "\n".join(lines) or None
