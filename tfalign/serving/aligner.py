"""A trained aligner from Python: ``Aligner``, in process or from a SavedModel.

``Aligner`` takes one video's clip and text features in natural order (or a
list of videos: a batch, padded inside) and returns ``Alignment`` objects
(tfalign.data.alignment), the same structure whatever decodes: greedy or
exact, a Keras model in this process or an exported SavedModel.

It is made from a training run (``from_run``), a SavedModel (``from_saved_model``),
a preset folder (``from_preset``, written by ``save_to_preset`` as keras-hub
writes its presets: the Keras config, the weights, metadata and a model card)
or a Keras model (``Aligner(model)``).
"""

from __future__ import annotations

import pathlib

import numpy as np

from tfalign.data.alignment import Alignment
from tfalign.data.batching import pad_batch
from tfalign.errors import UserError, first_line
from tfalign.files import read_json_object
from tfalign.media.encoders import EXTRACTORS_FILE
from tfalign.serving.document import check_times
from tfalign.serving.preset import load_preset, save_preset

DECODINGS = ("greedy", "exact")
BATCH = 16  # videos a request, at most


class _KerasBackend:
    """Decodes with a NeuMatchAligner in this process."""

    def __init__(self, model):
        self.model = model
        self.input_widths = tuple(int(w) for w in model.input_widths)
        self.decodings = ("greedy",) if model.decoder_history else DECODINGS

    def run(self, request: dict, decoding: str) -> dict:
        return {k: v.numpy() for k, v in self.model.align(request, decoding).items()}


class _SavedModelBackend:
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
        self.decodings = tuple(d for d in DECODINGS if f"align_{d}" in self.signatures)

    def run(self, request: dict, decoding: str) -> dict:
        import tensorflow as tf

        signature = self.signatures[f"align_{decoding}" if f"align_{decoding}" in self.signatures
                                    else "serving_default"]
        out = signature(**{k: tf.constant(v) for k, v in request.items()})
        return {k: v.numpy() for k, v in out.items()}


