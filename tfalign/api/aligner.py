"""The trained aligner of tfalign's Python API: ``Aligner``, in process or from a SavedModel.

As a keras-hub task wraps its backbone and its preprocessor and owns its
presets, ``Aligner`` wraps the Keras model (``NeuMatchAligner`` or ``LatticeAligner``) and the feature
extractors that turn media into its inputs, and owns presets, export and
warm-up. It takes one video's clip and text features in natural order (or a
list of videos: a batch, padded inside) and returns ``Alignment`` objects
(tfalign.data.alignment), the same structure whatever decodes: greedy or
exact, a Keras model in this process or an exported SavedModel.

It is made from a training run (``from_run``), a SavedModel (``from_saved_model``),
a preset folder (``from_preset``, written by ``save_to_preset`` as keras-hub
writes its presets: the Keras config, the weights, metadata and a model card),
a Keras model (``Aligner(model)``), or with no training at all for features
that already share a space (``zero_shot``).
"""

from __future__ import annotations

from tfalign.api.backends import KerasBackend, SavedModelBackend
from tfalign.api.deployment import Deployable
from tfalign.api.inputs import (check_encoder_widths, checked_labelled, checked_labels, checked_videos, one_or_many,
                                per_video)
from tfalign.data.alignment import Alignment
from tfalign.data.batching import padded_requests
from tfalign.data.decoding_choice import Decoding
from tfalign.data.metrics import evaluate_alignments
from tfalign.errors import UserError
from tfalign.serving.document import check_times
from tfalign.serving.preset import load_preset


def video_confidence_floor(metadata: dict) -> float | None:
    """The mean clip confidence below which a video's alignment is doubtful: what the lowest
    10% of the validation videos reached when the run fitted its confidences
    (``evaluation.calibration``); None where unknown (no run figures, a paper model)."""
    best = (metadata.get("metrics") or {}).get(f"best_{metadata.get('checkpoint') or 'clip_accuracy'}") or {}
    return (best.get("confidence_temperature") or {}).get("video_confidence_floor")


def recorded_decoding(metadata: dict) -> str | None:
    """The decoding an export records: the run's choice, else its config's (``task.decoding``;
    ``trainer.decoding`` in configs written before it moved)."""
    experiment = metadata.get("experiment") or {}
    return ((metadata.get("metrics") or {}).get("decoding") or (experiment.get("task") or {}).get("decoding")
            or (experiment.get("trainer") or {}).get("decoding"))


