"""Feature encoders (for the features pipeline and ``tfalign.align --video``), from local files only.

- Images (each clip's central frame): a ``keras.applications`` backbone,
  global-average-pooled; weights from a local .weights.h5/.h5 file, or none
  (random: for tests and dry runs). ``imagenet`` downloads, and only when asked.
- Texts: a ``keras-hub`` backbone with its tokenizer, mean-pooled over the
  tokens. From a preset (a local preset folder; a named preset such as
  ``bert_base_en`` downloads, and only when asked), or a small BERT built from
  a JSON config: {"vocabulary": [...] or "vocab.txt", "num_layers": 2,
  "num_heads": 2, "hidden_dim": 64, "intermediate_dim": 128, "sequence_length": 64}.
- Either, from a TF-Hub SavedModel (TF2 format) given as a local folder:
  loaded with ``tensorflow_hub.load`` inside a Keras 3 layer (``HubLayer``;
  ``hub.KerasLayer`` needs Keras 2). An image model takes float32 [B, H, W, 3]
  in [0, 1] and returns [B, D] (TF-Hub's image feature vector convention); a
  text model takes a batch of strings [B] and returns [B, D] (as the sentence
  encoders do). A handle (https://...) downloads, and only when named.
- Both, in one space: a keras-hub CLIP or SigLIP preset (``vision_language``,
  ``--encoder``; media/vision_language.py): its image tower on the clips'
  frames, its text tower on the sentences.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib

import numpy as np

from tfalign.errors import UserError
from tfalign.files import read_json_object
from tfalign.media.images import load_image

IMAGE_MODELS = {
    "mobilenet_v3_small": "MobileNetV3Small", "mobilenet_v3_large": "MobileNetV3Large",
    "resnet50": "ResNet50", "efficientnet_b0": "EfficientNetB0",
}


def _is_url(handle: str) -> bool:
    return handle.startswith(("http://", "https://", "gs://"))


def _hub_handle(handle: str, option: str) -> str:
    """A local TF-Hub SavedModel folder (checked), or a URL handle (downloads when loaded)."""
    if _is_url(handle):
        return handle
    if not (pathlib.Path(handle) / "saved_model.pb").exists():
        raise UserError(f"{option}: {handle} is not a SavedModel folder (no saved_model.pb)", field=option)
    return handle


def hub_layer(handle: str, option: str = "hub"):
    """A Keras 3 layer around a TF-Hub SavedModel (frozen: feature extraction). A local
    folder loads with TensorFlow alone; a URL needs ``tensorflow_hub`` (it downloads)."""
    import keras
    import tensorflow as tf

    class HubLayer(keras.layers.Layer):
        def __init__(self, handle, **kwargs):
            super().__init__(trainable=False, **kwargs)
            self.handle = handle
            if _is_url(handle):
                import tensorflow_hub as hub

                self._module = hub.load(handle)
            else:
                self._module = tf.saved_model.load(handle)
            if not callable(self._module):
                raise UserError(f"{option}: {handle} has no __call__ (a TF2 TF-Hub SavedModel is callable)",
                                field=option)

        def call(self, inputs):
            return self._module(inputs)

        def get_config(self):
            return {**super().get_config(), "handle": self.handle}

    return HubLayer(_hub_handle(handle, option), name="hub_encoder")


class ImageEncoder:
    def __init__(self, model="mobilenet_v3_small", weights=None, image_size=224, hub=None):
        import keras

        self.image_size = image_size
        self.hub = hub_layer(hub, "image_hub") if hub else None
        if self.hub is not None:
            return
        if model not in IMAGE_MODELS:
            raise UserError(f"image_model: expected one of {sorted(IMAGE_MODELS)}, got {model!r}", field="image_model")
        local = weights not in (None, "none", "imagenet")
        if local and not pathlib.Path(weights).exists():
            raise UserError(f"image_weights: {weights}: no such file", field="image_weights")
        builder = getattr(keras.applications, IMAGE_MODELS[model])
        self.model = builder(weights="imagenet" if weights == "imagenet" else None, include_top=False,
                             pooling="avg", input_shape=(image_size, image_size, 3))
        if local:
            self.model.load_weights(weights)

    def load(self, path) -> np.ndarray:
        return load_image(path, self.image_size)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        if self.hub is not None:  # TF-Hub image models read [0, 1]
            return np.asarray(self.hub(np.asarray(images, np.float32) / 255.0))
        return np.asarray(self.model(images, training=False))


class TextEncoder:
    def __init__(self, preset=None, config=None, hub=None):
        if sum(map(bool, (preset, config, hub))) != 1:
            raise UserError("text_preset: give exactly one of text_preset, text_config and text_hub",
                            field="text_preset")
        self.hub = hub_layer(hub, "text_hub") if hub else None
        if hub:
            return
        import keras_hub

        if preset:
            self.backbone = keras_hub.models.Backbone.from_preset(preset)
            self.preprocessor = keras_hub.models.TextClassifierPreprocessor.from_preset(preset)
        else:
            spec = json.loads(pathlib.Path(config).read_text())
            vocabulary = spec["vocabulary"]
            if isinstance(vocabulary, str):  # a vocab.txt beside the config
                path = pathlib.Path(config).parent / vocabulary
                vocabulary = [line.rstrip("\n") for line in path.read_text(encoding="utf-8").splitlines()]
            tokenizer = keras_hub.tokenizers.BertTokenizer(vocabulary=vocabulary, lowercase=True)
            length = spec.get("sequence_length", 64)
            self.preprocessor = keras_hub.models.BertTextClassifierPreprocessor(tokenizer, sequence_length=length)
            self.backbone = keras_hub.models.BertBackbone(
                vocabulary_size=len(vocabulary), num_layers=spec.get("num_layers", 2),
                num_heads=spec.get("num_heads", 2), hidden_dim=spec.get("hidden_dim", 64),
                intermediate_dim=spec.get("intermediate_dim", 128), max_sequence_length=length)
            if spec.get("weights"):
                self.backbone.load_weights(str(pathlib.Path(config).parent / spec["weights"]))

    def __call__(self, texts: list[str]) -> np.ndarray:
        if self.hub is not None:
            import tensorflow as tf

            return np.asarray(self.hub(tf.constant(texts, tf.string)))
        inputs = self.preprocessor(texts)
        sequence = np.asarray(self.backbone(inputs)["sequence_output"])
        mask = np.asarray(inputs["padding_mask"], np.float32)[..., None]
        return (sequence * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1.0)


EXTRACTORS_FILE = "feature_extractors.json"  # in a features folder, a prepared folder's manifest, an export's assets


@dataclasses.dataclass(frozen=True)
class FeatureExtractors:
    """The encoders that made a model's features, as an export records them.

    A model only aligns features from the encoders it was trained on: the
    features pipeline writes this record beside its shards, the preparation
    pipeline keeps it (with its projection) in its manifest, and an export
    copies it into ``assets/feature_extractors.json``, where
    ``tfalign.align --video`` reads it. Paths are absolute.

    Attributes:
        image_model: a keras.applications backbone (see ``IMAGE_MODELS``).
        image_weights: its weights: a local file, "none" (random) or "imagenet".
        image_size: frames are resized to this square size.
        image_hub: a TF-Hub image feature vector folder instead of image_model.
        text_preset / text_config / text_hub: the text encoder (one of them).
        vision_language: a keras-hub CLIP or SigLIP preset (a folder, or a name that
            downloads) encoding both sides into one space, instead of the above.
        frames_per_clip: frames a clip, encoded and averaged (1: its centre).
        projection: {"output_dim", "clip_seed", "text_seed"} of the random
            projection the preparation applied, or None.

    Example:
    >>> FeatureExtractors(image_weights="none", text_config="tiny_bert.json").to_dict()["image_size"]
    224
    """

    image_model: str = "mobilenet_v3_small"
    image_weights: str = "none"
    image_size: int = 224
    image_hub: str | None = None
    text_preset: str | None = None
    text_config: str | None = None
    text_hub: str | None = None
    frames_per_clip: int = 1
    projection: dict | None = None
    vision_language: str | None = None

    def __post_init__(self):
        if not self.image_hub and not self.vision_language and self.image_model not in IMAGE_MODELS:
            raise UserError(f"image_model: expected one of {sorted(IMAGE_MODELS)}, got {self.image_model!r}",
                            field="image_model")
        for name, low in (("image_size", 32), ("frames_per_clip", 1)):
            value = getattr(self, name)
            if not (isinstance(value, int) and not isinstance(value, bool) and value >= low):
                raise UserError(f"{name}: expected an integer >= {low}, got {value!r}", field=name)

    @property
    def has_text_encoder(self) -> bool:
        return bool(self.text_preset or self.text_config or self.text_hub or self.vision_language)

    @property
    def shared_space(self) -> bool:
        """Whether clips and texts come out in one space (a vision-language preset)."""
        return bool(self.vision_language)

    def resolved(self) -> "FeatureExtractors":
        """The same with local paths made absolute (a record read from elsewhere)."""
        absolute = lambda p: p if not p or _is_url(p) or p in ("none", "imagenet") or \
            not pathlib.Path(p).exists() else str(pathlib.Path(p).resolve())
        return dataclasses.replace(self, image_weights=absolute(self.image_weights), image_hub=absolute(self.image_hub),
                                   text_preset=absolute(self.text_preset), text_config=absolute(self.text_config),
                                   text_hub=absolute(self.text_hub), vision_language=absolute(self.vision_language))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, record: dict, where: str = "feature extractors") -> "FeatureExtractors":
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(record) - fields)
        if unknown:
            raise UserError(f"{where}: unknown field {unknown[0]!r} (expected some of {sorted(fields)})")
        return cls(**record)

    @classmethod
    def read(cls, path) -> "FeatureExtractors":
        return cls.from_dict(read_json_object(path, "feature extractors file"), str(path))

    def override(self, **changes) -> "FeatureExtractors":
        """The same with the given (not None) fields changed; a new image or text
        source replaces the old one (an image_hub drops the image model's weights)."""
        changes = {k: v for k, v in changes.items() if v is not None}
        if any(k in changes for k in ("text_preset", "text_config", "text_hub")):
            changes = {"text_preset": None, "text_config": None, "text_hub": None, "vision_language": None, **changes}
        if "image_model" in changes or "image_weights" in changes:
            changes.setdefault("image_hub", None)
        if any(k in changes for k in ("image_model", "image_weights", "image_hub")):
            changes.setdefault("vision_language", None)
        if changes.get("vision_language"):  # one preset for both sides
            changes.update(image_hub=None, text_preset=None, text_config=None, text_hub=None)
        return dataclasses.replace(self, **changes)

    def check_files(self) -> None:
        """The local files the encoders load exist (checked before any work starts)."""
        if self.vision_language:
            from tfalign.media.vision_language import check_preset

            check_preset(self.vision_language)
            return
        if self.image_hub:
            _hub_handle(self.image_hub, "image_hub")
        if self.text_hub:
            _hub_handle(self.text_hub, "text_hub")
        if not self.image_hub and self.image_weights not in ("none", "imagenet") and \
                not pathlib.Path(self.image_weights).is_file():
            raise UserError(f"image_weights: {self.image_weights}: no such file", field="image_weights")
        if self.text_preset and ("/" in self.text_preset or pathlib.Path(self.text_preset).exists()) and \
                not pathlib.Path(self.text_preset).is_dir():
            raise UserError(f"text_preset: {self.text_preset}: no such preset folder", field="text_preset")
        if self.text_config:
            check_text_config(self.text_config)

    def image_encoder(self):
        """The clips' encoder: frames [B, H, W, 3] in [0, 255] -> [B, D], with its ``image_size``."""
        if self.vision_language:
            from tfalign.media.vision_language import ImageTower

            return ImageTower(self.vision_language)
        return ImageEncoder(self.image_model, self.image_weights, self.image_size, self.image_hub)

    def text_encoder(self):
        """The texts' encoder: a list of strings -> [B, D]."""
        if self.vision_language:
            from tfalign.media.vision_language import TextTower

            return TextTower(self.vision_language)
        return TextEncoder(self.text_preset, self.text_config, self.text_hub)


def extractors_of_dataset(dataset: str) -> FeatureExtractors | None:
    """The encoders recorded with a prepared dataset (``tfrecord:DIR``): the
    preparation pipeline keeps the features' record in each split's manifest."""
    kind, _, location = dataset.partition(":")
    if kind != "tfrecord" or not location:
        return None
    for folder in (pathlib.Path(location) / "train", pathlib.Path(location)):
        manifest = folder / "manifest.json"
        if manifest.is_file():
            record = read_json_object(manifest, "manifest").get("feature_extractors")
            return FeatureExtractors.from_dict(record, str(manifest)) if record else None
    return None


def check_text_config(path) -> None:
    """A small BERT's JSON config names its vocabulary and sizes correctly."""
    spec = read_json_object(path, "text config")
    vocabulary = spec.get("vocabulary")
    fail = lambda message: UserError(f"text_config: {path}: {message}", field="text_config")
    if isinstance(vocabulary, str):
        if not (pathlib.Path(path).parent / vocabulary).is_file():
            raise fail(f"field 'vocabulary' names a missing file {vocabulary!r}")
    elif not (isinstance(vocabulary, list) and vocabulary and all(isinstance(w, str) for w in vocabulary)):
        raise fail("field 'vocabulary': expected a list of words or a vocab.txt file name")
    for key in ("num_layers", "num_heads", "hidden_dim", "intermediate_dim", "sequence_length"):
        if key in spec and not (isinstance(spec[key], int) and not isinstance(spec[key], bool) and spec[key] >= 1):
            raise fail(f"field {key!r}: expected an integer >= 1, got {spec[key]!r}")
    if spec.get("weights") and not (pathlib.Path(path).parent / spec["weights"]).is_file():
        raise fail(f"field 'weights' names a missing file {spec['weights']!r}")


def clip_sample_times(clip_times, frames_per_clip: int = 1) -> np.ndarray:
    """[N * k] times: k frames spread evenly inside each clip (k = 1: its centre), in order."""
    clip_times = np.asarray(clip_times, np.float64).reshape(-1, 2)
    offsets = (np.arange(frames_per_clip) + 0.5) / frames_per_clip
    return (clip_times[:, :1] + offsets[None] * (clip_times[:, 1:] - clip_times[:, :1])).reshape(-1)


def encode_clips(video, clip_times, encoder: ImageEncoder, frames_per_clip: int = 1, batch_size: int = 32,
                 progress=None, field: str = "video") -> np.ndarray:
    """One feature a clip: its frames decoded (seeking forward), encoded in batches, averaged.

    Args:
        video: the video file.
        clip_times: [N, 2] (start, end) seconds, in order.
        encoder: an ``ImageEncoder``.
        frames_per_clip: frames a clip to average (1: the centre frame).
        batch_size: frames encoded together.
        progress: called with the count of clips encoded so far (optional).
        field: the argument's name, for errors.

    Returns:
        [N, D] float32 features.
    """
    from tfalign.media.video import read_frames

    times = clip_sample_times(clip_times, frames_per_clip)
    vectors, batch = [], []
    for frame in read_frames(video, times, encoder.image_size, field=field):
        batch.append(frame.astype(np.float32))
        if len(batch) == batch_size:
            vectors.append(encoder(np.stack(batch)))
            batch = []
            if progress is not None:
                progress(sum(len(v) for v in vectors) // frames_per_clip)
    if batch:
        vectors.append(encoder(np.stack(batch)))
    features = np.concatenate(vectors).astype(np.float32)
    if progress is not None:
        progress(len(features) // frames_per_clip)
    return features.reshape(len(clip_times), frames_per_clip, -1).mean(axis=1)
