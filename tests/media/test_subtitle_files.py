"""Subtitle files read as their authors meant them, and written back retimed with
nothing but their times changed. Each defect found on other projects' subtitle
test files has a file here that shows it (written here, no download)."""

import codecs
import re
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tfalign.data.alignment import Alignment
from tfalign.errors import UserError
from tfalign.media.narration import describe, read_narration
from tfalign.media.subtitle_files import SubtitleError, parse_subtitles
from tfalign.media.subtitles import mapped_times, retime_subtitles, retimed_subtitles

pytest.importorskip("pysubs2")

SRT = """1
00:00:01,000 --> 00:00:02,500
<i>Line one,</i>
line two

2
00:00:03,000 --> 00:00:04,000 X1:100 X2:200 Y1:10 Y2:20
<font color="#ff0000">Déjà</font> &amp; <b>vu</b>

3
00:00:05,000 --> 00:00:06,000
{\\an8}Nobody aligns this one.

4
00:00:07,000 --> 00:00:08,000
Last &lt;cue&gt;.
"""
VTT = """WEBVTT - a header
Kind: captions

STYLE
::cue(.red) { color: red }

REGION
id:top width:40%

NOTE a comment
over two lines

intro
00:01.000 --> 00:02.500 align:start position:10%
<v Bob>Fish &amp; chips</v>
<c.red>karaoke</c> <00:02.000>time

00:00:03.000 --> 00:00:04.000 line:0
Déjà vu.

00:05.000 --> 00:06.000
Nobody aligns this one.

00:07.000 --> 00:08.000
Last.
"""
ASS = """[Script Info]
; a comment
Title: retiming
ScriptType: v4.00+
PlayResX: 640

[V4+ Styles]
Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, \
Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, \
MarginV, Encoding
Style: Default,Arial,20,&H00FFFFFF,&H000000FF,&H00000000,&H00000000,0,0,0,0,100,100,0,0,1,2,2,2,10,10,10,1
Style: Sign,Arial,30,&H0000FFFF,&H000000FF,&H00000000,&H00000000,-1,0,0,0,100,100,0,0,1,2,2,8,10,10,10,1

[Events]
Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text
Dialogue: 0,0:00:01.00,0:00:02.50,Default,Bob,0,0,0,,{\\i1}Line one,{\\i0}\\Nline two
Comment: 0,0:00:02.00,0:00:02.50,Default,,0,0,0,,a translator's note
Dialogue: 1,0:00:03.00,0:00:04.00,Sign,,0,0,0,Banner;5,{\\pos(320,50)\\c&H0000FF&}Déjà vu, no?
Dialogue: 0,0:00:05.00,0:00:06.00,Default,,0,0,0,,Nobody aligns this one.
Dialogue: 0,0:00:07.00,0:00:08.00,Default,,0,0,0,,Last.
"""
STAMP = re.compile(r"\d+:\d{2}(?::\d{2})?[.,]\d{2,3}")


def clip_alignment(num_texts, assignment, times):
    return Alignment(clip_to_text=np.asarray(assignment), num_texts=num_texts, clip_times=np.asarray(times, float))


def outside_stamps(data: bytes, encoding: str) -> list[str]:
    return STAMP.split(data.decode(encoding))


