"""The one table of feature widths: (clip, text) per kind of features.

``full``: 2048-d video (ResNet-style) / 768-d text (BERT-style); ``rp``: both
through the seeded 300-d random projection; ``lxmert``: 768 / 768; ``joint``:
512 / 512 in one space, as a vision-language encoder (CLIP, SigLIP) gives them
(data/joint_space.py).
"""

from tfalign.errors import UserError

FEATURE_WIDTHS = {"full": (2048, 768), "rp": (300, 300), "lxmert": (768, 768), "joint": (512, 512)}


def feature_widths(kind: str) -> tuple[int, int]:
    if kind not in FEATURE_WIDTHS:
        raise UserError(f"features: expected one of {sorted(FEATURE_WIDTHS)}, got {kind!r}")
    return FEATURE_WIDTHS[kind]
