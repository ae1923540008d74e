"""Subtitle files read with the place of every timestamp, and written back retimed.

``parse_subtitles`` reads the text of an ``.srt``, ``.vtt``, ``.ass`` or
``.ssa`` file into a ``SubtitleDocument``: its cues in file order, each with
the character span of its start and end stamps, its text as written and the
line it starts on. ``SubtitleDocument.retimed`` puts new times in those spans
and nothing else: markup, line breaks and line ends, numbering, WebVTT headers,
NOTE / STYLE / REGION blocks and cue settings, ASS script info, styles, layers,
actors and override tags stay as they were, byte for byte once encoded as the
file was. That is how subtitle-sync tools retime a user's file; a library that
parses into its own model and writes it out again normalises what it does not
model, so the formats are read here (the reference libraries check the cues in
the tests).

Read as the common players read them:
- SRT: a block is an optional number line, a timing line and its text up to a
  blank line; a number that is not a number ("dix") still heads its cue; a
  timing line may use "," or "." and a fraction of 1 to 4 digits, read as a
  decimal fraction (",08" is 80 ms, ",4560" 456 ms); text after a blank line
  that starts no block stays with its cue; a block whose timing line is
  missing or unreadable is left out and reported (``problems``), never folded
  into its neighbour.
- WebVTT: the header, then blocks separated by blank lines; a cue is an
  optional identifier line, a timing line (with settings after the end stamp)
  and its payload; NOTE, STYLE and REGION blocks are not cues; a block with an
  unreadable timing line is left out and reported. Timestamps inside a cue's
  payload (``<00:01.500>``) move with their cue.
- ASS / SSA: the fields of ``Dialogue:`` and ``Comment:`` lines by the
  ``[Events]`` section's ``Format:`` line (the specification's default order
  when it has none); comments and drawings are retimed but are not texts.
Line ends may be LF, CRLF or CR alone.

Example:
>>> document = parse_subtitles("1\\n00:00:01,000 --> 00:00:02,000\\n<i>Hi</i>\\n", "srt")
>>> document.retimed([(3.0, 4.5)])
'1\\n00:00:03,000 --> 00:00:04,500\\n<i>Hi</i>\\n'
"""

from __future__ import annotations

import dataclasses
import re

FORMATS = ("srt", "vtt", "ass", "ssa")
SRT_TIMING = "HH:MM:SS,mmm --> HH:MM:SS,mmm"
VTT_TIMING = "[HH:]MM:SS.mmm --> [HH:]MM:SS.mmm"
_LINES = re.compile(r"[^\r\n]*(?:\r\n|\r|\n|$)")
# SRT as players read it (any count of digits: "00:00:013,567" is 13.567 s); WebVTT as its
# parsing algorithm does (two-digit minutes and seconds), a missing or short fraction allowed.
_SRT_STAMP = r"(?:(\d+)[:;])?(\d+)[:;](\d+)(?:[,.:](\d{1,4}))?"
_VTT_STAMP = r"(?:(\d+):)?(\d{2}):(\d{2})(?:[.,](\d{1,3}))?"
_SRT_TIMING = re.compile(rf"^\s*(-?{_SRT_STAMP})\s*-->\s*(-?{_SRT_STAMP})(?=\s|$)")
_VTT_TIMING = re.compile(rf"^\s*({_VTT_STAMP})[ \t]*-->[ \t]*({_VTT_STAMP})(?=\s|$)")
_VTT_INNER = re.compile(r"<((?:\d+:)?\d{2}:\d{2}\.\d{3})>")
_ASS_STAMP = re.compile(r"^\s*-?(\d+):(\d{1,2}):(\d{1,2})(?:[.:](\d{1,3}))?\s*$")
_ASS_DRAWING = re.compile(r"\{[^{}]*\\p[1-9]")
ASS_FORMAT = "Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text"
SSA_FORMAT = "Marked, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text"


class SubtitleError(ValueError):
    """A subtitle file that cannot be read: ``line`` (1-based) and what was expected there."""

    def __init__(self, line: int, message: str):
        super().__init__(f"line {line}: {message}")
        self.line = line


