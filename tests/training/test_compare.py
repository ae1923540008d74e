"""python -m tfalign.compare: two tiny experiments over two seeds, the table,
the index, the plot, resuming, and the TensorBoard logs the runs leave."""

import csv
import glob
import json

import pytest

from tfalign import compare

pytestmark = pytest.mark.large  # trains eight tiny runs, each in its own process

TINY = ["--dataset", "synthetic", "--batch-size", "8", "--max-steps-per-epoch", "2"]
EXPERIMENTS = ["--experiments", "rp_lars_sbn,rp_adam_2ln", "--seeds", "0,1"]


def read_csv(path):
    with open(path) as file:
        return list(csv.DictReader(file))


def tags(logdir):
    from tensorboard.backend.event_processing import event_accumulator

    accumulator = event_accumulator.EventAccumulator(str(logdir), size_guidance={"tensors": 0, "images": 0})
    accumulator.Reload()
    return accumulator


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    out = tmp_path_factory.mktemp("compare") / "runs"
    code = compare.main([*EXPERIMENTS, "--epochs", "1", "--output-dir", str(out), *TINY])
    return out, code


def test_table_index_and_plot(compared, capfd):
    out, code = compared
    assert code == 0
    results = read_csv(out / "results.csv")
    assert [(r["experiment"], r["seed"]) for r in results] == [
        ("rp_lars_sbn", "0"), ("rp_adam_2ln", "0"), ("rp_lars_sbn", "1"), ("rp_adam_2ln", "1")]
    assert all(r["status"] == "finished" and 0 <= float(r["test_clip_accuracy"]) <= 1 for r in results)
    # Readable folders: the experiment, the changed options (seed), a hash; --epochs is not in them.
    folders = {r["folder"] for r in results}
    assert {f.split("-")[0] for f in folders} == {"rp_lars_sbn", "rp_adam_2ln"}
    assert sum("_seed1_" in f for f in folders) == 2
    assert all("batch8" in f and "synthetic" in f and "steps2" in f for f in folders)
    index = {r["folder"]: r for r in read_csv(out / "index.csv")}
    assert set(index) == folders
    assert all(r["status"] == "finished" and r["epochs_done"] == "1" for r in index.values())
    seed1 = next(r for f, r in index.items() if f.startswith("rp_lars_sbn") and "seed1" in f)
    assert "seed=1" in seed1["overrides"] and "data.dataset=synthetic" in seed1["overrides"]
    assert "max_steps_per_epoch=2" in seed1["overrides"]
    # The table: per experiment, mean ± spread over the two seeds, as the runs' own figures give them.
    table = (out / "results.md").read_text()
    row = next(line for line in table.splitlines() if line.startswith("| `rp_lars_sbn`"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == "2/2"
    figures = [float(r["test_clip_accuracy"]) * 100 for r in results if r["experiment"] == "rp_lars_sbn"]
    import numpy as np

    assert cells[2] == f"{np.mean(figures):.1f} ± {np.std(figures, ddof=1):.1f}"
    assert (out / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_second_call_skips_finished_runs_and_more_epochs_train_them_on(compared, capfd):
    out, _ = compared
    capfd.readouterr()
    assert compare.main([*EXPERIMENTS, "--epochs", "1", "--output-dir", str(out), *TINY]) == 0
    said = capfd.readouterr().out
    assert "4 of 4 runs already finished: skipped" in said and "run 1/" not in said
    # A killed run (its process gone, its last epoch saved) is resumed, not restarted.
    killed = next(out.glob("rp_adam_2ln-*seed1*"))
    state = json.loads((killed / "state.json").read_text())
    state["finished"] = False
    (killed / "state.json").write_text(json.dumps(state))
    (killed / "metrics.json").unlink()
    (killed / ".running").write_text("999999999")  # a pid that is not running
    assert compare.main(["--experiments", "rp_adam_2ln", "--seeds", "1", "--epochs", "1", "--output-dir", str(out),
                         *TINY]) == 0
    said = capfd.readouterr().out
    assert "run 1/1: rp_adam_2ln seed 1 (resuming" in said and f"resuming {killed} after epoch 1" in said
    assert (killed / "metrics.json").exists() and not (killed / ".running").exists()
    # --epochs 2: the same folders, trained on from epoch 1.
    assert compare.main(["--experiments", "rp_lars_sbn", "--seeds", "0", "--epochs", "2", "--output-dir", str(out),
                         *TINY]) == 0
    said = capfd.readouterr().out
    assert "training on from epoch 1 to 2" in said
    index = {r["folder"]: r for r in read_csv(out / "index.csv")}
    assert len(index) == 4
    run = next(r for f, r in index.items() if f.startswith("rp_lars_sbn") and "seed" not in f)
    assert run["epochs_done"] == "2" and run["status"] == "finished"


def test_report_only_trains_nothing_and_bad_lists_are_one_line(compared, capfd):
    out, _ = compared
    capfd.readouterr()
    assert compare.main([*EXPERIMENTS, "--epochs", "1", "--output-dir", str(out), "--report-only", *TINY]) == 0
    assert "run 1/" not in capfd.readouterr().out
    from tfalign.errors import UserError

    for argv, words in ((["--experiments", "rp_lars_sbn,nope"], "unknown nope"),
                        (["--experiments", "rp_lars_sbn", "--seeds", "0,x"], "--seeds"),
                        (["--experiments", "rp_lars_sbn", "--seeds", "1,1"], "twice"),
                        (["--experiments", "rp_lars_sbn", "--seeds", "5", "--report-only"], "none of the 1 runs")):
        with pytest.raises(UserError, match=words):
            compare.main([*argv, "--output-dir", str(out)])


def test_the_runs_log_what_tensorboard_compares(compared):
    out, _ = compared
    sbn, ln = (next(p for p in out.glob(f"{name}-*") if "seed" not in p.name) for name in ("rp_lars_sbn",
                                                                                           "rp_adam_2ln"))
    for run in (sbn, ln):
        root = tags(run / "tensorboard")
        assert {"_hparams_/experiment", "_hparams_/session_start_info", "custom_scalars__config__",
                "test/clip_accuracy", "best/val_clip_accuracy"} <= set(root.Tags()["tensors"])
        train = set(tags(run / "tensorboard" / "train").Tags()["tensors"])
        assert {"loss", "step_accuracy", "update_to_weight_spread/max_over_min"} <= train
        assert any(t.startswith("update_to_weight/video_stack/") for t in train)
        val = tags(run / "tensorboard" / "val")
        assert {"loss", "step_accuracy", "clip_accuracy", "features/before_norm/video_mean",
                "features/before_norm/text_mean"} <= set(val.Tags()["tensors"])
        assert val.Tags()["tensors"].count("features/video_vs_text") == 1
    # Only a run with a normalization layer after its stacks (SBN) logs the "after" series.
    assert "features/after_norm/video_std" in tags(sbn / "tensorboard" / "val").Tags()["tensors"]
    assert not [t for t in tags(ln / "tensorboard" / "val").Tags()["tensors"] if "after_norm" in t]
    # SBN's beta starts at zero: marked, and left out of the spread.
    assert "update_to_weight/normalization/video_stack_sbn/beta (starts at zero)" in \
        tags(sbn / "tensorboard" / "train").Tags()["tensors"]
    assert len(glob.glob(str(sbn / "tensorboard" / "events.out.tfevents.*"))) >= 1
