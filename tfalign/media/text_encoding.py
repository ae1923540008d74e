"""A text file's bytes as text: its encoding detected, a binary file refused, C1 controls repaired.

A byte-order mark says the encoding (UTF-8, UTF-16, UTF-32); else UTF-8 if the
bytes are UTF-8; else ``charset-normalizer`` detects it. Most subtitle files in
the wild are Windows-1252 or another legacy code page, and the detector often
ranks a neighbour first for Western text (Baltic or Central European for
French or German), so Windows-1252 is taken when it reads as cleanly (mess
ratio) and at least as coherently (charset-normalizer's language coherence) as
the detection, or when the file has too few non-ASCII bytes to tell
(``AMBIGUOUS_BYTES``); a clear detection of another code page wins (a Croatian
Windows-1250 file keeps "Đino, dođavola"). A forced encoding is used as given.

A binary file (NUL bytes without a byte-order mark, control characters) is
refused; form feeds, vertical tabs and a DOS end-of-file mark are whitespace.
C1 controls (U+0080 to U+009F, never text) are left in the text as written
(a file written back keeps them) and repaired for reading by ``readable``.
"""

from __future__ import annotations

import codecs
import re

from tfalign.errors import UserError
from tfalign.media import require

WESTERN_MARGIN = 0.3  # of charset-normalizer's mess ratio (0 = reads as clean text; another script in cp1252 ~1)
AMBIGUOUS_BYTES = 8  # fewer non-ASCII bytes than this: too few to tell code pages apart, Windows-1252 goes first
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"), (codecs.BOM_UTF8, "utf-8"),
         (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
_WHITESPACE_CONTROLS = "\t\n\r\f\v"
_C1 = re.compile(r"[\x80-\x9f]")
_DOUBLE_UTF8 = re.compile(r"[\xc2-\xf4](?=[\x80-\xbf]*[\x80-\x9f])[\x80-\xbf]{1,3}")  # with a C1 control in it


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
    forced = encoding is not None
    if forced:
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
    _refuse_binary_text(text, path, field, forced=forced)
    return text, encoding, bom


def _refuse_binary(data: bytes, path, field: str) -> None:
    """NUL bytes without a byte-order mark (UTF-16 / 32 text has one) mean a binary file."""
    if b"\x00" in data:
        raise UserError(f"{field}: {path}: is a binary file (it holds NUL bytes at byte {data.index(0)}), not "
                        f"text", field=field)


def _refuse_binary_text(text: str, path, field: str, forced: bool = False) -> None:
    for index, char in enumerate(text):
        end_of_file_mark = char == "\x1a" and not text[index + 1:].strip()  # DOS editors end files so
        if ord(char) < 32 and char not in _WHITESPACE_CONTROLS and not end_of_file_mark:
            cause = ("the forced encoding is likely wrong (leave it out to detect it)" if forced else
                     "not a text file")
            raise UserError(f"{field}: {path}: holds a control character (U+{ord(char):04X} at character "
                            f"{index}): {cause}", field=field)


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
