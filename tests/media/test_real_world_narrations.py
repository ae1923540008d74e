"""Narration files as users have them: every encoding, every markup, nothing of the
text lost (the corpus is written here; no download). Each case asserts the exact
texts that come out, accents and punctuation intact."""

import codecs

import pytest

from tfalign.errors import UserError
from tfalign.media.narration import describe, read_narration, strip_markup

pytest.importorskip("pysubs2")

ACCENTED = ["Café déjà vu — “quoted”, naïve façade.", "Ça coûte 5 € à Zürich; señor Ñuñez…"]
SRT = "1\n00:00:01,000 --> 00:00:02,500\n{0}\n\n2\n00:00:03,000 --> 00:00:04,000\n{1}\n"
ASS_HEADER = ("[Script Info]\nScriptType: v4.00+\n\n[V4+ Styles]\nFormat: Name, Fontname, Fontsize, PrimaryColour, "
              "SecondaryColour, OutlineColour, BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, "
              "Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding\n"
              "Style: Default,Arial,20,&H00FFFFFF,&H000000FF,&H00000000,&H00000000,0,0,0,0,100,100,0,0,1,2,2,2,"
              "10,10,10,1\n\n[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, "
              "Text\n")
SSA_HEADER = ("[Script Info]\nScriptType: v4.00\n\n[V4 Styles]\nFormat: Name, Fontname, Fontsize, PrimaryColour, "
              "SecondaryColour, TertiaryColour, BackColour, Bold, Italic, BorderStyle, Outline, Shadow, Alignment, "
              "MarginL, MarginR, MarginV, AlphaLevel, Encoding\nStyle: Default,Arial,20,16777215,255,0,0,0,0,1,2,2,"
              "2,10,10,10,0,1\n\n[Events]\nFormat: Marked, Start, End, Style, Name, MarginL, MarginR, MarginV, "
              "Effect, Text\n")

