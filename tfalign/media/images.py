"""Image files as an image encoder's input: float32 [size, size, 3] RGB in [0, 255]."""

from __future__ import annotations

import numpy as np


def load_image(path, size: int) -> np.ndarray:
    """An image file resized to ``size`` x ``size``, as float32 RGB in [0, 255]."""
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB").resize((size, size)), np.float32)