class Aligner(Deployable):
    """A NeuMATCH aligner: aligns the clips of a video with its texts. Its preprocessor
    is its ``feature_extractors`` (its features' encoders), which ``align_video`` runs.

    Args:
        model: a built tfalign aligner (``NeuMatchAligner`` or ``LatticeAligner``, Keras models).
        decoding: how ``align`` decodes by default: "greedy" (the paper's) or
            "exact" (the best complete path; a decoder without history).
            Default: the run's own choice where known, else exact if it can.
        metadata: what is known of the model's training (the experiment's config under
            "experiment", the run's figures under "metrics"); presets and exports keep it.

    Example:
    >>> aligner = tfalign.Aligner.from_run("runs/tfalign_rp_sbn-1a2b3c4d")  # doctest: +SKIP
    >>> alignment = aligner.align(clip_features, text_features)              # doctest: +SKIP
    >>> alignment.clip_to_text, alignment.text_span(0)                        # doctest: +SKIP
    """

    def __init__(self, model=None, decoding: str | None = None, metadata: dict | None = None, *, _backend=None):
        if _backend is None:
            from tfalign.model import AlignerTask

            if not isinstance(model, AlignerTask):
                raise UserError(f"model: expected a tfalign aligner (NeuMatchAligner or LatticeAligner), got "
                                f"{type(model).__name__}", field="model")
            if not model.built:
                model.build()
            _backend = KerasBackend(model)
        self._backend = _backend
        self.metadata = dict(metadata or {})
        default = self.metadata.get("decoding") or Decoding.default("exact" not in _backend.decodings)
        self.decoding = self.resolve_decoding(decoding or default)

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
        from tfalign.media.extractors import extractors_of_dataset
        from tfalign.training.checkpoints import load_model
        from tfalign.training.run_folder import run_decoding, run_metrics

        config, model = load_model(folder, checkpoint)
        extractors = extractors_of_dataset(config.data.dataset)
        metadata = {"experiment": config.to_dict(), "metrics": run_metrics(folder), "source": str(folder),
                    "checkpoint": checkpoint}
        if extractors is not None:
            metadata["feature_extractors"] = extractors.to_dict()
        return cls(model, decoding=run_decoding(folder, config), metadata=metadata)

    @classmethod
    def from_saved_model(cls, path) -> Aligner:
        """An exported SavedModel (``python -m tfalign.export``, a run's ``saved_model/``,
        or ``saved_models/NAME`` for its highest version): ``align`` calls its signatures
        and returns what it would in process (``model``: none, graphs only).

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
        backend = SavedModelBackend(path)
        metadata = backend.metadata
        decoding = recorded_decoding(metadata)
        return cls(metadata={**metadata, "source": str(path)}, _backend=backend,
                   decoding=decoding if decoding in Decoding.names() else None)

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

    @classmethod
    def zero_shot(cls, width: int | None = None, *, episodes=None, val=None, drop_cost: float | None = None,
                  experiment: str = "tfalign_rp_sbn") -> Aligner:
        """Zero-shot DTW, no training: for features in one space (CLIP, SigLIP). The
        recipe's network at its start (tfalign/api/zero_shot.py): the centred cosine
        (the modality gap removed), exact decoding, ``clip_confidence``; presets and
        exports as any aligner. ``tfalign.train(..., train=[])`` starts from it.

        Args:
            width: the features' width, clips and texts alike; default: the episodes'.
            episodes: videos (labels not read) whose means the similarity centres on.
            val: labelled episodes the drop cost is tuned on (and centred on).
            drop_cost: 1 - cosine units; default: tuned on ``val``, else the 15% quantile
                rule on ``episodes`` (``data.classical.zero_shot_drop_cost``), else 1.

        Returns:
            An ``Aligner`` decoding exactly.

        Example:
        >>> rng = np.random.default_rng(0)
        >>> texts = rng.normal(size=(4, 16))
        >>> clips = np.repeat(texts, 3, axis=0) + 0.3 * rng.normal(size=(12, 16))
        >>> tfalign.Aligner.zero_shot(16).align(clips, texts).clip_to_text.tolist()
        [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
        """
        from tfalign.api.zero_shot import zero_shot_model

        model, metadata = zero_shot_model(width, episodes, val, drop_cost, experiment)
        return cls(model, decoding="exact", metadata=metadata)

    # ----------------------------------------------------------- properties
    @property
    def model(self):
        """The Keras model (a ``NeuMatchAligner`` or ``LatticeAligner``); not available for a SavedModel."""
        if not isinstance(self._backend, KerasBackend):
            raise UserError("model: an Aligner loaded from a SavedModel holds no Keras model; load the run "
                            "(Aligner.from_run) or a preset (Aligner.from_preset) for it", field="model")
        return self._backend.model

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

    @property
    def video_confidence_floor(self) -> float | None:
        """The mean clip confidence below which a video's alignment is doubtful (``video_confidence_floor``)."""
        return video_confidence_floor(self.metadata)

    def resolve_decoding(self, decoding: str | None = None) -> str:
        """``decoding``, or this aligner's when None, checked: a name it can run."""
        return Decoding.check(decoding or self.decoding, history="exact" not in self.decodings)

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
            ``to_json()``; from a CRF model (the recipe's) or exact decoding, ``clip_confidence``,
            ``confidence`` and ``text_confidence(j)`` too (docs/decoding.md).

        Example:
        >>> alignment = aligner.align(np.random.rand(40, 512), np.random.rand(9, 384))  # doctest: +SKIP
        >>> print(alignment.to_json())                                                # doctest: +SKIP
        """
        decoding = self.resolve_decoding(decoding)
        single = one_or_many(clips, "clips", self.input_widths[0])
        if single != one_or_many(texts, "texts", self.input_widths[1]):
            raise UserError("texts: expected one video's texts for one video's clips, or a list of them for a list",
                            field="texts")
        clip_list = checked_videos(clips, "clips", self.input_widths[0], single)
        text_list = checked_videos(texts, "texts", self.input_widths[1], single, len(clip_list))
        times = per_video(clip_times, "clip_times", len(clip_list), single)
        names = checked_labels(labels, text_list, single)
        alignments = _decoded(self._backend, decoding, clip_list, text_list, names, times)
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

        decoding = self.resolve_decoding(decoding)
        inputs = media_inputs(video, narration, extractors or self.feature_extractors, clip_options, split,
                              show_progress, narration_encoding=narration_encoding)
        check_encoder_widths(inputs, self.input_widths)
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
        """Clip accuracy and sentence IoU on labelled episodes (``tfalign.evaluate``), checked first."""
        episodes, decoding = checked_labelled(episodes, self.input_widths), self.resolve_decoding(decoding)
        predictions = [a.clip_to_text for a in self.align_episodes(episodes, decoding)]
        return {**evaluate_alignments(episodes, predictions), "decoding": decoding}


def _decoded(backend, decoding: str, clip_list, text_list, names, times) -> list[Alignment]:
    """Every video through the backend, a padded request of up to 16 at a time, as ``Alignment``s."""
    alignments = []
    for start, request in padded_requests(clip_list, text_list):
        out = backend.run(request, decoding)
        for row in range(len(out["num_actions"])):
            index, num_clips = start + row, len(clip_list[start + row])
            alignments.append(Alignment.from_outputs(
                out, row, num_clips, len(text_list[index]), texts=names[index], decoding=decoding,
                clip_times=None if times[index] is None else check_times(times[index], num_clips)))
    return alignments


def zero_shot_for_video(clip_features, text_features, extractors=None):
    """``Aligner.zero_shot`` of one video's features from a vision-language encoder:
    centred on that video (its clips' and texts' means), the drop cost by the quantile
    rule on it (``data.classical.zero_shot_drop_cost``), the encoders recorded."""
    from tfalign.data.episode import Episode

    video = Episode(video_id="video", clip_features=clip_features, text_features=text_features)
    aligner = Aligner.zero_shot(episodes=[video])
    aligner.feature_extractors = extractors
    return aligner


def align_video_zero_shot(video, narration, encoder: str, clip_options=None, split: str = "sentences",
                          frames_per_clip: int = 3, show_progress: bool = True, narration_encoding: str | None = None):
    """Aligns a video file with its narration with no trained model: a
    vision-language encoder puts clips and texts in one space, and zero-shot DTW
    aligns them (centred on this video, exact, with each clip's confidence).

    Args:
        video: the video file (anything PyAV reads).
        narration: a ``.srt`` / ``.vtt`` / ``.ass`` / ``.ssa`` file or a plain-text script.
        encoder: a keras-hub CLIP or SigLIP preset: a local preset folder (offline),
            or a preset name (it downloads).
        clip_options: how to cut the video (``tfalign.media.clips.ClipOptions``).
        split: how a plain-text script is split: "sentences" or "lines".
        frames_per_clip: frames spread inside each clip, encoded and averaged.
        show_progress: print the clips encoded.
        narration_encoding: the narration's text encoding (default: detected).

    Returns:
        An ``Alignment`` with the clips' times, the narration's texts and each clip's
        ``clip_confidence``.

    Example:
    >>> alignment = tfalign.align_video_zero_shot("movie.mp4", "movie.srt", "presets/clip")  # doctest: +SKIP
    >>> alignment.clip_to_text, alignment.clip_confidence                                   # doctest: +SKIP
    """
    from tfalign.media.extractors import FeatureExtractors
    from tfalign.media.inputs import media_inputs

    extractors = FeatureExtractors(vision_language=encoder, frames_per_clip=frames_per_clip)
    inputs = media_inputs(video, narration, extractors, clip_options, split, show_progress,
                          narration_encoding=narration_encoding)
    aligner = zero_shot_for_video(inputs.clip_features, inputs.text_features, extractors)
    return aligner.align(inputs.clip_features, inputs.text_features, clip_times=inputs.clip_times,
                         labels=inputs.texts)