@dataclasses.dataclass(frozen=True)
class Stamp:
    """A timestamp as written: its character span, its seconds, and its style
    (hours digits or 0 when written without hours, the fraction's separator and digits)."""

    begin: int
    end: int
    seconds: float
    hour_digits: int
    separator: str
    fraction_digits: int

    def written(self, seconds: float, kind: str) -> str:
        """``seconds`` written in this stamp's style (SRT and WebVTT keep milliseconds)."""
        digits = (self.fraction_digits or 2) if kind in ("ass", "ssa") else 3
        units = int(round(max(0.0, seconds) * 10 ** digits))
        whole, fraction = divmod(units, 10 ** digits)
        hours, rest = divmod(whole, 3600)
        minutes, secs = divmod(rest, 60)
        text = f"{minutes:02d}:{secs:02d}"
        if self.hour_digits or hours:
            text = f"{hours:0{self.hour_digits or (1 if kind in ('ass', 'ssa') else 2)}d}:{text}"
        separator = self.separator or ("." if kind in ("vtt", "ass", "ssa") else ",")  # written without a fraction
        return f"{text}{separator}{fraction:0{digits}d}" if digits else text


@dataclasses.dataclass(frozen=True)
class TimedCue:
    """One timed entry of a subtitle file, in file order."""

    line: int
    start: Stamp
    end: Stamp
    text: str
    is_text: bool = True  # False: an ASS comment or drawing (retimed, nothing to align)
    inner: tuple = ()  # WebVTT timestamps inside the payload


@dataclasses.dataclass
class SubtitleDocument:
    """A subtitle file's text, its cues and what could not be read (``problems``: one line each)."""

    kind: str
    text: str
    cues: list
    problems: list

    def retimed(self, times) -> str:
        """The text with cue k's stamps set to ``times[k]`` = (start, end) seconds; nothing else changes."""
        if len(times) != len(self.cues):
            raise ValueError(f"times: expected {len(self.cues)} (start, end) pairs, got {len(times)}")
        edits = []
        for cue, (start, end) in zip(self.cues, times):
            edits += [(cue.start, start), (cue.end, end)]
            old = cue.end.seconds - cue.start.seconds
            for stamp in cue.inner:  # karaoke times keep their place within the cue
                share = (stamp.seconds - cue.start.seconds) / old if old > 0 else 0.0
                edits.append((stamp, start + min(max(share, 0.0), 1.0) * (end - start)))
        parts, position = [], 0
        for stamp, seconds in sorted(edits, key=lambda e: e[0].begin):
            parts += [self.text[position:stamp.begin], stamp.written(seconds, self.kind)]
            position = stamp.end
        return "".join(parts) + self.text[position:]


def _lines(text: str) -> list[tuple[int, str]]:
    """(offset, line without its end) of each line; LF, CRLF and CR alone end lines."""
    out = []
    for match in _LINES.finditer(text):
        if match.start() == len(text) and out:
            break
        out.append((match.start(), match.group(0).rstrip("\r\n")))
    return out


def _stamp(groups, begin: int, written: str, hour_digits: int | None = None) -> Stamp:
    """The stamp ``written`` at ``begin``, from its (hours, minutes, seconds, fraction) digits."""
    hours, minutes, secs, fraction = groups
    seconds = int(hours or 0) * 3600 + int(minutes) * 60 + int(secs)
    if fraction:
        seconds += int(fraction) / 10 ** len(fraction)
    if written.startswith("-"):  # some editors write times before the video's start
        seconds = -seconds
    return Stamp(begin, begin + len(written), round(seconds, 4),
                 hour_digits if hour_digits is not None else len(hours or ""),
                 written[-len(fraction) - 1] if fraction else "", len(fraction or ""))


def _timing(match: re.Match, offset: int) -> tuple[Stamp, Stamp]:
    """The start and end stamps of a timing line matched at ``offset``."""
    return tuple(_stamp(match.group(first, first + 1, first + 2, first + 3), offset + match.start(whole),
                        match.group(whole)) for whole, first in ((1, 2), (6, 7)))


