"""What travels with every exported version in its ``assets/`` folder.

- ``config.json``: the resolved experiment config the model was trained with;
- ``metrics.json``: its validation and test figures (the run's metrics.json);
- ``MODEL_CARD.md``: a short model card: what it was trained on, its inputs
  and outputs, the feature widths it expects, its figures and its limits;
- ``feature_extractors.json``: the encoders that made the training features
  (tfalign.media.extractors.FeatureExtractors), when they are known: what
  ``tfalign.align --video`` encodes a new video and narration with.
TF Serving ignores these files; people and tools reading a version read them.
"""

from __future__ import annotations

from tfalign.data.datasets import DataConfig
from tfalign.files import dumps_strict
from tfalign.media.extractors import EXTRACTORS_FILE, extractors_of_dataset

ACTIONS = "0 POP_CLIP (the current clip is left unmatched), 1 POP_TEXT (the current text is done: go to the next), " \
          "2 MATCH (the current clip belongs to the current text)"


def _figures(metrics: dict) -> list[str]:
    figure = lambda value: "n/a" if value is None else f"{value:.4f}"  # a run without a test split has none
    lines = []
    for metric in ("clip_accuracy", "sentence_iou"):
        best = metrics.get(f"best_{metric}")
        if not best:
            continue
        test = best.get("test", {})
        lines.append(f"| best by validation {metric.replace('_', ' ')} (epoch {best.get('epoch')}) | "
                     f"{figure(best.get('val'))} | {figure(test.get('clip_accuracy'))} | "
                     f"{figure(test.get('sentence_iou'))} |")
    return lines


def _confidence_lines(metrics: dict) -> list[str]:
    """The confidence outputs, and how the run recalibrated them (a model whose clips have posteriors)."""
    fit = (metrics.get("best_clip_accuracy") or {}).get("confidence_temperature")
    if not fit:
        return []
    return ["- `clip_confidence` float32 [B, T_v], `video_confidence` float32 [B]: each clip's posterior probability "
            "of its assignment, and each video's mean of them",
            f"- the confidences are recalibrated: temperature {fit['temperature']:g}, fitted on "
            f"{fit['videos']} validation videos (their negative log-likelihood {fit['nll_before']:.3f} -> "
            f"{fit['nll_after']:.3f}); a video below {fit['video_confidence_floor']:.3f} (the lowest 10% of the "
            "validation videos') is doubtful"]


def model_card(config: dict, metrics: dict, input_widths) -> str:
    data, model, optimizer, trainer, task = (config.get(group) or {} for group in ("data", "model", "optimizer",
                                                                                "trainer", "task"))
    clip_width, text_width = (int(w) for w in input_widths)
    figures = _figures(metrics)
    table = ["| checkpoint | validation figure | test clip accuracy | test sentence IoU |", "|---|---|---|---|",
             *figures] if figures else ["No figures were recorded for this export."]
    synthetic = bool(data) and DataConfig(**data).synthetic_features
    trained_on = [
        f"- data: `{data.get('dataset')}`" + (f", `{data.get('features')}` features" if synthetic else "")
        + (f", synthetic features at difficulty {data.get('difficulty')} (data seed {data.get('seed')})"
           if synthetic else ""),
        f"- optimizer `{optimizer.get('name')}`, normalization `{model.get('normalization')}`, initial learning "
        f"rate {optimizer.get('learning_rate')}, {metrics.get('epochs_trained', trainer.get('epochs'))} epochs, "
        f"seed {trainer.get('seed')}",
    ] if config else ["- not recorded (a model saved without its training config)"]
    if config.get("name") == "zero-shot":
        trained_on = ["- nothing: no training (`tfalign.Aligner.zero_shot`)"]
    return "\n".join([
        f"# Model card: tfalign `{config.get('name', 'aligner')}`",
        "",
        f"{config.get('description', '')}",
        "",
        "## Trained on",
        *trained_on,
        f"- decoding: `{metrics.get('decoding') or task.get('decoding') or trainer.get('decoding')}` "
        "(serving_default)",
        "",
        "## Inputs (signature `serving_default`; `align_greedy` and `align_exact` take the same)",
        f"- `clip_features` float32 [B, T_v, {clip_width}]: the clips' features, natural order, zero-padded",
        f"- `text_features` float32 [B, T_s, {text_width}]: the texts' features, natural order, zero-padded",
        "- `clip_lengths`, `text_lengths` int32 [B]: the true lengths (>= 1) of each row",
        "",
        "## Outputs",
        "- `clip_to_text` int32 [B, T_v]: the text index of each clip, -1 = unmatched (padding: -1)",
        f"- `actions` int32 [B, T_v + T_s]: the action sequence: {ACTIONS}",
        "- `num_actions` int32 [B]: how many of `actions` are valid",
        *_confidence_lines(metrics),
        "",
        "## Figures (fractions in [0, 1], averaged over videos)",
        *table,
        *(["", f"**Where it stands:** {metrics['standing']['line']}."] if metrics.get("standing") else []),
        "",
        "## Limits",
        f"- The features must come from the same encoders (and projection) as the training data: widths "
        f"{clip_width} and {text_width}; other widths are refused, other encoders of the same width give "
        "meaningless alignments.",
        "- The alignment is monotone: clips and texts are taken in order, each clip goes to at most one text.",
        "- Trained on synthetic features: the figures say how well it learns the YMS alignment structure, not how "
        "it does on real videos." if synthetic else
        "- Figures hold for data like the training data; check a sample of your own videos before relying on it.",
        "",
    ])


def export_assets(config: dict, metrics: dict, input_widths, feature_extractors: dict | None = None) -> dict[str, str]:
    """File name -> text, for ``export_saved_model(..., assets=...)``; the feature
    extractors default to those recorded with the training data (a prepared folder)."""
    if feature_extractors is None:
        recorded = extractors_of_dataset(str((config.get("data") or {}).get("dataset", "")))
        feature_extractors = recorded.to_dict() if recorded else None
    assets = {"config.json": dumps_strict(config), "metrics.json": dumps_strict(metrics),
              "MODEL_CARD.md": model_card(config, metrics, input_widths)}
    if feature_extractors:
        assets[EXTRACTORS_FILE] = dumps_strict(feature_extractors)
    return assets
