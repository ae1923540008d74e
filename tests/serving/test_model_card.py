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
