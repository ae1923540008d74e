"""What an ``Aligner`` writes out for others: a preset folder (as keras-hub's),
a SavedModel for TF Serving with its assets and warm-up records, and the
warm-up of its own decoder."""

from __future__ import annotations

import pathlib

from tfalign.serving.preset import save_preset


class Deployable:
    """``Aligner``'s presets, exports and warm-up (a mixin: it reads the aligner's
    ``model``, ``metadata``, ``input_widths``, ``decoding`` and decoder)."""

    @property
    def feature_extractors(self):
        """The encoders of the training features (a ``FeatureExtractors``), or None when not
        recorded: what ``align_video`` encodes media with, and what exports record."""
        from tfalign.media.extractors import FeatureExtractors

        record = self.metadata.get("feature_extractors")
        return FeatureExtractors.from_dict(record) if record else None

    @feature_extractors.setter
    def feature_extractors(self, extractors) -> None:
        self.metadata["feature_extractors"] = None if extractors is None else extractors.to_dict()

    def save_to_preset(self, folder) -> pathlib.Path:
        """Writes a preset folder, all or nothing, as keras-hub's presets are:
        ``config.json`` (the model's Keras config), ``model.weights.h5``,
        ``metadata.json`` (versions, widths, decoding, the training config and
        figures) and ``MODEL_CARD.md``; ``Aligner.from_preset`` reads it back.

        Args:
            folder: the preset folder (replaced if it exists).

        Returns:
            The folder's path.
        """
        metadata = {**{k: v for k, v in self.metadata.items() if k != "source"},
                    "input_widths": list(self.input_widths), "decoding": self.decoding}
        return save_preset(self.model, folder, metadata, self.model_card())

    def export(self, path, decoding: str | None = None, xla: bool = True, warmup=None) -> pathlib.Path:
        """Writes a SavedModel for TF Serving at ``path`` (all or nothing; see
        ``tfalign.serving.saved_model``), decoding as ``decoding`` (default: this
        aligner's) in its ``serving_default``, with the config, figures and model
        card in its ``assets/`` and TF Serving warm-up requests in ``assets.extra/``.

        Args:
            path: the SavedModel folder (replaced if it exists).
            decoding: "greedy" or "exact" for ``serving_default``.
            xla: XLA-compile the greedy decoder (per padded request shape).
            warmup: a ``tfalign.serving.warmup.WarmupSize`` (default: every
                padded shape up to 512 clips x 192 texts); ``WarmupSize(0, 0)``: none.

        Returns:
            The SavedModel's path.
        """
        from tfalign.serving.saved_model import export_saved_model

        return export_saved_model(self.model, path, decoding=self.resolve_decoding(decoding),
                                  assets=self.assets(), xla=xla, warmup=warmup)

    def warm_up(self, size=None, decoding: str | None = None) -> int:
        """Compiles the decoder for every padded shape up to ``size``, as TF Serving
        does with an export's warm-up requests, so that no later ``align`` of one
        video pays a compilation (2-3 s a shape on two CPU cores).

        Args:
            size: a ``tfalign.serving.warmup.WarmupSize`` (default: 512 clips x 192 texts).
            decoding: the decoding to warm (default: this aligner's). The XLA greedy
                decoder compiles per (clips, texts) bucket pair, the exact one its
                stacks' loops per bucket of each axis (serving/warmup.py).

        Returns:
            How many warm-up alignments ran.

        Example:
        >>> from tfalign.serving.warmup import WarmupSize
        >>> aligner.warm_up(WarmupSize(256, 128))  # doctest: +SKIP
        8
        """
        from tfalign.serving.warmup import WarmupSize, warmup_plan, zeros_request

        decoding = self.resolve_decoding(decoding)
        plan = warmup_plan({decoding: "pair" if decoding == "greedy" else "axis"}, size or WarmupSize())
        for _, clips, texts, videos in plan:
            self._backend.run(zeros_request(clips, texts, self.input_widths, videos), decoding)
        return len(plan)

    def assets(self) -> dict[str, str]:
        """The files an export carries in ``assets/``."""
        from tfalign.serving.model_card import export_assets

        return export_assets(self.metadata.get("experiment") or {}, self.metadata.get("metrics") or {},
                             self.input_widths, self.metadata.get("feature_extractors"))

    def model_card(self) -> str:
        from tfalign.serving.model_card import model_card

        return model_card(self.metadata.get("experiment") or {}, self.metadata.get("metrics") or {},
                          self.input_widths)
