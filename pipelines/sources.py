"""Annotation sources -> alignment skeletons with element ids.

Two formats:
- YMS: the annotation folder (tfalign.data.yms); ids are assigned in order.
- JSONL, one video a line:
    {"video_id": "v1", "split": "train",
     "clips": [{"id": "v1/clip/00000", "start": 0.0, "end": 1.5, "text": "v1/text/00000"},
               {"id": "v1/clip/00001", "start": 1.5, "end": 2.0, "text": null}, ...],
     "texts": [{"id": "v1/text/00000", "start": 0.0, "end": 1.6, "text": "A man walks in."}, ...]}
  A clip's "text" is the id of the text it belongs to, or null if unmatched.
  Unmatched spans are the parts of the timeline no text covers.
A line that cannot be parsed becomes a rejected record with its reason.
"""

from __future__ import annotations

import json

import numpy as np

from tfalign.data import yms
from pipelines.feature_store import clip_id, text_id


def yms_skeletons(annotation_dir) -> list[dict]:
    skeletons = yms.parse_yms(annotation_dir)["videos"]
    for s in skeletons:
        s["clip_ids"] = [clip_id(s["video_id"], i) for i in range(len(s["clip_times"]))]
        s["text_ids"] = [text_id(s["video_id"], j) for j in range(len(s["text_spans"]))]
    return skeletons


SPLITS = ("train", "val", "test", "unlabelled")  # unlabelled: a video and narration nobody aligned


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_elements(record: dict, field: str, timed: bool = True) -> list:
    elements = record[field]
    if not isinstance(elements, list):
        raise ValueError(f"field {field!r}: expected a list, got {type(elements).__name__}")
    for k, element in enumerate(elements):
        if not isinstance(element, dict):
            raise ValueError(f"field {field!r}: entry {k}: expected an object, got {type(element).__name__}")
        for key in ("id", "start", "end") if timed else ("id",):
            if key not in element:
                raise ValueError(f"field {field!r}: entry {k}: field {key!r} is missing")
        if not isinstance(element["id"], str):
            raise ValueError(f"field {field!r}: entry {k}: field 'id': expected a string, got {element['id']!r}")
        for key in ("start", "end") if timed else ():
            if not _number(element[key]):
                raise ValueError(f"field {field!r}: entry {k}: field {key!r}: expected a number, "
                                 f"got {element[key]!r}")
    return elements


def skeleton_from_json(line: str) -> dict:
    """One JSONL line -> skeleton; raises ValueError naming the field."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise ValueError(f"not valid JSON ({error})") from None
    if not isinstance(record, dict):
        raise ValueError(f"expected a JSON object (one video), got {type(record).__name__}")
    for field in ("video_id", "split", "clips", "texts"):
        if field not in record:
            raise ValueError(f"field {field!r} is missing")
    if not isinstance(record["video_id"], (str, int)) or isinstance(record["video_id"], bool):
        raise ValueError(f"field 'video_id': expected a string, got {record['video_id']!r}")
    if record["split"] not in SPLITS:
        raise ValueError(f"field 'split': expected one of {list(SPLITS)}, got {record['split']!r}")
    unlabelled = record["split"] == "unlabelled"
    texts = _check_elements(record, "texts", timed=not unlabelled)
    clips = _check_elements(record, "clips")
    if unlabelled:  # no ground truth: the clips' "text" and the texts' spans are not read
        clip_times = np.asarray([[c["start"], c["end"]] for c in clips], np.float64).reshape(-1, 2)
        if not len(clip_times):
            raise ValueError("field 'clips' is empty")
        return {"video_id": str(record["video_id"]), "split": "unlabelled", "clip_times": clip_times.tolist(),
                "text_spans": None, "clip_to_text": None, "unmatched_spans": None,
                "clip_ids": [c["id"] for c in clips], "text_ids": [t["id"] for t in texts]}
    index = {t["id"]: j for j, t in enumerate(texts)}
    clip_to_text = []
    for clip in clips:
        target = clip.get("text")
        if target is not None and target not in index:
            raise ValueError(f"clip {clip.get('id')!r}: field 'text' names an unknown text {target!r}")
        clip_to_text.append(-1 if target is None else index[target])
    clip_times = np.asarray([[c["start"], c["end"]] for c in record["clips"]], np.float64).reshape(-1, 2)
    text_spans = np.asarray([[t["start"], t["end"]] for t in texts], np.float64).reshape(-1, 2)
    if not len(clip_times):
        raise ValueError("field 'clips' is empty")
    return {
        "video_id": str(record["video_id"]), "split": record["split"],
        "clip_times": clip_times.tolist(), "text_spans": text_spans.tolist(), "clip_to_text": clip_to_text,
        "unmatched_spans": yms.uncovered_spans(clip_times[0, 0], clip_times[-1, 1], text_spans).tolist(),
        "clip_ids": [c["id"] for c in record["clips"]], "text_ids": [t["id"] for t in texts],
    }
