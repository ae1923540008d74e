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

Encodings: a byte-order mark says it (UTF-8, UTF-16, UTF-32); else UTF-8 if
the bytes are UTF-8; else ``charset-normalizer`` detects it. Most subtitle
files in the wild are Windows-1252 or another legacy code page, and the
detector often ranks a neighbour first for Western text (Baltic or Central
European for French or German), so Windows-1252 is taken when it reads
cleanly and at least as coherently (charset-normalizer's language coherence)
as the detection, or when the file has too few non-ASCII bytes to tell
(``AMBIGUOUS_BYTES``); a clear detection of another code page (Croatian in
Windows-1250) wins. ``encoding`` forces one. A binary file (NULs, control
characters) is refused; form feeds, vertical tabs and a DOS end-of-file mark
are whitespace; C1 controls in otherwise good text (U+0080 to U+009F, a
Windows-1252 file converted as Latin-1) are read as Windows-1252 would read
their byte and counted (``Narration.repaired``).

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

from tfalign.errors import UserError
from tfalign.media import require
from tfalign.media.subtitle_files import SubtitleError, parse_subtitles

SPLITS = ("sentences", "lines")
SUBTITLE_SUFFIXES = (".srt", ".vtt", ".ass", ".ssa")
FORMAT_NAMES = {"srt": "SRT", "vtt": "WebVTT", "ass": "ASS", "ssa": "SSA"}
WESTERN_MARGIN = 0.3  # of charset-normalizer's mess ratio (0 = reads as clean text; another script in cp1252 ~1)
AMBIGUOUS_BYTES = 8  # fewer non-ASCII bytes than this: too few to tell code pages apart, Windows-1252 goes first
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"), (codecs.BOM_UTF8, "utf-8"),
         (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
_WHITESPACE_CONTROLS = "\t\n\r\f\v"
_C1 = re.compile(r"[\x80-\x9f]")
_DOUBLE_UTF8 = re.compile(r"[\xc2-\xf4](?=[\x80-\xbf]*[\x80-\x9f])[\x80-\xbf]{1,3}")  # with a C1 control in it
# Subtitle formats tfalign does not read, by their suffix (their content is checked too).
_OTHER_SUFFIXES = {".sbv": "a YouTube SBV subtitle file", ".sub": "a MicroDVD or SubViewer (.sub) subtitle file",
                   ".ttml": "a TTML (XML) subtitle file", ".dfxp": "a DFXP (XML) subtitle file",
                   ".smi": "a SAMI (.smi) subtitle file", ".sami": "a SAMI (.smi) subtitle file",
                   ".lrc": "an LRC lyrics file", ".stl": "an EBU STL subtitle file", ".idx": "a VobSub index",
                   ".scc": "a Scenarist (.scc) caption file", ".sup": "a Blu-ray (PGS) subtitle picture file"}
# Subtitle formats read as plain scripts would turn their timecodes into words: (name, first-line pattern).
_OTHER_FORMATS = (
    ("a TTML / DFXP (XML) subtitle file", re.compile(r"^\s*<(\?xml|tt[\s>])", re.I)),
    ("a SAMI (.smi) subtitle file", re.compile(r"^\s*<sami", re.I)),
    ("a MicroDVD (.sub) subtitle file", re.compile(r"^\{\d+\}\{\d*\}")),
    ("an MPL2 subtitle file", re.compile(r"^\[\d+\]\[\d*\]")),
    ("a SubViewer (.sub) subtitle file",
     re.compile(r"^\[INFORMATION\]|^\d{2}:\d{2}:\d{2}\.\d{2},\d{2}:\d{2}:\d{2}\.\d{2}\s*$")),
    ("a YouTube SBV subtitle file", re.compile(r"^\d+:\d{2}:\d{2}\.\d{3},\d+:\d{2}:\d{2}\.\d{3}\s*$")),
    ("an LRC lyrics file", re.compile(r"^\[(\d+:\d{2}([.:]\d+)?|ti:|ar:|al:|by:|offset:)")),
    ("a TMPlayer subtitle file", re.compile(r"^\d{1,2}:\d{2}:\d{2}[:=]\S")),
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


def decode_text(data: bytes, path, field: str = "narration", encoding: str | None = None) -> tuple[str, str]:
    """(text, encoding) of a text file's bytes: the forced ``encoding``, else its BOM's,
    else UTF-8, else what charset-normalizer detects (see the module's docstring). The
    text is as written (a byte-order mark removed); a binary file is refused."""
    text, encoding, _ = decode_with_bom(data, path, field, encoding)
    return text, encoding


def decode_with_bom(data: bytes, path, field: str = "narration",
                    encoding: str | None = None) -> tuple[str, str, bytes]:
    """``decode_text`` and the byte-order mark it removed (b"" for none): the text
    encoded with the encoding, after the mark, gives the file's bytes back."""
    bom = next((mark for mark, _ in _BOMS if data.startswith(mark)), b"")
    if encoding is not None:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise UserError(f"narration_encoding: unknown encoding {encoding!r} (e.g. utf-8, cp1252, latin-1, "
                            f"utf-16)", field="narration_encoding") from None
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError as error:
            raise UserError(f"{field}: {path}: not {encoding} text (byte {error.start}): the forced encoding is likely "
                            f"wrong (leave it out to detect it)", field=field) from None
        bom = b"" if not text.startswith("\ufeff") else bom
        text = text.removeprefix("\ufeff")
    elif bom:
        encoding = dict(_BOMS)[bom]
        try:
            text = data[len(bom):].decode(encoding)
        except UnicodeDecodeError as error:
            raise UserError(f"{field}: {path}: not {encoding} text though it starts with its byte-order mark "
                            f"(byte {error.start + len(bom)})", field=field) from None
    else:
        _refuse_binary(data, path, field)
        text, encoding = _detected(data, path, field)
    _refuse_binary_text(text, path, field)
    return text, encoding, bom


def _refuse_binary(data: bytes, path, field: str) -> None:
    """NUL bytes without a byte-order mark (UTF-16 / 32 text has one) mean a binary file."""
    if b"\x00" in data:
        raise UserError(f"{field}: {path}: is a binary file (it holds NUL bytes at byte {data.index(0)}), not "
                        f"text", field=field)


def _refuse_binary_text(text: str, path, field: str) -> None:
    for index, char in enumerate(text):
        end_of_file_mark = char == "\x1a" and not text[index + 1:].strip()  # DOS editors end files so
        if ord(char) < 32 and char not in _WHITESPACE_CONTROLS and not end_of_file_mark:
            raise UserError(f"{field}: {path}: holds a control character (U+{ord(char):04X} at character "
                            f"{index}): not a text file", field=field)


def readable(text: str) -> tuple[str, int]:
    """``text`` with C1 controls (U+0080 to U+009F, never text) repaired, and the count
    of characters repaired: a run that is UTF-8 read as Latin-1 ("â\\x80\\x94") is
    decoded again ("—"); any other C1 control is read as Windows-1252 reads its byte
    (U+0092 is a right quote). Form feeds and vertical tabs become spaces.

    Example:
    >>> readable("It\\x92s \\xe2\\x80\\x94 fine")
    ('It’s — fine', 2)
    """
    repaired = 0

    def as_utf8(match):
        nonlocal repaired
        try:
            fixed = match.group(0).encode("latin-1").decode("utf-8")
        except UnicodeDecodeError:
            return match.group(0)
        repaired += 1
        return fixed

    def as_cp1252(match):
        nonlocal repaired
        repaired += 1
        return bytes([ord(match.group(0))]).decode("cp1252", errors="replace")

    text = _DOUBLE_UTF8.sub(as_utf8, text)
    return _C1.sub(as_cp1252, text).replace("\f", " ").replace("\v", " "), repaired


def _detected(data: bytes, path, field: str) -> tuple[str, str]:
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    charset_normalizer = require("charset_normalizer", "detecting a narration's encoding")
    best = charset_normalizer.from_bytes(data).best()
    western = _as_cp1252(data)
    if western is not None and _western_reads_as_well(data, western, best):
        return western, "cp1252"
    if best is None:
        raise UserError(f"{field}: {path}: not text: no encoding reads its bytes as text (a binary file?)",
                        field=field)
    return str(best), best.encoding


def _as_cp1252(data: bytes) -> str | None:
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:  # 0x81, 0x8D, 0x8F, 0x90, 0x9D are undefined in cp1252
        return None


def _western_reads_as_well(data: bytes, western: str, best) -> bool:
    """Windows-1252 first when it reads as cleanly as the detection (mess ratio) and
    the file is too short to tell or reads at least as coherently in it."""
    from charset_normalizer import from_bytes
    from charset_normalizer.md import mess_ratio

    if best is None or best.encoding == "cp1252":
        return True
    if mess_ratio(western, 1.0) > best.chaos + WESTERN_MARGIN:
        return False  # another script read as Windows-1252 is a mess
    if sum(byte > 127 for byte in data) < AMBIGUOUS_BYTES:
        return True
    as_western = from_bytes(data, cp_isolation=["cp1252"]).best()
    return as_western is not None and as_western.coherence >= best.coherence - 0.01


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
    cues = [Cue(_words(c.text), c.start.seconds, c.end.seconds, index=k) for k, c in enumerate(document.cues)
            if c.is_text]
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
    if kind is None:
        cues = _script_texts(readable(text)[0], split)
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
                     problems=problems, repaired=readable(text)[1])


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