def _blocks(lines) -> list[list[tuple[int, int, str]]]:
    """Runs of non-blank lines: (line number, offset, text) each."""
    blocks, current = [], []
    for number, (offset, line) in enumerate(lines, start=1):
        if line.strip():
            current.append((number, offset, line))
        elif current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    return blocks


def _looks_like_timing(line: str) -> bool:
    return "-->" in line or bool(re.match(r"^\s*\d+:\d+\S*\s*-+>?\s*\d+:\d+", line))


def _runs(block, is_timing, takes_header):
    """A block split at its timing lines, as players split it (a cue's text ends at the
    next timing line even without a blank line): (the lines before the first cue,
    [(header line or None, timing line, text lines)])."""
    starts = []
    for t in (k for k, (_, _, line) in enumerate(block) if is_timing(line)):
        after_previous = starts[-1][1] + 1 if starts else 0
        header = t - 1 if t - 1 >= after_previous and takes_header(block, t - 1) else None
        starts.append((header, t))
    first_line = [h if h is not None else t for h, t in starts] + [len(block)]
    runs = [(block[h] if h is not None else None, block[t], block[t + 1:first_line[i + 1]])
            for i, (h, t) in enumerate(starts)]
    return block[:first_line[0]], runs


def parse_srt(text: str) -> SubtitleDocument:
    cues, problems = [], []
    takes_header = lambda block, k: k == 0 or block[k][2].strip().isdigit()  # noqa: E731
    for block in _blocks(_lines(text)):
        lead, runs = _runs(block, _SRT_TIMING.match, takes_header)
        if lead:
            _srt_lead(lead, cues, problems)
        for _, (number, offset, line), body in runs:
            start, end = _timing(_SRT_TIMING.match(line), offset)
            cues.append(TimedCue(number, start, end, "\n".join(text_line for _, _, text_line in body)))
    if not cues:
        line = int(problems[0].split()[1].rstrip(":")) if problems else 1
        raise SubtitleError(line, f"expected a cue: a number, then a timing line {SRT_TIMING}")
    return SubtitleDocument("srt", text, cues, problems)


def _srt_lead(lead, cues: list, problems: list) -> None:
    """Lines that start no cue: a block whose timing line is missing or unreadable
    (reported, left out), or text after a blank line inside a cue (kept with it)."""
    bad = next(((number, line) for number, _, line in lead[:2] if _looks_like_timing(line)), None)
    if bad is not None:
        problems.append(f"line {bad[0]}: cannot read the timing line {bad[1].strip()[:60]!r} (expected "
                        f"{SRT_TIMING}): its cue is left out")
    elif cues and not lead[0][2].strip().isdigit():
        words = "\n".join(line for _, _, line in lead)
        cues[-1] = dataclasses.replace(cues[-1], text=f"{cues[-1].text}\n\n{words}")
    else:
        problems.append(f"line {lead[0][0]}: a cue without its timing line (expected {SRT_TIMING} after its "
                        f"number): it is left out")


def parse_vtt(text: str) -> SubtitleDocument:
    lines = _lines(text)
    if not lines[0][1].lstrip("\ufeff").startswith("WEBVTT"):
        raise SubtitleError(1, "expected the line 'WEBVTT' that starts every WebVTT file")
    cues, problems = [], []
    for block in _blocks(lines)[1:]:  # the first block is the header
        if re.match(r"^(NOTE|STYLE|REGION)(\s|$)", block[0][2]):
            continue
        lead, runs = _runs(block, lambda line: "-->" in line, lambda _, k: k == 0)
        if lead:
            problems.append(f"line {lead[0][0]}: a block that is no cue (expected a timing line {VTT_TIMING}): "
                            f"it is left out")
        for _, (number, offset, line), payload in runs:
            match = _VTT_TIMING.match(line)
            if match is None:
                problems.append(f"line {number}: cannot read the timing line {line.strip()[:60]!r} (expected "
                                f"{VTT_TIMING}): its cue is left out")
                continue
            start, end = _timing(match, offset)
            inner = tuple(_inner_stamp(m, off) for _, off, payload_line in payload
                          for m in _VTT_INNER.finditer(payload_line))
            cues.append(TimedCue(number, start, end, "\n".join(line for _, _, line in payload), inner=inner))
    if not cues and problems:
        raise SubtitleError(int(problems[0].split()[1].rstrip(":")), f"expected a cue with a timing line "
                                                                    f"{VTT_TIMING}")
    return SubtitleDocument("vtt", text, cues, problems)


