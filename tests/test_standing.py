"""A run that ends at the level of calling every clip unmatched says so, and names
the recipe that does better on its data (the console, metrics.json, the model card)."""

from tfalign.data.datasets import DataConfig, load_episodes
from tfalign.evaluation.baselines import run_baseline
from tfalign.experiments import get_experiment
from tfalign.run import where_it_stands
from tfalign.serving.model_card import model_card
from tfalign.training.task import StageData

DATA = DataConfig(train_videos=8)


def summary_with(clip_accuracy):
    return {"decoding": "greedy", "best_clip_accuracy": {"epoch": 2, "val": 0.1, "test": {
        "clip_accuracy": clip_accuracy, "sentence_iou": 0.0, "videos": 15}}}


def test_a_run_at_the_all_unmatched_level_says_where_it_stands():
    data = StageData(*(load_episodes(DATA, split) for split in ("train", "val", "test")))
    unmatched = run_baseline("unmatched", [], [], data.test)["clip_accuracy"]  # every clip called unmatched
    paper = get_experiment("rp_adam_warmup_sbn")
    standing = where_it_stands(paper, summary_with(unmatched + 0.005), data)
    assert standing["all_unmatched"] == unmatched and standing["recipe"] == "tfalign_rp_sbn"
    assert standing["recipe_start"] > unmatched + 0.2  # DTW on the same 8 videos
    assert "ends at the level of calling every clip unmatched" in standing["line"]
    assert "python -m tfalign.train --experiment tfalign_rp_sbn" in standing["line"]
    assert where_it_stands(paper, summary_with(unmatched + 0.05), data) is None  # clearly above: silent
    card = model_card(paper.to_dict(), {**summary_with(unmatched), "standing": standing}, (300, 300))
    assert "**Where it stands:** this run ends at the level of calling every clip unmatched" in card
    assert "Where it stands" not in model_card(paper.to_dict(), summary_with(0.8), (300, 300))
