"""What an ``Aligner`` decodes with: a Keras model in this process, or an
exported SavedModel's signatures. Both take a padded natural-order request
(``tfalign.data.batching.pad_batch``) and return the decoder's outputs as
NumPy arrays, so that ``Aligner`` is the same whatever decodes."""

from __future__ import annotations

import pathlib

from tfalign.data.decoding_choice import Decoding
from tfalign.errors import UserError, first_line
from tfalign.files import read_json_object
from tfalign.media.extractors import EXTRACTORS_FILE


class KerasBackend:
    """Decodes with a tfalign Keras aligner in this process."""

    def __init__(self, model):
        self.model = model
        self.input_widths = tuple(int(w) for w in model.input_widths)
        self.decodings = Decoding.available(model.decoder_history)

    def run(self, request: dict, decoding: str) -> dict:
        return {k: v.numpy() for k, v in self.model.align(request, decoding).items()}


class SavedModelBackend:
    """Decodes with an exported SavedModel's signatures (serving_default, align_greedy, align_exact)."""

    def __init__(self, path: pathlib.Path):
        import tensorflow as tf

        try:
            self.signatures = tf.saved_model.load(str(path)).signatures
        except Exception as error:  # a corrupt saved_model.pb or variables raise many kinds
            raise UserError(f"path: {path}: not a loadable SavedModel ({type(error).__name__}: "
                            f"{first_line(error, 'no message')})", field="path") from None
        if "serving_default" not in self.signatures:
            raise UserError(f"path: {path}: the SavedModel has no serving_default signature", field="path")
        spec = self.signatures["serving_default"].structured_input_signature[1]
        self.input_widths = (int(spec["clip_features"].shape[-1]), int(spec["text_features"].shape[-1]))
        # The export carries a signature for each decoding its decoder can run.
        self.decodings = tuple(d for d in Decoding.names() if f"align_{d}" in self.signatures)
        self.metadata = assets_metadata(path)

    def run(self, request: dict, decoding: str) -> dict:
        import tensorflow as tf

        signature = self.signatures[f"align_{decoding}" if f"align_{decoding}" in self.signatures
                                    else "serving_default"]
        out = signature(**{k: tf.constant(v) for k, v in request.items()})
        return {k: v.numpy() for k, v in out.items()}


def assets_metadata(path: pathlib.Path) -> dict:
    """What an export's ``assets/`` record: the experiment's config, the run's figures
    and the feature extractors, each where present."""
    metadata = {}
    for name, key in (("config.json", "experiment"), ("metrics.json", "metrics"),
                      (EXTRACTORS_FILE, "feature_extractors")):
        file = path / "assets" / name
        if file.is_file():
            metadata[key] = read_json_object(file, name)
    return metadata