def _inner_stamp(match: re.Match, offset: int) -> Stamp:
    return _stamp(re.fullmatch(_VTT_STAMP, match.group(1)).group(1, 2, 3, 4), offset + match.start(1),
                  match.group(1))


def _ass_fields(header: str) -> list[str]:
    return [name.strip().lower() for name in header.split(",")]


def parse_ass(text: str, kind: str = "ass") -> SubtitleDocument:
    lines = _lines(text)
    section, fields, cues, problems = "", None, [], []
    advanced = kind == "ass"  # [V4+ Styles] or ScriptType v4.00+ say ASS whatever the suffix
    for number, (offset, line) in enumerate(lines, start=1):
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            section = stripped.lower()
            advanced = advanced or section == "[v4+ styles]"
            continue
        if section == "[script info]" and stripped.lower().startswith("scripttype:"):
            advanced = "+" in stripped
        if section != "[events]" or ":" not in stripped:
            continue
        written_key, _, rest = line.lstrip().partition(":")
        key = written_key.strip().lower()
        if key == "format":
            fields = _ass_fields(rest)
            missing = [name for name in ("start", "end", "text") if name not in fields]
            if missing or fields[-1] != "text":
                raise SubtitleError(number, f"the [Events] Format line must name Start, End and Text, with Text "
                                            f"last (got {rest.strip()[:60]!r})")
            continue
        if key not in ("dialogue", "comment"):
            continue
        names = fields or _ass_fields(ASS_FORMAT if advanced else SSA_FORMAT)
        begin = offset + len(line) - len(line.lstrip()) + len(written_key) + 1  # where the first field starts
        values = rest.split(",", len(names) - 1)
        if len(values) < len(names):
            problems.append(f"line {number}: a {key.title()} line with {len(values)} fields where the Format line "
                            f"names {len(names)}: it is left out")
            continue
        spans, position = [], begin
        for value in values:
            spans.append((position, position + len(value)))
            position += len(value) + 1
        stamps = []
        for name in ("start", "end"):
            index = names.index(name)
            match = _ASS_STAMP.match(values[index])
            if match is None:
                break
            lead = len(values[index]) - len(values[index].lstrip())
            stamps.append(_stamp(match.group(1, 2, 3, 4), spans[index][0] + lead, values[index].strip(),
                                 hour_digits=max(1, len(match.group(1)))))
        if len(stamps) < 2:
            problems.append(f"line {number}: cannot read the times of a {key.title()} line (expected H:MM:SS.cc in "
                            f"its Start and End fields): it is left out")
            continue
        body = values[-1]
        cues.append(TimedCue(number, stamps[0], stamps[1], body,
                             is_text=key == "dialogue" and not _ASS_DRAWING.search(body)))
    if fields is None and not cues:
        raise SubtitleError(len(lines), "expected an [Events] section with a Format line and Dialogue lines")
    return SubtitleDocument(kind, text, cues, problems)


def parse_subtitles(text: str, kind: str) -> SubtitleDocument:
    """The cues of a subtitle file's text, with where each timestamp is written.

    Args:
        text: the decoded file (a byte-order mark removed).
        kind: "srt", "vtt", "ass" or "ssa".

    Returns:
        A ``SubtitleDocument``; blocks that cannot be read are listed in its
        ``problems`` (one line each, naming the line) and left out.

    Raises:
        SubtitleError: nothing in the file can be read as a cue (its line and
            what was expected there).
    """
    if kind not in FORMATS:
        raise ValueError(f"kind: expected one of {list(FORMATS)}, got {kind!r}")
    if kind == "srt":
        return parse_srt(text)
    if kind == "vtt":
        return parse_vtt(text)
    return parse_ass(text, kind)