@pytest.mark.parametrize("name, text, encoding, bom, newline", [
    ("a.srt", SRT, "cp1252", b"", "\r\n"),
    ("a.srt", SRT, "utf-8", codecs.BOM_UTF8, "\n"),
    ("a.vtt", VTT, "utf-8", codecs.BOM_UTF8, "\r\n"),
    ("a.vtt", VTT, "utf-8", b"", "\n"),
    ("a.ass", ASS, "cp1252", b"", "\r\n"),
    ("a.ass", ASS, "utf-16-le", codecs.BOM_UTF16_LE, "\n"),
])
def test_retimed_files_differ_from_their_input_only_in_timestamps(tmp_path, name, text, encoding, bom, newline):
    data = bom + text.replace("\n", newline).encode(encoding)
    (tmp_path / name).write_bytes(data)
    narration = read_narration(tmp_path / name)
    assert len(narration) == 4  # the ASS comment is not a text
    # clips: 0 -> text 0, 1 -> text 1, 2 unmatched, 3 -> text 3 (text 2 gets no clip)
    alignment = clip_alignment(4, [0, 1, -1, 3], [[10, 12], [12, 15], [15, 20], [20, 23.25]])
    unaligned = retime_subtitles(alignment, narration, tmp_path / f"out{name[1:]}")
    out = (tmp_path / f"out{name[1:]}").read_bytes()
    assert out.startswith(bom) and out != data
    assert outside_stamps(out[len(bom):], encoding) == outside_stamps(data[len(bom):], encoding)
    again = read_narration(tmp_path / f"out{name[1:]}")
    assert [c.text for c in again] == [c.text for c in narration]
    # text 2 (5-6 s before) is mapped between the new times of the aligned cues around it (4 -> 15, 7 -> 20)
    assert [t for c in again for t in (c.start, c.end)] == pytest.approx([10, 12, 12, 15, 15 + 5 / 3, 15 + 10 / 3,
                                                                          20, 23.25], abs=0.005)
    assert [u["text"] for u in unaligned if u["text"]] == ["Nobody aligns this one."]  # kept, listed
    if name.endswith(".ass"):  # the comment is retimed too, and named unaligned
        assert [u["cue"] for u in unaligned] == [2, 4]
    # parsed by pysubs2, the two files are the same but for the times: info, styles, every event's fields
    import pysubs2

    parsed = [pysubs2.SSAFile.from_string(d[len(bom):].decode(encoding), format_=name[-3:]) for d in (data, out)]
    assert parsed[0].info == parsed[1].info and parsed[0].styles == parsed[1].styles
    fields = lambda e: {k: STAMP.sub("T", v) if k == "text" else v  # noqa: E731 (karaoke times move)
                        for k, v in e.as_dict().items() if k not in ("start", "end")}
    assert [fields(e) for e in parsed[0].events] == [fields(e) for e in parsed[1].events]
    assert [e.start for e in parsed[0].events] != [e.start for e in parsed[1].events]


def test_retimed_webvtt_moves_its_karaoke_times_with_the_cue(tmp_path):
    (tmp_path / "a.vtt").write_text(VTT)
    narration = read_narration(tmp_path / "a.vtt")
    data, _ = retimed_subtitles(clip_alignment(4, [0, 1, 2, 3], [[10, 13], [13, 15], [15, 16], [16, 17]]),
                                narration)
    assert "00:10.000 --> 00:13.000 align:start position:10%" in data.decode()
    assert "<00:12.000>time" in data.decode()  # 2/3 into [1, 2.5] then, 2/3 into [10, 13] now


def test_retiming_into_another_format_converts_through_pysubs2(tmp_path):
    (tmp_path / "a.srt").write_text(SRT)
    narration = read_narration(tmp_path / "a.srt")
    data, _ = retimed_subtitles(clip_alignment(4, [0, 1, 2, 3], [[10, 12], [12, 15], [15, 20], [20, 21]]),
                                narration, ".ass")
    text = data.decode()
    assert "[Events]" in text and "Dialogue: 0,0:00:10.00,0:00:12.00" in text and "{\\i1}Line one," in text


def test_a_script_narration_retimes_into_a_new_file(tmp_path):
    (tmp_path / "a.txt").write_text("One sentence. Another sentence. A third.")
    narration = read_narration(tmp_path / "a.txt")
    data, unaligned = retimed_subtitles(clip_alignment(3, [0, -1, 2], [[0, 1], [1, 2], [2, 3]]), narration, ".srt")
    (tmp_path / "out.srt").write_bytes(data)
    assert [c.text for c in read_narration(tmp_path / "out.srt")] == ["One sentence.", "Another sentence.",
                                                                       "A third."]
    assert [u["text"] for u in unaligned] == ["Another sentence."]


def test_an_encoding_that_cannot_write_the_text_is_one_line(tmp_path):
    (tmp_path / "a.srt").write_text(SRT.replace("Déjà", "Žluťoučký"))
    narration = read_narration(tmp_path / "a.srt")
    with pytest.raises(UserError, match="subtitles_encoding: ascii cannot write 'Ž' \\(line 8\\)"):
        retimed_subtitles(clip_alignment(4, [0, 1, 2, 3], [[0, 1], [1, 2], [2, 3], [3, 4]]), narration, None,
                          "ascii")


CROATIAN = ["Đino, dođavola, gdje si bio?", "Čekao sam te cijeli dan.", "Šta hoćeš od mene?", "Ne znam, možda ništa.",
            "Žao mi je, stvarno.", "Idemo kući, kasno je.", "Đuro je rekao da će doći.", "Što se dogodilo s njim?"]
