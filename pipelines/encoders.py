"""Feature encoders for the features pipeline, built from local files only.

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
"""

from __future__ import annotations

import json
import pathlib

import numpy as np

from tfalign.errors import UserError

IMAGE_MODELS = {
    "mobilenet_v3_small": "MobileNetV3Small", "mobilenet_v3_large": "MobileNetV3Large",
    "resnet50": "ResNet50", "efficientnet_b0": "EfficientNetB0",
}


def _hub_handle(handle: str, option: str) -> str:
    """A local TF-Hub SavedModel folder (checked), or a URL handle (downloads when loaded)."""
    if handle.startswith(("http://", "https://", "gs://")):
        return handle
    if not (pathlib.Path(handle) / "saved_model.pb").exists():
        raise FileNotFoundError(f"{option}: {handle} is not a SavedModel folder (no saved_model.pb)")
    return handle


def hub_layer(handle: str, option: str = "--hub"):
    """A Keras 3 layer around a TF-Hub SavedModel (frozen: feature extraction)."""
    import keras
    import tensorflow_hub as hub

    class HubLayer(keras.layers.Layer):
        def __init__(self, handle, **kwargs):
            super().__init__(trainable=False, **kwargs)
            self.handle = handle
            self._module = hub.load(handle)
            if not callable(self._module):
                raise UserError(f"{option}: {handle} has no __call__ (a TF2 TF-Hub SavedModel is callable)")

        def call(self, inputs):
            return self._module(inputs)

        def get_config(self):
            return {**super().get_config(), "handle": self.handle}

    return HubLayer(_hub_handle(handle, option), name="hub_encoder")


class ImageEncoder:
    def __init__(self, model="mobilenet_v3_small", weights=None, image_size=224, hub=None):
        import keras

        self.image_size = image_size
        self.hub = hub_layer(hub, "--image-hub") if hub else None
        if self.hub is not None:
            return
        if model not in IMAGE_MODELS:
            raise UserError(f"--image-model must be one of {sorted(IMAGE_MODELS)}, got {model!r}")
        local = weights not in (None, "none", "imagenet")
        if local and not pathlib.Path(weights).exists():
            raise FileNotFoundError(f"--image-weights: {weights} does not exist")
        builder = getattr(keras.applications, IMAGE_MODELS[model])
        self.model = builder(weights="imagenet" if weights == "imagenet" else None, include_top=False,
                             pooling="avg", input_shape=(image_size, image_size, 3))
        if local:
            self.model.load_weights(weights)

    def load(self, path) -> np.ndarray:
        from PIL import Image

        with Image.open(path) as image:
            return np.asarray(image.convert("RGB").resize((self.image_size, self.image_size)), np.float32)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        if self.hub is not None:  # TF-Hub image models read [0, 1]
            return np.asarray(self.hub(np.asarray(images, np.float32) / 255.0))
        return np.asarray(self.model(images, training=False))


class TextEncoder:
    def __init__(self, preset=None, config=None, hub=None):
        if sum(map(bool, (preset, config, hub))) != 1:
            raise UserError("give exactly one of --text-preset, --text-config and --text-hub")
        self.hub = hub_layer(hub, "--text-hub") if hub else None
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