class Aligner:
    """A trained NeuMATCH aligner: aligns the clips of a video with its texts.

    Args:
        model: a built ``tfalign.model.NeuMatchAligner`` (a Keras model).
        decoding: how ``align`` decodes by default: "greedy" (the paper's) or
            "exact" (the best complete path; a decoder without history).
            Default: the run's own choice where known, else exact when the
            decoder has no history, greedy when it has.
        metadata: what is known of the model's training (the experiment's
            config as a dict under "experiment", the run's figures under
            "metrics"); saved with presets and exports.

    Example:
    >>> aligner = tfalign.Aligner.from_run("runs/tfalign_rp_sbn-1a2b3c4d")  # doctest: +SKIP
    >>> alignment = aligner.align(clip_features, text_features)              # doctest: +SKIP
    >>> alignment.clip_to_text, alignment.text_span(0)                        # doctest: +SKIP
    """

    def __init__(self, model=None, decoding: str | None = None, metadata: dict | None = None, *, _backend=None):
        if _backend is None:
            from tfalign.model import NeuMatchAligner

            if not isinstance(model, NeuMatchAligner):
                raise UserError(f"model: expected a tfalign NeuMatchAligner, got {type(model).__name__}",
                                field="model")
            if not model.built:
                model.build()
            _backend = _KerasBackend(model)
        self._backend = _backend
        self.metadata = dict(metadata or {})
        default = self.metadata.get("decoding") or ("exact" if "exact" in _backend.decodings else "greedy")
        self.decoding = self._check_decoding(decoding or default)

    # ------------------------------------------------------------- loading
    @classmethod
    def from_run(cls, folder, checkpoint: str = "clip_accuracy") -> Aligner:
        """The model of a training run folder (``python -m tfalign.train``, ``tfalign.train``).

        Args:
            folder: the run folder.
            checkpoint: "clip_accuracy" or "sentence_iou" (the best checkpoint by
                that validation figure) or "last".

        Returns:
            An ``Aligner`` that decodes as the run chose to.
        """
        from tfalign.training.run_folder import load_model, run_decoding, run_metrics

        from tfalign.media.encoders import extractors_of_dataset

        config, model = load_model(folder, checkpoint)
        extractors = extractors_of_dataset(config.data.dataset)
        metadata = {"experiment": config.to_dict(), "metrics": run_metrics(folder), "source": str(folder)}
        if extractors is not None:
            metadata["feature_extractors"] = extractors.to_dict()
        return cls(model, decoding=run_decoding(folder, config), metadata=metadata)

    @classmethod
    def from_saved_model(cls, path) -> Aligner:
        """An exported SavedModel (``python -m tfalign.export``, a run's ``saved_model/``,
        or ``saved_models/NAME`` for its highest version).

        ``model`` is not available (a SavedModel holds graphs, not a Keras
        model); ``align`` calls its signatures and returns what it would in process.

        Args:
            path: the SavedModel folder, or a folder of numbered versions (the highest is read).

        Returns:
            An ``Aligner`` that decodes as the export does, with the config, figures and
            feature extractors its ``assets/`` record.

        Example:
        >>> aligner = tfalign.Aligner.from_saved_model("saved_models/tfalign")   # doctest: +SKIP
        >>> aligner.align(clip_features, text_features).clip_to_text              # doctest: +SKIP
        """
        from tfalign.serving.client import resolve_model_dir

        path = resolve_model_dir(path)
        metadata = {}
        for name, key in (("config.json", "experiment"), ("metrics.json", "metrics"),
                          (EXTRACTORS_FILE, "feature_extractors")):
            file = path / "assets" / name
            if file.is_file():
                metadata[key] = read_json_object(file, name)
        decoding = (metadata.get("metrics") or {}).get("decoding") or \
            ((metadata.get("experiment") or {}).get("trainer") or {}).get("decoding")
        return cls(metadata={**metadata, "source": str(path)}, _backend=_SavedModelBackend(path),
                   decoding=decoding if decoding in DECODINGS else None)

    @classmethod
    def from_preset(cls, folder) -> Aligner:
        """A preset folder written by ``save_to_preset``, as keras-hub's presets are read:
        the model built from its Keras config, its weights restored strictly, its metadata.

        Args:
            folder: the preset folder (``config.json``, ``model.weights.h5``, ``metadata.json``).

        Returns:
            An ``Aligner`` holding the Keras model, decoding as it was saved.

        Example:
        >>> aligner = tfalign.Aligner.from_preset("presets/mine")      # doctest: +SKIP
        >>> aligner.align(clip_features, text_features).text_span(0)  # doctest: +SKIP
        """
        model, metadata = load_preset(folder)
        return cls(model, metadata={**metadata, "source": str(folder)})

    # -------------------------------------------------------------- saving
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
        ``tfalign.serving.export``), decoding as ``decoding`` (default: this
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
        from tfalign.serving.export import export_saved_model

        return export_saved_model(self.model, path, decoding=self._check_decoding(decoding or self.decoding),
                                  assets=self.assets(), xla=xla, warmup=warmup)

    def warm_up(self, size=None, decoding: str | None = None) -> int:
        """Compiles the decoder for every padded shape up to ``size``, as TF Serving
        does with an export's warm-up requests, so that no later ``align`` of one
        video pays a compilation (2-3 s a shape on two CPU cores).

        Args:
            size: a ``tfalign.serving.warmup.WarmupSize`` (default: 512 clips x 192 texts).
            decoding: the decoding to warm (default: this aligner's). Only the XLA
                greedy decoder compiles per shape; the exact one is run once.

        Returns:
            How many warm-up alignments ran.

        Example:
        >>> from tfalign.serving.warmup import WarmupSize
        >>> aligner.warm_up(WarmupSize(256, 128))  # doctest: +SKIP
        8
        """
        from tfalign.serving.warmup import WarmupSize, warmup_plan, zeros_request

        decoding = self._check_decoding(decoding or self.decoding)
        plan = warmup_plan({decoding: decoding == "greedy"}, size or WarmupSize())
        for _, clips, texts in plan:
            self._backend.run(zeros_request(clips, texts, self.input_widths), decoding)
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

    # ----------------------------------------------------------- properties
    @property
    def model(self):
        """The Keras model (a ``NeuMatchAligner``); not available for a SavedModel."""
        if not isinstance(self._backend, _KerasBackend):
            raise UserError("model: an Aligner loaded from a SavedModel holds no Keras model; load the run "
                            "(Aligner.from_run) or a preset (Aligner.from_preset) for it", field="model")
        return self._backend.model

    @property
    def feature_extractors(self):
        """The encoders of the training features (a ``FeatureExtractors``), or None when not recorded."""
        from tfalign.media.encoders import FeatureExtractors

        record = self.metadata.get("feature_extractors")
        return FeatureExtractors.from_dict(record) if record else None

    @feature_extractors.setter
    def feature_extractors(self, extractors) -> None:
        self.metadata["feature_extractors"] = None if extractors is None else extractors.to_dict()

    @property
    def input_widths(self) -> tuple[int, int]:
        """The (clip, text) feature widths the aligner takes."""
        return self._backend.input_widths

    @property
    def decodings(self) -> tuple[str, ...]:
        """The decodings available: greedy, and exact for a decoder without history."""
        return self._backend.decodings

    def __repr__(self) -> str:
        source = self.metadata.get("source") or type(self._backend).__name__.strip("_").lower()
        return f"Aligner({source!r}, input_widths={self.input_widths}, decoding={self.decoding!r})"

    def _check_decoding(self, decoding: str) -> str:
        if decoding not in DECODINGS:
            raise UserError(f"decoding: expected one of {list(DECODINGS)}, got {decoding!r}", field="decoding")
        if decoding not in self.decodings:
            raise UserError(f"decoding: {decoding!r} is not available for this model (it has "
                            f"{list(self.decodings)}: exact decoding needs a decoder without history)",
                            field="decoding")
        return decoding

    # ------------------------------------------------------------ aligning
    def align(self, clips, texts, decoding: str | None = None, clip_times=None, labels=None):
        """Aligns the clips of a video with its texts.

        Args:
            clips: [T_v, D_v] clip features in natural order (one video), or a
                list of them (a batch: each its own length).
            texts: [T_s, D_s] text features in natural order, or a list of them.
            decoding: "greedy" or "exact"; default: this aligner's.
            clip_times: [T_v, 2] start and end seconds of each clip (a list of
                them for a batch); default: clip i spans [i, i + 1).
            labels: the texts themselves (a list of strings; a list of such
                lists for a batch), for the alignment's document.

        Returns:
            An ``Alignment`` (a list of them for a batch): ``clip_to_text``,
            ``actions``, each text's clips and ``text_span``, the
            ``unmatched_clips``, the path's ``score`` and ``probabilities``,
            ``to_json()``.

        Example:
        >>> alignment = aligner.align(np.random.rand(40, 512), np.random.rand(9, 384))  # doctest: +SKIP
        >>> print(alignment.to_json())                                                # doctest: +SKIP
        """
        decoding = self._check_decoding(decoding or self.decoding)
        single = _one_or_many(clips, "clips", self.input_widths[0])
        if single != _one_or_many(texts, "texts", self.input_widths[1]):
            raise UserError("texts: expected one video's texts for one video's clips, or a list of them for a list",
                            field="texts")
        clip_list = _videos(clips, "clips", self.input_widths[0], single)
        text_list = _videos(texts, "texts", self.input_widths[1], single, len(clip_list))
        times = _per_video(clip_times, "clip_times", len(clip_list), single)
        names = _per_video(labels, "labels", len(clip_list), single)
        alignments = []
        for start in range(0, len(clip_list), BATCH):
            chunk = slice(start, start + BATCH)
            out = self._backend.run(pad_batch(clip_list[chunk], text_list[chunk]), decoding)
            for row, (video_clips, video_texts) in enumerate(zip(clip_list[chunk], text_list[chunk])):
                index = start + row
                alignments.append(_alignment(out, row, len(video_clips), len(video_texts), decoding,
                                             None if times[index] is None else
                                             check_times(times[index], len(video_clips)),
                                             names[index], index if not single else None))
        return alignments[0] if single else alignments

    def align_video(self, video, narration, decoding: str | None = None, clip_options=None, extractors=None,
                    split: str = "sentences", show_progress: bool = True,
                    narration_encoding: str | None = None) -> Alignment:
        """Aligns a video file with its narration: cut, decoded, encoded, aligned.

        Args:
            video: the video file (anything PyAV reads).
            narration: a ``.srt`` / ``.vtt`` / ``.ass`` / ``.ssa`` file or a plain-text script.
            decoding: "greedy" or "exact"; default: this aligner's.
            clip_options: how to cut the video (``tfalign.media.clips.ClipOptions``;
                default: shots, split past 10 s).
            extractors: the encoders (``FeatureExtractors``); default: the ones
                this model records (``feature_extractors``).
            split: how a plain-text script is split: "sentences" or "lines".
            show_progress: print the clips encoded.
            narration_encoding: the narration's text encoding (default: detected).

        Returns:
            An ``Alignment`` with the clips' times and the narration's texts;
            ``tfalign.media.subtitles.write_subtitles`` writes it as .srt/.vtt.

        Example:
        >>> alignment = aligner.align_video("movie.mp4", "script.txt")     # doctest: +SKIP
        >>> write_subtitles(alignment, alignment.texts, "aligned.srt")     # doctest: +SKIP
        """
        from tfalign.media.inputs import media_inputs

        decoding = self._check_decoding(decoding or self.decoding)
        inputs = media_inputs(video, narration, extractors or self.feature_extractors, clip_options, split,
                              show_progress, narration_encoding=narration_encoding)
        for name, features, width in (("clips", inputs.clip_features, self.input_widths[0]),
                                      ("texts", inputs.text_features, self.input_widths[1])):
            if features.shape[1] != width:
                raise UserError(f"image_model: the encoders give {name} features of width {features.shape[1]}, but "
                                f"the model takes width {width}: name the encoders it was trained with",
                                field="image_model" if name == "clips" else "text_config")
        return self.align(inputs.clip_features, inputs.text_features, decoding, clip_times=inputs.clip_times,
                          labels=inputs.texts)

    def align_episodes(self, episodes, decoding: str | None = None) -> list[Alignment]:
        """``align`` of each episode's features (their labels are not read), with their clip times."""
        episodes = list(episodes)
        if not episodes:
            return []
        return self.align([e.clip_features for e in episodes], [e.text_features for e in episodes], decoding,
                          clip_times=[e.clip_times for e in episodes])

    def evaluate(self, episodes, decoding: str | None = None) -> dict:
        """Clip accuracy and sentence IoU of the alignments of labelled episodes
        (fractions in [0, 1], averaged over videos), with per-video figures.

        Args:
            episodes: a list of ``tfalign.Episode`` (labelled: their ``clip_to_text``
                is the ground truth).
            decoding: "greedy" or "exact"; default: this aligner's.

        Returns:
            {"clip_accuracy", "sentence_iou", "videos", "per_video", "decoding"}.
        """
        from tfalign.data.episode import Episode, validate_episodes
        from tfalign.data.metrics import evaluate_alignments

        if isinstance(episodes, Episode) or not all(isinstance(e, Episode) and e.labelled for e in episodes):
            raise UserError("episodes: expected a list of labelled tfalign.Episode (Aligner.align aligns (clips, "
                            "texts) pairs without labels)", field="episodes")
        episodes = validate_episodes(episodes, *self.input_widths)
        decoding = self._check_decoding(decoding or self.decoding)
        predictions = [a.clip_to_text for a in self.align_episodes(episodes, decoding)]
        return {**evaluate_alignments(episodes, predictions), "decoding": decoding}


def _one_or_many(value, field: str, width: int) -> bool:
    """True for one video's [T, D] array, False for a list of them; anything else is
    one line naming ``field`` (a 1-D array, or a list of lists read as a batch)."""
    if isinstance(value, (list, tuple)):
        if value and isinstance(value[0], (list, tuple)) and np.ndim(value[0]) == 1:
            raise UserError(f"{field}: a list of lists is read as a batch of videos, each a [T, {width}] array, but "
                            f"its first item is one row of {len(value[0])} numbers; give one video as "
                            f"np.asarray(...) of shape [T, {width}]", field=field)
        return False
    if np.ndim(value) == 2:
        return True
    raise UserError(f"{field}: expected one video's [T, {width}] array or a list of them, got shape "
                    f"{list(np.shape(value))}", field=field)


def _videos(value, field: str, width: int, single: bool, count: int | None = None) -> list[np.ndarray]:
    """One or more videos' [T, D] feature arrays, checked; errors name the argument and the video."""
    videos = [value] if single else list(value)
    if not videos:
        raise UserError(f"{field}: expected at least one video", field=field)
    if count is not None and len(videos) != count:
        raise UserError(f"{field}: {len(videos)} videos, but clips has {count}", field=field)
    checked = []
    for index, video in enumerate(videos):
        where = "" if single else f"video {index}: "
        try:
            array = np.asarray(video, np.float32)
        except (TypeError, ValueError) as error:
            raise UserError(f"{field}: {where}expected numbers ({first_line(error)})", field=field) from None
        if array.ndim != 2 or array.shape[0] == 0:
            raise UserError(f"{field}: {where}expected a non-empty [T, {width}] array, got shape "
                            f"{list(array.shape)}", field=field)
        if array.shape[1] != width:
            raise UserError(f"{field}: {where}expected feature width {width} (the model's), got shape "
                            f"{list(array.shape)}", field=field)
        if not np.all(np.isfinite(array)):
            raise UserError(f"{field}: {where}holds NaN or inf", field=field)
        checked.append(array)
    return checked


def _per_video(value, field: str, count: int, single: bool) -> list:
    if value is None:
        return [None] * count
    values = [value] if single else list(value)
    if len(values) != count:
        raise UserError(f"{field}: {len(values)} entries for {count} videos", field=field)
    return values


def _alignment(out: dict, row: int, num_clips: int, num_texts: int, decoding: str, clip_times, labels,
               index) -> Alignment:
    """Row ``row`` of a decoder's outputs as an Alignment (a SavedModel of an older
    tfalign returns no score or probabilities: those stay None)."""
    if labels is not None and len(labels) != num_texts:
        where = "" if index is None else f"video {index}: "
        raise UserError(f"labels: {where}{len(labels)} texts for {num_texts} text features", field="labels")
    return Alignment.from_outputs(out, row, num_clips, num_texts, clip_times=clip_times, texts=labels,
                                  decoding=decoding)



def evaluate(aligner, episodes, decoding: str | None = None) -> dict:
    """Clip accuracy and sentence IoU of an aligner on labelled episodes (``tfalign.evaluate``).

    Args:
        aligner: a ``tfalign.Aligner`` (or a ``NeuMatchAligner`` Keras model).
        episodes: a list of labelled ``tfalign.Episode``.
        decoding: "greedy" or "exact"; default: the aligner's.

    Returns:
        {"clip_accuracy", "sentence_iou", "videos", "per_video", "decoding"}:
        fractions in [0, 1], averaged over videos.

    Example:
    >>> tfalign.evaluate(run.aligner, test_episodes)["clip_accuracy"]  # doctest: +SKIP
    """
    if not isinstance(aligner, Aligner):
        aligner = Aligner(aligner)
    return aligner.evaluate(episodes, decoding)
