"""The model card says what the config says, wherever the config keeps it."""

from tfalign.experiments import get_experiment
from tfalign.serving.model_card import model_card


def test_the_card_names_the_decoding_the_task_chose():
    config = get_experiment("tfalign_rp_sbn").to_dict()
    assert "decoding" not in config["trainer"] and config["task"]["decoding"] == "auto"
    assert "- decoding: `auto` (serving_default)" in model_card(config, {}, (300, 300))
    assert "- decoding: `exact` (serving_default)" in model_card(config, {"decoding": "exact"}, (300, 300))
    old = {**config, "task": {}, "trainer": {**config["trainer"], "decoding": "greedy"}}  # before the move
    assert "- decoding: `greedy` (serving_default)" in model_card(old, {}, (300, 300))


def test_the_card_says_how_the_confidences_were_recalibrated():
    config = get_experiment("tfalign_rp_sbn").to_dict()
    fit = {"temperature": 0.3162, "nll_before": 0.61, "nll_after": 0.42, "videos": 12, "video_confidence_floor": 0.55}
    card = model_card(config, {"best_clip_accuracy": {"epoch": 3, "confidence_temperature": fit}}, (300, 300))
    assert "temperature 0.3162, fitted on 12 validation videos (their negative log-likelihood 0.610 -> 0.420)" in card
    assert "a video below 0.550" in card and "`video_confidence` float32 [B]" in card
    assert "video_confidence" not in model_card(config, {}, (300, 300))  # a run without them says nothing
