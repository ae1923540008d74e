"""One video's alignment as a person or a program reads it: ``Alignment``.

What an aligner returns for a pair of sequences, the same whatever decoded it
(greedy or exact, in process or through a SavedModel): the text of each clip,
the action sequence, each text's clips and time span, the unmatched clips and
the decoder's confidence, and the JSON document ``tfalign.align`` writes.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from tfalign.data.oracle import actions_to_alignment
from tfalign.errors import UserError
from tfalign.files import dumps_strict


@dataclasses.dataclass
class Alignment:
    """The alignment of one video's clips with its texts.

    Attributes:
        clip_to_text: [T_v] int, the index of each clip's text; -1 = unmatched.
        num_texts: T_s, the number of texts.
        actions: [N] int, the decoder's actions: 0 POP_CLIP (the current clip is
            left unmatched), 1 POP_TEXT (the current text is done), 2 MATCH (the
            current clip belongs to the current text).
        clip_times: [T_v, 2] float seconds of each clip (default: clip i spans
            [i, i + 1)).
        texts: the texts themselves (labels for the document), if known.
        decoding: "greedy" or "exact", if known.
        score: the log-probability of the decoder's path, if known (greedy: of
            the actions taken; exact: of the complete action sequence).
        probabilities: [N, 3] the decoder's action probabilities at each step
            of its path, if known.
        clip_confidence: [T_v] the posterior probability of each clip's
            assignment under the lattice's scores read as a CRF (exact decoding, and
            either decoding of a CRF model such as the recipe's), if known. Their mean
            is the video's ``confidence``.

    Example:
    >>> alignment = Alignment(clip_to_text=np.array([0, 0, -1, 1]), num_texts=2)
    >>> alignment.text_clips(0).tolist(), alignment.text_span(1), alignment.unmatched_clips.tolist()
    ([0, 1], (3.0, 4.0), [2])
    """

    clip_to_text: np.ndarray
    num_texts: int
    actions: np.ndarray | None = None
    clip_times: np.ndarray | None = None
    texts: list[str] | None = None
    decoding: str | None = None
    score: float | None = None
    probabilities: np.ndarray | None = None
    clip_confidence: np.ndarray | None = None

    def __post_init__(self):
        self.clip_to_text = np.asarray(self.clip_to_text, np.int64).reshape(-1)
        self.num_texts = int(self.num_texts)
        if self.clip_times is None:
            self.clip_times = np.stack([np.arange(self.num_clips), np.arange(self.num_clips) + 1.0], axis=1)
        self.clip_times = np.asarray(self.clip_times, np.float64).reshape(-1, 2)
        if len(self.clip_times) != self.num_clips:
            raise UserError(f"clip_times: expected {self.num_clips} rows (one per clip), got {len(self.clip_times)}",
                            field="clip_times")
        if self.texts is not None:
            self.texts = [str(t) for t in self.texts]
            if len(self.texts) != self.num_texts:
                raise UserError(f"texts: expected {self.num_texts} texts, got {len(self.texts)}", field="texts")
        if self.actions is not None:
            self.actions = np.asarray(self.actions, np.int64).reshape(-1)
        if self.probabilities is not None:
            self.probabilities = np.asarray(self.probabilities, np.float32).reshape(-1, 3)
        if self.score is not None:
            self.score = float(self.score)
        if self.clip_confidence is not None:
            self.clip_confidence = np.asarray(self.clip_confidence, np.float32).reshape(-1)
            if len(self.clip_confidence) != self.num_clips:
                raise UserError(f"clip_confidence: expected {self.num_clips} values (one per clip), got "
                                f"{len(self.clip_confidence)}", field="clip_confidence")

    @classmethod
    def from_actions(cls, actions, num_clips: int, num_texts: int, **fields) -> Alignment:
        """The alignment an action sequence encodes (the paper's act2align)."""
        actions = np.asarray(actions, np.int64).reshape(-1)
        return cls(clip_to_text=actions_to_alignment(actions, num_clips, num_texts), num_texts=num_texts,
                   actions=actions, **fields)

    @classmethod
    def from_outputs(cls, outputs: dict, row: int, num_clips: int, num_texts: int, **fields) -> Alignment:
        """Row ``row`` of a decoder's batched outputs (``AlignerTask.align``, a
        SavedModel's signature, a TF Serving response) as an Alignment; the outputs a
        decoder does not return (an older SavedModel's score, the paper's greedy clip_confidence) stay None."""
        row_of = lambda key: None if outputs.get(key) is None else np.asarray(outputs[key])[row]
        steps = int(row_of("num_actions"))
        score, probabilities, confidence = row_of("score"), row_of("probabilities"), row_of("clip_confidence")
        return cls(clip_to_text=row_of("clip_to_text")[:num_clips], num_texts=num_texts,
                   actions=row_of("actions")[:steps], score=None if score is None else float(score),
                   probabilities=None if probabilities is None else probabilities[:steps],
                   clip_confidence=None if confidence is None else confidence[:num_clips], **fields)

    @property
    def num_clips(self) -> int:
        return len(self.clip_to_text)

    def text_clips(self, text: int) -> np.ndarray:
        """The indices of the clips aligned to text ``text``."""
        return np.flatnonzero(self.clip_to_text == text)

    def text_span(self, text: int) -> tuple[float, float] | None:
        """(start, end) seconds of text ``text``: from its first clip's start to its last
        clip's end; None when no clip is aligned to it. A text index out of range is an error."""
        if not isinstance(text, (int, np.integer)) or not -self.num_texts <= text < self.num_texts:
            raise UserError(f"text: expected a text index in [0, {self.num_texts}), got {text!r}", field="text")
        clips = self.text_clips(int(text) % self.num_texts)
        if not len(clips):
            return None
        return float(self.clip_times[clips, 0].min()), float(self.clip_times[clips, 1].max())

    @property
    def spans(self) -> list[tuple[float, float] | None]:
        """Each text's ``text_span``, in order."""
        return [self.text_span(j) for j in range(self.num_texts)]

    @property
    def unmatched_clips(self) -> np.ndarray:
        return np.flatnonzero(self.clip_to_text < 0)

    @property
    def labels(self) -> list[str]:
        """Each text's label: ``texts``, or "text j" where they are not known."""
        return list(self.texts) if self.texts else [f"text {j}" for j in range(self.num_texts)]

    @property
    def confidence(self) -> float | None:
        """The video's confidence: the mean of ``clip_confidence`` (the expected share of
        its clips assigned right, under the model), or None without clip confidences."""
        return None if self.clip_confidence is None else float(np.mean(self.clip_confidence))

    def text_confidence(self, text: int) -> float | None:
        """Text ``text``'s confidence: the mean ``clip_confidence`` of the clips aligned to
        it; None when no clip is, or without clip confidences."""
        clips = self.text_clips(text)
        if self.clip_confidence is None or not len(clips):
            return None
        return float(np.mean(self.clip_confidence[clips]))

    def uncertain_texts(self, min_confidence: float) -> list[int]:
        """The aligned texts whose ``text_confidence`` is below ``min_confidence``.

        Args:
            min_confidence: a probability in [0, 1].

        Returns:
            Their indices, in order.

        Example:
        >>> alignment = Alignment(clip_to_text=np.array([0, 0, 1]), num_texts=2,
        ...                       clip_confidence=np.array([1.0, 0.5, 0.25]))
        >>> alignment.text_confidence(0), alignment.uncertain_texts(0.5)
        (0.75, [1])
        """
        if self.clip_confidence is None:
            raise UserError("min_confidence: this alignment has no clip confidence (a paper model's greedy decoding "
                            "gives none; a CRF model, such as the recipe's, or exact decoding does)",
                            field="min_confidence")
        if not 0.0 <= float(min_confidence) <= 1.0:
            raise UserError(f"min_confidence: expected a probability in [0, 1], got {min_confidence!r}",
                            field="min_confidence")
        return [j for j in range(self.num_texts)
                if (c := self.text_confidence(j)) is not None and c < float(min_confidence)]

    @property
    def unaligned_texts(self) -> list[int]:
        """The texts no clip is aligned to."""
        return [j for j in range(self.num_texts) if not len(self.text_clips(j))]

    def to_dict(self) -> dict:
        """The alignment document: per text its clips, their times and span; the
        unmatched clips; the texts no clip is aligned to; the actions, the decoding and the decoder's confidence."""
        entries = []
        for j, label in enumerate(self.labels):
            clips = self.text_clips(j)
            span = self.text_span(j)
            entries.append({"index": j, "text": label, "clips": clips.tolist(),
                            "clip_times": self.clip_times[clips].tolist(), "span": list(span) if span else None})
            if self.clip_confidence is not None:
                confidence = self.text_confidence(j)
                entries[-1]["confidence"] = None if confidence is None else round(confidence, 6)
        unmatched = self.unmatched_clips
        document = {"texts": entries, "unmatched_clips": unmatched.tolist(),
                    "unmatched_clip_times": self.clip_times[unmatched].tolist(),
                    "unaligned_texts": self.unaligned_texts,
                    "clip_to_text": self.clip_to_text.tolist(),
                    "actions": [] if self.actions is None else self.actions.tolist()}
        if self.decoding is not None:
            document["decoding"] = self.decoding
        if self.score is not None:
            document["score"] = self.score
        if self.probabilities is not None:
            document["probabilities"] = np.round(self.probabilities.astype(np.float64), 6).tolist()
        if self.clip_confidence is not None:
            document["confidence"] = round(self.confidence, 6)
            document["clip_confidence"] = np.round(self.clip_confidence.astype(np.float64), 6).tolist()
        return document

    def to_json(self, indent: int | None = 2) -> str:
        """``to_dict()`` as strict JSON (no NaN or Infinity)."""
        return dumps_strict(self.to_dict(), indent=indent)
