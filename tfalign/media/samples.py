"""Generated media of known content: videos of solid-colour scenes with hard
cuts, and subtitles whose cue times are known (tests, the demo, benchmarks).

Example:
>>> scenes = [Scene((255, 0, 0), 1.0), Scene((0, 0, 255), 2.0)]   # doctest: +SKIP
>>> write_scene_video("movie.mp4", scenes, fps=10)                 # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import pathlib

import numpy as np

from tfalign.files import atomic_file, writing
from tfalign.media import require

PALETTE = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
           (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (170, 110, 40)]


@dataclasses.dataclass(frozen=True)
class Scene:
    """One shot: a colour (RGB) held for ``seconds``; ``pattern`` adds stripes."""

    color: tuple
    seconds: float
    pattern: bool = False


def scene_frames(scenes, fps: int) -> list[int]:
    """How many frames each scene lasts at ``fps`` (rounded, at least one)."""
    return [max(1, int(round(s.seconds * fps))) for s in scenes]


def cut_times(scenes, fps: int) -> list[float]:
    """The times (seconds) of the hard cuts between scenes, on frame boundaries."""
    return [float(t) / fps for t in np.cumsum(scene_frames(scenes, fps))[:-1]]


def write_scene_video(path, scenes, fps: int = 10, size: tuple = (96, 64), codec: str = "mpeg4",
                      index_first: bool = False) -> pathlib.Path:
    """Writes a video of ``scenes`` (each a solid colour, hard cuts between them).

    Args:
        path: the video file to write (its suffix picks the container: .mp4, .mkv, ...).
        scenes: a list of ``Scene``.
        fps: frames a second.
        size: (width, height), even numbers.
        codec: an FFmpeg encoder PyAV has (mpeg4 is in every build).
        index_first: an .mp4's index before its frames (``movflags=faststart``, as for
            streaming): a copy cut short still opens and decodes up to the cut.

    Returns:
        The path written.
    """
    av = require("av", "writing a video")
    path = pathlib.Path(path)
    width, height = size
    with writing("the video", path), atomic_file(path, path.suffix) as tmp:
        options = {"movflags": "faststart"} if index_first else {}
        with av.open(str(tmp), "w", options=options) as container:
            stream = container.add_stream(codec, rate=fps)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.options = {"qscale": "2"}
            stream.codec_context.gop_size = fps  # a key frame every second: seeking stays cheap
            for scene, count in zip(scenes, scene_frames(scenes, fps)):
                image = np.empty((height, width, 3), np.uint8)
                image[:] = scene.color
                if scene.pattern:
                    image[:, ::8] = 255 - np.asarray(scene.color, np.uint8)
                for _ in range(count):
                    for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                        container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
    return path


def srt_text(cues) -> str:
    """SRT of ``cues``: (start_seconds, end_seconds, text) triples."""
    srt = require("srt", "writing SRT subtitles")
    import datetime

    return srt.compose([srt.Subtitle(i + 1, datetime.timedelta(seconds=s), datetime.timedelta(seconds=e), text)
                        for i, (s, e, text) in enumerate(cues)])


COLOUR_NAMES = ["red", "green", "yellow", "blue", "orange", "purple", "cyan", "magenta", "lime", "pink", "teal",
                "brown"]  # of PALETTE, one name a colour
WORDS = [*COLOUR_NAMES, "scene", "the", "a", "then", "shot", "long", "short", "bright", "dark"]  # the tiny vocabulary


def sample_encoders(folder, image_size: int = 32):
    """A MobileNetV3Small and a tiny BERT with random weights saved to files in ``folder``
    (the same features every time they load), and their ``FeatureExtractors`` record."""
    import keras
    import keras_hub

    from tfalign.media.extractors import FeatureExtractors

    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(0)
    image = keras.applications.MobileNetV3Small(weights=None, include_top=False, pooling="avg",
                                                input_shape=(image_size, image_size, 3))
    image.save_weights(folder / "image.weights.h5")
    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    spec = {"vocabulary": vocabulary, "num_layers": 1, "num_heads": 2, "hidden_dim": 16, "intermediate_dim": 32,
            "sequence_length": 16, "weights": "tiny_bert.weights.h5"}
    (folder / "tiny_bert.json").write_text(json.dumps(spec))
    keras_hub.models.BertBackbone(vocabulary_size=len(vocabulary), num_layers=1, num_heads=2, hidden_dim=16,
                                  intermediate_dim=32, max_sequence_length=16).save_weights(
        folder / "tiny_bert.weights.h5")
    return FeatureExtractors(image_model="mobilenet_v3_small", image_weights=str(folder / "image.weights.h5"),
                             image_size=image_size, text_config=str(folder / "tiny_bert.json")).resolved()


UNNAMED = (0, 0, 0)  # the colour of a scene no cue covers: none of the palette's
NEAREST_COLOUR = 0.05  # a pixel farther than this (squared RGB distance in [0, 1]) from every palette colour: none


def colour_encoders(folder, image_size: int = 32):
    """A toy vision-language pair that shares one space, saved as two SavedModel folders
    (``image_hub`` and ``text_hub``) in ``folder``, and their ``FeatureExtractors``: a
    frame's feature is the share of its pixels near each palette colour (a black
    frame has none), in the order of ``COLOUR_NAMES``; a text's feature counts the
    colour names it says. So the generated videos' clips and their cues carry the same thing, as a real
    vision-language encoder's would (CLIP, SigLIP), and the demo aligns them.

    Example:
    >>> extractors = colour_encoders("encoders")                  # doctest: +SKIP
    >>> extractors.image_encoder()(frames).shape                  # doctest: +SKIP
    (4, 12)
    """
    import tensorflow as tf

    from tfalign.media.extractors import FeatureExtractors

    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    palette = tf.constant(np.asarray(PALETTE, np.float32) / 255.0)

    class Frames(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
        def __call__(self, images):
            distances = tf.reduce_sum((images[..., None, :] - palette) ** 2, axis=-1)  # [B, H, W, colours]
            near = tf.cast(tf.reduce_min(distances, axis=-1, keepdims=True) < NEAREST_COLOUR, tf.float32)
            nearest = tf.one_hot(tf.argmin(distances, axis=-1), len(PALETTE)) * near
            return tf.reduce_mean(nearest, axis=[1, 2])  # one name a palette colour: its share

    class Texts(tf.Module):
        def __init__(self):
            super().__init__()
            self.table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
                tf.constant(COLOUR_NAMES), tf.range(len(COLOUR_NAMES), dtype=tf.int64)), default_value=-1)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def __call__(self, texts):
            words = tf.strings.split(tf.strings.regex_replace(tf.strings.lower(texts), r"[^a-z]+", " "))
            counts = tf.reduce_sum(tf.one_hot(self.table.lookup(words), len(COLOUR_NAMES)), axis=1)
            return counts.to_tensor() if isinstance(counts, tf.RaggedTensor) else counts

    tf.saved_model.save(Frames(), str(folder / "colour_frames"))
    tf.saved_model.save(Texts(), str(folder / "colour_texts"))
    return FeatureExtractors(image_hub=str(folder / "colour_frames"), image_size=image_size,
                             text_hub=str(folder / "colour_texts")).resolved()


def sample_video(path, rng, fps: int = 10, scenes: tuple = (6, 11)):
    """A video of random scenes (no two in a row of one colour) and its ``.srt``
    beside it: a cue covers a run of 1-3 scenes (named by colour); about one scene in five is covered by none, and
    shows black (no colour the narration names), as a scene nobody narrates shows
    something the narration does not speak of.

    Returns:
        (the video's path, its scenes, its cues as (start, end, text)).
    """
    path = pathlib.Path(path)
    count = int(rng.integers(*scenes))
    colours = [int(rng.integers(len(PALETTE)))]
    for _ in range(count - 1):  # never the colour before: each scene is a shot of its own
        colours.append((colours[-1] + 1 + int(rng.integers(len(PALETTE) - 1))) % len(PALETTE))
    seconds = [float(rng.integers(8, 25)) / fps for _ in range(count)]
    patterns = [bool(rng.random() < 0.3) for _ in range(count)]
    covers, k = [], 0  # (first scene, last scene + 1) of each cue
    while k < count:
        run = int(rng.integers(1, 4))
        if rng.random() < 0.2:  # uncovered: its clips are unmatched
            k += 1
            continue
        covers.append((k, min(count, k + run)))
        k = covers[-1][1]
    covered = {i for first, last in covers for i in range(first, last)}
    made = [Scene(PALETTE[c], t, pattern=p) if i in covered else Scene(UNNAMED, t)
            for i, (c, t, p) in enumerate(zip(colours, seconds, patterns))]
    write_scene_video(path, made, fps=fps)
    edges = [0.0, *cut_times(made, fps), sum(scene_frames(made, fps)) / fps]
    cues = [(edges[first], edges[last], " then ".join(f"the {COLOUR_NAMES[colours[i]]} scene"
                                                      for i in range(first, last))) for first, last in covers]
    path.with_suffix(".srt").write_text(srt_text(cues), encoding="utf-8")
    return path, made, cues


def write_damaged_video(path, seconds: float = 24.0, fps: int = 25) -> pathlib.Path:
    """A video of scenes whose middle fifth of bytes are zeros, as a damaged download or
    disk leaves one: its start and end decode, its middle does not."""
    path = pathlib.Path(path)
    scenes = [Scene(PALETTE[i % len(PALETTE)], 1.5, pattern=i % 3 == 0) for i in range(int(seconds / 1.5))]
    data = bytearray(write_scene_video(path, scenes, fps=fps, size=(320, 240)).read_bytes())
    cut = len(data) // 10
    data[len(data) // 2 - cut: len(data) // 2 + cut] = bytes(2 * cut)
    path.write_bytes(bytes(data))
    return path


def write_bad_videos(folder) -> dict[str, str]:
    """Files that are not usable videos, for the checks that refuse them: name ->
    what the refusal says, a pattern (a text file, an audio-only file, a video stream
    without a frame, a file that does not exist, a folder, still images)."""
    av = require("av", "writing media")
    folder = pathlib.Path(folder)
    (folder / "text.mp4").write_text("this is not a video\n")
    with av.open(str(folder / "audio.wav"), "w") as container:  # no video stream
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.rate, frame.pts = 8000, 0
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
    with av.open(str(folder / "empty.mkv"), "w") as container:  # a video stream, no frame
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        container.start_encoding()
    (folder / "a_folder.mp4").mkdir()
    for name, kind in (("still.png", "png"), ("still.jpg", "mjpeg")):
        with av.open(str(folder / name), "w", format="image2") as container:
            stream = container.add_stream(kind)
            stream.width, stream.height = 32, 32
            stream.pix_fmt = "rgb24" if kind == "png" else "yuvj420p"
            frame = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")
            for packet in [*stream.encode(frame.reformat(format=stream.pix_fmt)), *stream.encode()]:
                container.mux(packet)
    return {"text.mp4": "not a video file", "audio.wav": "holds no video stream",
            "empty.mkv": "holds no frame", "absent.mp4": "no such file",
            "a_folder.mp4": "is a folder, not a video file", "still.png": "is a still image \\(png\\)",
            "still.jpg": "is a still image \\(mjpeg\\)"}