CASES = {
    # name: (file name, bytes, the texts that come out, their times or None)
    "utf-8 srt with BOM and CRLF": ("a.srt", codecs.BOM_UTF8 + SRT.format(*ACCENTED).replace("\n", "\r\n").encode(),
                                    ACCENTED, [(1.0, 2.5), (3.0, 4.0)]),
    "windows-1252 srt": ("a.srt", SRT.format(*ACCENTED).encode("cp1252"), ACCENTED, None),
    "latin-1 srt": ("a.srt", SRT.format("Ça va? Naïve façade à côté.", "Garçon, un café crème!").encode("latin-1"),
                    ["Ça va? Naïve façade à côté.", "Garçon, un café crème!"], None),
    "utf-16 script (Notepad)": ("a.txt", ("\n\n".join(ACCENTED) + "\r\n").encode("utf-16"), ACCENTED, None),
    "utf-16-be srt with BOM": ("a.srt", codecs.BOM_UTF16_BE + SRT.format(*ACCENTED).encode("utf-16-be"), ACCENTED,
                               None),
    "utf-32 script": ("a.txt", "\n\n".join(ACCENTED).encode("utf-32"), ACCENTED, None),
    "ASS override tags in an srt": ("a.srt", SRT.format(r"{\an8}Up {\i1}here{\i0}.", r"One\Ntwo\hthree.").encode(),
                                    ["Up here.", "One two three."], None),
    "a comparison is not a tag": ("a.srt", SRT.format("If x < 5 and y > 7, the sea is calm.", "a<b, 3 <4.").encode(),
                                  ["If x < 5 and y > 7, the sea is calm.", "a<b, 3 <4."], None),
    "html tags and entities in an srt": (
        "a.srt", SRT.format('<font color="#ff0000">Red</font> &amp; <b>bold</b>', "<u>Under</u>&nbsp;line").encode(),
        ["Red & bold", "Under line"], None),
    "webvtt escapes, voices, classes, timestamps, notes, styles, settings": (
        "a.vtt", ("WEBVTT\n\nSTYLE\n::cue { color: red }\n\nNOTE a comment\n\nintro\n00:01.000 --> 00:02.000 "
                  "align:start\nFish &amp; chips &lt;3 &gt; <v Bob>cod</v>\n\n00:03.000 --> 00:04.000\n"
                  "<c.yellow>Karaoke</c> <00:03.500>time!\n").encode(),
        ["Fish & chips <3 > cod", "Karaoke time!"], [(1.0, 2.0), (3.0, 4.0)]),
    "ass with a comment and a drawing": (
        "a.ass", (ASS_HEADER + "Dialogue: 0,0:00:01.00,0:00:02.00,Default,,0,0,0,,{\\i1}Olá{\\i0}\\Nmundo\n"
                  "Comment: 0,0:00:02.00,0:00:03.00,Default,,0,0,0,,a translator's note\n"
                  "Dialogue: 0,0:00:02.00,0:00:03.00,Default,,0,0,0,,{\\p1}m 0 0 l 10 10{\\p0}\n"
                  "Dialogue: 0,0:00:00.50,0:00:01.00,Default,,0,0,0,,First, out of order.\n").encode(),
        ["First, out of order.", "Olá mundo"], [(0.5, 1.0), (1.0, 2.0)]),
    "ssa v4": ("a.ssa", (SSA_HEADER + "Dialogue: Marked=0,0:00:01.00,0:00:02.00,Default,,0000,0000,0000,,Bonjour "
                         "à tous.\n").encode("cp1252"), ["Bonjour à tous."], [(1.0, 2.0)]),
    "windows-1252 srt with override tags and typographic quotes": (
        "a.srt",
        SRT.format(r"{\an8}<i>Café n°0 — «the red scene», déjà vu!</i>", "Œuvre “quoted” … fin.").encode("cp1252"),
        ["Café n°0 — «the red scene», déjà vu!", "Œuvre “quoted” … fin."], None),
    "windows-1251 script (Cyrillic keeps its code page)": (
        "a.txt", "Привет, мир. Это проверка субтитров.".encode("cp1251"), ["Привет, мир.", "Это проверка субтитров."],
        None),
    "windows-1250 srt (Polish keeps its code page)": (
        "a.srt", SRT.format("Zażółć gęślą jaźń.", "To jest próba.").encode("cp1250"),
        ["Zażółć gęślą jaźń.", "To jest próba."], None),
    "shuffled cue numbers and overlapping cues": (
        "a.srt", ("7\n00:00:03,000 --> 00:00:05,000\nSecond.\n\n2\n00:00:01,000 --> 00:00:04,000\nFirst.\n").encode(),
        ["First.", "Second."], [(1.0, 4.0), (3.0, 5.0)]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_narrations_read_as_written(tmp_path, case):
    name, data, texts, times = CASES[case]
    (tmp_path / name).write_bytes(data)
    cues = read_narration(tmp_path / name)
    assert [c.text for c in cues] == texts
    if times is not None:
        assert [(c.start, c.end) for c in cues] == times
    assert cues.dropped == 0 and describe(cues, tmp_path / name) is None


def test_empty_cues_are_left_out_and_counted(tmp_path):
    cues = "".join(f"{k + 1}\n00:00:0{k},000 --> 00:00:0{k},900\n{text}\n\n"
                   for k, text in enumerate(["One.", "Two.", "", "Four.", "<i></i>", "Six.", "Seven."]))
    (tmp_path / "a.srt").write_text(cues)
    narration = read_narration(tmp_path / "a.srt")
    assert [c.text for c in narration] == ["One.", "Two.", "Four.", "Six.", "Seven."] and narration.dropped == 2
    assert "2 of 7 cues hold no words" in describe(narration, tmp_path / "a.srt")


def test_a_forced_encoding_is_used_and_checked(tmp_path):
    (tmp_path / "a.txt").write_bytes("Olá, ação.".encode("cp1252"))
    assert [c.text for c in read_narration(tmp_path / "a.txt", encoding="cp1252")] == ["Olá, ação."]
    assert read_narration(tmp_path / "a.txt", encoding="cp1252").encoding == "cp1252"
    with pytest.raises(UserError, match="narration_encoding: unknown encoding 'klingon'"):
        read_narration(tmp_path / "a.txt", encoding="klingon")
    (tmp_path / "b.txt").write_bytes(b"\xff\xfe\xfd not utf-8")
    with pytest.raises(UserError, match="not utf-8 text \\(byte 0\\)"):
        read_narration(tmp_path / "b.txt", encoding="utf-8")


@pytest.mark.parametrize("data, expected", [
    (b"\x00" * 2048, "is a binary file \\(it holds NUL bytes at byte 0\\), not text"),
    (b"Hello\x07 there.", "U\\+0007"),
])
def test_binary_narrations_are_refused(tmp_path, data, expected):
    (tmp_path / "a.txt").write_bytes(data)
    with pytest.raises(UserError, match=expected) as caught:
        read_narration(tmp_path / "a.txt")
    assert str(caught.value).startswith(f"narration: {tmp_path / 'a.txt'}: ")


def test_a_folder_is_not_a_narration(tmp_path):
    with pytest.raises(UserError, match="is a folder, not a narration file"):
        read_narration(tmp_path)


def test_strip_markup_keeps_every_word():
    assert strip_markup("{\\an8}If x < 5 and y > 7, <i>the sea</i> is calm &amp; blue.") == \
        "If x < 5 and y > 7, the sea is calm & blue."
    assert strip_markup("{not a tag} <3 ->") == "{not a tag} <3 ->"