FRENCH = ["Café déjà vu, “quoted”, naïve façade.", "Ça coûte 5 € à Zürich.", "Où est la gare? Là-bas, à côté.",
          "Je suis très fatigué, c'est la fin.", "L'été dernier, nous étions à Genève."]


def srt_of(texts, count):
    return "".join(f"{k + 1}\n00:{k // 60:02d}:{k % 60:02d},000 --> 00:{k // 60:02d}:{k % 60:02d},900\n"
                   f"{texts[k % len(texts)]}\n\n" for k in range(count))


@pytest.mark.parametrize("texts, encoding", [(CROATIAN, "cp1250"), (FRENCH, "cp1252")])
def test_a_clear_detection_wins_over_the_windows_1252_preference(tmp_path, texts, encoding):
    (tmp_path / "a.srt").write_bytes(srt_of(texts, 200).encode(encoding))
    narration = read_narration(tmp_path / "a.srt")
    assert narration.encoding == encoding and [c.text for c in narration[:len(texts)]] == texts


def test_ass_fields_are_read_by_their_format_line(tmp_path):
    (tmp_path / "a.ass").write_text("[Script Info]\nScriptType: v4.00+\n\n[Events]\n"
                                    "Format: Layer, Start, End, Style, Name, Text\n"
                                    "Dialogue: 0,0:00:01.00,0:00:02.00,Default,Bob,Hello, world, all of it\n"
                                    "Dialogue: 0,0:00:02.00,0:00:03.00,Default,,{\\b1}Bold{\\b0} words\n")
    (tmp_path / "b.ssa").write_text("[Events]\nFormat: Start, End, Style, Text\n"
                                    "Dialogue: 0:00:01.00,0:00:02.00,Default,FontBold is a word here\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing of a library's warnings reaches the user
        read_narration(tmp_path / "a.ass")
    assert [(c.text, c.start, c.end) for c in read_narration(tmp_path / "a.ass")] == [
        ("Hello, world, all of it", 1.0, 2.0), ("Bold words", 2.0, 3.0)]
    assert [c.text for c in read_narration(tmp_path / "b.ssa")] == ["FontBold is a word here"]


def test_a_malformed_srt_block_is_its_own_cue_or_reported_never_folded(tmp_path):
    (tmp_path / "a.srt").write_text("1\n00:00:01,000 --> 00:00:02,000\nFirst.\n\n"
                                    "dix\n00:00:03,000 --> 00:00:04,000\nA word index.\n\n"
                                    "11\nNo timing line here.\n\n"
                                    "12\n00:00:07,000 -> 00:00:08,000\nA broken arrow.\n\n"
                                    "13\n00:00:09,000 --> 00:00:10,000\nLast.\n")
    narration = read_narration(tmp_path / "a.srt")
    assert [c.text for c in narration] == ["First.", "A word index.", "Last."]
    assert len(narration.problems) == 2 and narration.problems[0].startswith("line 9: a cue without its timing")
    assert "line 13: cannot read the timing line '00:00:07,000 -> 00:00:08,000'" in narration.problems[1]
    assert "line 9" in describe(narration, tmp_path / "a.srt")


@pytest.mark.parametrize("stamp, seconds", [("00:02:04,08", 124.08), ("00:00:03,4560", 3.456), ("00:00:03,5", 3.5),
                                            ("00:00:03.250", 3.25), ("0:00:03,250", 3.25)])
def test_srt_fractions_are_decimal_fractions(tmp_path, stamp, seconds):
    (tmp_path / "a.srt").write_text(f"1\n{stamp} --> 00:05:00,000\nText.\n")
    assert read_narration(tmp_path / "a.srt")[0].start == seconds


def test_c1_controls_form_feeds_and_old_mac_line_ends_are_text(tmp_path):
    (tmp_path / "a.srt").write_bytes("1\r00:00:01,000 --> 00:00:02,000\rIt\u0092s fine \u0085 really.\r\r"
                                     "2\r00:00:03,000 --> 00:00:04,000\rPage\fbreak\vhere.\r".encode())
    narration = read_narration(tmp_path / "a.srt")
    assert [c.text for c in narration] == ["It’s fine … really.", "Page break here."] and narration.repaired == 2
    assert "2 C1 control character(s)" in describe(narration, tmp_path / "a.srt")


@pytest.mark.parametrize("name, content, format_name", [
    ("a.txt", "{100}{200}Hello there.\n{250}{300}Again.\n", "MicroDVD"),
    ("a.sub", "{100}{200}Hello there.\n", "MicroDVD"),
    ("a.txt", "[10][20]Hello there.\n[25][30]Again.\n", "MPL2"),
    ("a.sbv", "0:00:01.000,0:00:02.000\nHello there.\n", "YouTube SBV"),
    ("a.ttml", '<?xml version="1.0"?>\n<tt xmlns="http://www.w3.org/ns/ttml"><body/></tt>\n', "TTML"),
    ("a.smi", "<SAMI>\n<BODY><SYNC Start=1000><P>Hello</SAMI>\n", "SAMI"),
    ("a.lrc", "[00:12.00]Hello there\n[00:15.30]Again\n", "LRC"),
    ("a.sub", "[INFORMATION]\n[TITLE]x\n", "SubViewer"),
    ("a.txt", "00:00:01:Hello there.\n00:00:03:Again.\n", "TMPlayer"),
])
def test_subtitle_formats_tfalign_does_not_read_are_named_and_refused(tmp_path, name, content, format_name):
    (tmp_path / name).write_text(content)
    with pytest.raises(UserError, match=f"narration: .*{name}: is an? {format_name}.*format tfalign does not read"):
        read_narration(tmp_path / name)


@pytest.mark.parametrize("name, content, expected", [
    ("a.srt", "1\n00:00:0x,000 --> 00:00:02,000\nHello\n", "line 2: cannot read the timing line|line 2: expected"),
    ("a.srt", "Just some words.\nNo cue at all.\n", "not a valid SRT file: line 1: expected a cue"),
    ("a.vtt", "WEBVTT\n\n00:01.000 -> 00:02.000\nHello\n", "not a valid WebVTT file: line 3: expected a cue"),
    ("a.ass", "[Events]\nFormat: Start, Text, End\n", "line 2: the \\[Events\\] Format line must name"),
])
def test_subtitle_errors_name_the_line_and_what_was_expected(tmp_path, name, content, expected):
    (tmp_path / name).write_text(content)
    with pytest.raises(UserError, match=expected) as caught:
        read_narration(tmp_path / name)
    assert "\n" not in str(caught.value)


def test_a_forced_encoding_that_fails_says_it_is_the_likely_cause(tmp_path):
    (tmp_path / "a.srt").write_text(SRT)
    with pytest.raises(UserError, match="the forced encoding (may be|is likely) wrong"):
        read_narration(tmp_path / "a.srt", encoding="utf-16")
    (tmp_path / "b.srt").write_bytes(SRT.encode("cp1252"))
    with pytest.raises(UserError, match="not utf-8 text \\(byte \\d+\\): the forced encoding is likely wrong"):
        read_narration(tmp_path / "b.srt", encoding="utf-8")


def test_random_bytes_are_a_binary_file(tmp_path):
    (tmp_path / "a.srt").write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(UserError, match="is a binary file") as caught:
        read_narration(tmp_path / "a.srt")
    assert "encoding" not in str(caught.value)


def test_parse_errors_are_subtitle_errors_with_a_line():
    with pytest.raises(SubtitleError) as caught:
        parse_subtitles("hello\n", "vtt")
    assert caught.value.line == 1


@settings(max_examples=100)
@given(st.lists(st.tuples(st.integers(0, 500), st.integers(0, 50)), min_size=1, max_size=12), st.data())
def test_mapped_times_keep_given_times_order_and_lengths_sign(cues, data):
    old = sorted((s / 10.0, (s + d) / 10.0) for s, d in cues)
    chosen = sorted(data.draw(st.sets(st.integers(0, len(old) - 1))))
    gaps = data.draw(st.lists(st.integers(10, 100), min_size=len(chosen), max_size=len(chosen)))
    new = {k: (s / 10.0, s / 10.0 + 1.0) for k, s in zip(chosen, np.cumsum(gaps).tolist())}  # as alignments are
    times = mapped_times(old, new)
    assert len(times) == len(old)
    for k, (start, end) in enumerate(times):
        assert 0.0 <= start <= end
        if k in new:
            assert (start, end) == new[k]
    if not new:
        assert times == old
    else:  # the others in order (the cues were given in time order), between the given ones around them
        starts_out = [s for s, _ in times]
        assert all(a <= b + 1e-9 for a, b in zip(starts_out, starts_out[1:]))
        for k, (start, end) in enumerate(times):
            earlier = [new[j][1] for j in new if j < k]
            later = [new[j][0] for j in new if j > k]
            if k not in new and earlier and later:
                assert max(earlier) - 1e-9 <= start <= end <= min(later) + 1e-9


@pytest.mark.parametrize("kind, text, expected", [
    ("srt", "1\n00:00:01 --> 00:00:10\nA.\n", "1\n00:00:02,500 --> 01:00:03,250\nA.\n"),
    ("srt", "1\n0:00:01.5 --> 0:00:02.25\nA.\n", "1\n0:00:02.500 --> 1:00:03.250\nA.\n"),
    ("vtt", "WEBVTT\n\n00:01.000 --> 00:02.000 line:0\nA.\n", "WEBVTT\n\n00:02.500 --> 01:00:03.250 line:0\nA.\n"),
    ("ass", "[Events]\nFormat: Start, End, Text\nDialogue: 0:00:01,0:00:02,A.\n",
     "[Events]\nFormat: Start, End, Text\nDialogue: 0:00:02.50,1:00:03.25,A.\n"),
    ("ass", "[Events]\nFormat: Start, End, Text\nDialogue :  0:00:01.00, 0:00:02.00,A.\n",
     "[Events]\nFormat: Start, End, Text\nDialogue :  0:00:02.50, 1:00:03.25,A.\n"),
])
def test_a_stamp_is_written_in_its_own_style_with_its_precision(kind, text, expected):
    assert parse_subtitles(text, kind).retimed([(2.5, 3603.25)]) == expected


_FRAGMENTS = ["1", "2", "dix", "", " ", "00:00:01,000 --> 00:00:02,000", "00:00:03.5 --> 00:00:04,25 X1:1",
              "-00:00:01,000 --> 00:00:00,500", "00:01.000 --> 00:02.000 align:start", "00:00:1O,000 --> x",
              "-->", "Hello <i>there</i> &amp;", "{\\an8}Up", "WEBVTT", "NOTE a note", "STYLE", "[Events]",
              "[Script Info]", "Format: Start, End, Text", "Format: Layer, Start, End, Style, Name, Text",
              "Dialogue: 0:00:01.00,0:00:02.00,Hi, there", "Dialogue: 0,0:00:01.00,0:00:02.00,D,,Yo",
              "Comment: 0,0:00:01.00,0:00:02.00,D,,c", "It\u0092s \u00e2\u0080\u0094 ok", "\f", "\x1a"]


@settings(max_examples=300)
@given(st.sampled_from(["a.srt", "a.vtt", "a.ass", "a.ssa", "a.txt"]), st.lists(st.sampled_from(_FRAGMENTS),
                                                                                 max_size=30),
       st.sampled_from(["\n", "\r\n", "\r"]))
def test_any_mix_of_subtitle_lines_reads_or_is_one_line_and_retimes_in_place(tmp_path_factory, name, lines,
                                                                            newline):
    path = tmp_path_factory.mktemp("fuzz") / name
    path.write_bytes(newline.join(lines).encode())
    try:
        narration = read_narration(path, split="lines")
    except UserError as error:
        assert "\n" not in str(error) and str(error).startswith("narration: ")
        return
    assert all(c.text for c in narration) and all(c.start is None or 0 <= c.start <= c.end for c in narration)
    if narration.document is not None:
        spans = np.arange(2 * len(narration), dtype=float).reshape(-1, 2) + 1.0
        data, _ = retimed_subtitles(clip_alignment(len(narration), np.arange(len(narration)), spans), narration)
        stamp = re.compile(r"-?\d+[:;]\d{1,2}(?:[:;]\d{1,2})?(?:[.,:]\d{1,4})?")
        assert stamp.split(data.decode()) == stamp.split(path.read_bytes().decode())


def test_a_forced_encoding_that_reads_control_characters_is_named_the_cause(tmp_path):
    (tmp_path / "a.srt").write_bytes("1\n00:00:01,000 --> 00:00:02,000\nHi\n".encode("utf-16-le"))
    with pytest.raises(UserError, match="holds a control character .*: the forced encoding is likely wrong"):
        read_narration(tmp_path / "a.srt", encoding="latin-1")
