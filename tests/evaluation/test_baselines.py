import itertools
import json

import numpy as np
import pytest

from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import command_here

from tfalign.data.datasets import DataConfig, load_episodes
from tfalign.evaluation.baselines import dtw_with_drop, minimum_distance, run_baseline


def brute_force_dtw(similarity, drop):
    """Every monotone assignment of clips to texts or 'dropped'."""
    num_clips, num_texts = similarity.shape
    best_cost = np.inf
    for assignment in itertools.product(range(-1, num_texts), repeat=num_clips):
        matched = [a for a in assignment if a >= 0]
        if any(b < a for a, b in zip(matched, matched[1:])):
            continue
        cost = sum(drop if a < 0 else 1 - similarity[i, a] for i, a in enumerate(assignment))
        best_cost = min(best_cost, cost)
    return best_cost


@pytest.mark.parametrize("seed", range(6))
def test_dtw_is_optimal_on_small_problems(seed):
    rng = np.random.default_rng(seed)
    sim = rng.uniform(-1, 1, size=(5, 3))
    drop = 0.8
    assignment = dtw_with_drop(sim, drop)
    cost = sum(drop if a < 0 else 1 - sim[i, a] for i, a in enumerate(assignment))
    matched = assignment[assignment >= 0]
    assert np.all(np.diff(matched) >= 0)
    assert cost == pytest.approx(brute_force_dtw(sim, drop))


def test_minimum_distance_threshold():
    sim = np.array([[0.9, 0.1], [0.2, 0.3], [0.1, 0.95]])
    assert minimum_distance(sim, 0.5).tolist() == [0, -1, 1]


def test_baselines_beat_chance_on_easy_synthetic_data():
    config = DataConfig(dataset="synthetic", features="rp", difficulty=0.3)
    train, val, test = (load_episodes(config, s)[:8] for s in ("train", "val", "test"))
    md = run_baseline("md", train, val, test)
    dtw = run_baseline("dtw", train, val, test)
    assert dtw["clip_accuracy"] > md["clip_accuracy"] > 0.5
    assert 0 <= dtw["sentence_iou"] <= 1 and dtw["videos"] == 8


def test_evaluate_command(tmp_path, capfd):
    out = tmp_path / "dtw.json"
    done = command_here(capfd, "tfalign.evaluate", "--baseline", "dtw", "--dataset", "synthetic", "--split", "test",
                        "--train-videos", "8", "--json", str(out))  # DTW fitted on 8 videos: a quicker test
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    assert result["videos"] == 15 and 0 <= result["clip_accuracy"] <= 1 and 0 <= result["sentence_iou"] <= 1
    assert "clip accuracy" in done.stdout
    bad = command_here(capfd, "tfalign.evaluate", "--baseline", "md", "--dataset", "tfrecord:/nope")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines()[-1].startswith("error: /nope: no such episode folder")


@settings(max_examples=30)
@given(st.integers(1, 300), st.integers(1, 100))
def test_even_spread_is_monotone_and_uses_every_text_it_can(num_clips, num_texts):
    from tfalign.evaluation.baselines import even_spread

    spread = even_spread(num_clips, num_texts)
    assert spread.shape == (num_clips,) and spread[0] == 0 and spread.max() < num_texts
    assert np.all(np.diff(spread) >= 0)
    assert len(np.unique(spread)) == min(num_clips, num_texts)


def test_trivial_references_on_yms_synthetic():
    """All-unmatched scores the share of unmatched time (0.151 on test, docs/task.md)."""
    test = load_episodes(DataConfig(), "test")
    unmatched = run_baseline("unmatched", None, None, test)
    assert unmatched["clip_accuracy"] == pytest.approx(0.151, abs=0.002)
    assert unmatched["sentence_iou"] == 0.0
    even = run_baseline("even", None, None, test)
    assert 0.0 < even["clip_accuracy"] < 0.7
