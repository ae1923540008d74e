"""Vision-language encoders from keras-hub presets (CLIP, SigLIP): clips and
texts in one space (``--encoder NAME|FOLDER``).

The preset's image tower encodes a clip's frames (averaged over the frames of
the clip), its text tower each sentence; both embeddings are L2-normalized, as
these models compare them. A local preset folder (written by keras-hub's
``save_to_preset``: ``config.json``, the weights, ``preprocessor.json`` and
the tokenizer's assets) loads offline; a named preset (``clip_vit_base_patch32``,
``siglip_base_patch16_224``, ...) downloads, and only when it is named.
Features from one space need no trained model: ``tfalign.Aligner.zero_shot``.
"""

from __future__ import annotations

import functools
import pathlib

import numpy as np

from tfalign.errors import UserError
from tfalign.media.images import load_image

FIELD = "encoder"


def looks_like_folder(preset: str) -> bool:
    """Whether ``preset`` names a folder (a path) rather than a keras-hub preset name."""
    return "/" in preset or preset.startswith(".") or pathlib.Path(preset).exists()


def check_preset(preset: str) -> None:
    """A local preset folder exists and is a keras-hub preset (names are checked when loaded)."""
    if not looks_like_folder(preset):
        return
    folder = pathlib.Path(preset)
    if not folder.is_dir():
        raise UserError(f"{FIELD}: {preset}: no such preset folder", field=FIELD)
    if not (folder / "config.json").is_file():
        raise UserError(f"{FIELD}: {preset}: not a keras-hub preset folder (no config.json; keras-hub's "
                        f"save_to_preset writes one)", field=FIELD)


@functools.lru_cache(maxsize=2)
def load(preset: str):
    """(backbone, preprocessor) of a CLIP or SigLIP preset, loaded once a process."""
    check_preset(preset)
    import keras_hub

    try:
        backbone = keras_hub.models.Backbone.from_preset(preset)
    except Exception as error:  # keras-hub raises many kinds for a preset it cannot fetch or read
        where = "a named preset downloads: is this machine offline?" if not looks_like_folder(preset) else \
            "an unreadable preset folder"
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(f"{FIELD}: {preset}: could not load it ({where}; {first})", field=FIELD) from None
    if not (hasattr(backbone, "get_vision_embeddings") and hasattr(backbone, "get_text_embeddings")):
        raise UserError(f"{FIELD}: {preset} is a {type(backbone).__name__} preset: expected a vision-language "
                        f"preset (CLIP or SigLIP), with an image and a text tower", field=FIELD)
    # keras-hub loads a preprocessor through its model's own class (CLIPPreprocessor, SigLIPPreprocessor).
    preprocessor_class = getattr(keras_hub.models, type(backbone).__name__.replace("Backbone", "Preprocessor"), None)
    if preprocessor_class is None:
        raise UserError(f"{FIELD}: {preset}: no preprocessor class for a {type(backbone).__name__}", field=FIELD)
    preprocessor = preprocessor_class.from_preset(preset)
    if getattr(preprocessor, "image_converter", None) is None:
        raise UserError(f"{FIELD}: {preset}: its preprocessor has no image converter", field=FIELD)
    return backbone, preprocessor


def _unit_rows(x) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


class ImageTower:
    """The preset's image tower as an image encoder: frames [B, H, W, 3] in [0, 255] -> unit rows [B, D]."""

    def __init__(self, preset: str):
        self.backbone, self.preprocessor = load(preset)
        size = getattr(self.preprocessor.image_converter, "image_size", None) or (224, 224)
        self.image_size = int(size[0])

    def load(self, path) -> np.ndarray:
        return load_image(path, self.image_size)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        pixels = self.preprocessor.image_converter(np.asarray(images, np.float32))
        return _unit_rows(self.backbone.get_vision_embeddings(pixels))


class TextTower:
    """The preset's text tower as a text encoder: sentences -> unit rows [B, D]."""

    def __init__(self, preset: str):
        self.backbone, self.preprocessor = load(preset)

    def token_ids(self, texts: list[str]):
        """The sentences tokenized and packed as the preset's preprocessor packs them."""
        import tensorflow as tf

        processor = self.preprocessor
        if not processor.built:
            processor.build(None)
        prompts = tf.constant(list(texts))
        if getattr(processor, "to_lower", False):  # CLIP
            prompts = tf.strings.lower(prompts)
        if getattr(processor, "canonicalize_text", False):  # SigLIP
            prompts = processor.canonicalize_inputs(prompts)
        token_ids, _ = processor.packer(processor.tokenizer(prompts), sequence_length=processor.sequence_length,
                                        add_start_value=processor.add_start_token,
                                        add_end_value=processor.add_end_token)
        return token_ids

    def __call__(self, texts: list[str]) -> np.ndarray:
        return _unit_rows(self.backbone.get_text_embeddings(self.token_ids(texts)))
