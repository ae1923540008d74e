"""A benchmark reuses a run folder only when its config and the code are the same
(benchmarks/quality.py ``run_one``): otherwise it trains it again, or refuses."""

import json
import pathlib
import sys

import pytest

import tfalign

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import quality  # noqa: E402

pytestmark = pytest.mark.large  # two short training runs


def test_a_run_is_reused_only_with_the_same_config_and_code(tmp_path, monkeypatch):
    config = tfalign.configure("rp_adam_sbn", {"data.dataset": "synthetic", "data.train_videos": 2}, epochs=1,
                              batch_size=4)
    run_dir, lines = tmp_path / "run", []
    first = quality.run_one(config, run_dir, lines.append)
    assert json.loads((run_dir / quality.IDENTITY_FILE).read_text()) == quality.run_identity(config)
    assert quality.run_one(config, run_dir, lines.append) == first  # reused, not trained again
    assert not any("training it again" in line for line in lines)

    changed = config.override({"optimizer.learning_rate": 3e-4})
    with pytest.raises(SystemExit, match="trained with another config than this one"):
        quality.run_one(changed, run_dir, lines.append, refuse_stale=True)
    monkeypatch.setattr(quality, "code_hash", lambda: "another-code")
    with pytest.raises(SystemExit, match="trained with another code than this one"):
        quality.run_one(config, run_dir, lines.append, refuse_stale=True)
    monkeypatch.undo()

    again = quality.run_one(changed, run_dir, lines.append)
    assert again["epochs"] == 1
    assert any("trained with another config: training it again" in line for line in lines)
    assert json.loads((run_dir / quality.IDENTITY_FILE).read_text()) == quality.run_identity(changed)
    assert json.loads((run_dir / "config.json").read_text())["optimizer"]["learning_rate"] == 3e-4
