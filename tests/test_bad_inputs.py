"""Bad inputs against the command-line tools: each ends with a non-zero exit,
one short line naming the problem, no traceback and no file left behind.

The commands run in this process through ``tfalign.cli.run`` (what ``python
-m`` and the console scripts run), so a case is a fraction of a second; the
classes of the reliability issue each have cases: options, input files,
outputs, one-line errors, pipelines, the serving signature, killed processes.
"""

import importlib
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tfalign import cli
from tfalign.data import records
from tfalign.data.datasets import DataConfig, load_episodes
from tfalign.experiments import EXPERIMENTS

pytestmark = pytest.mark.large  # subprocesses, servers or training runs

# -------------------------------------------------------------------- harness


def run_command(module: str, argv, capfd):
    main = importlib.import_module(module).main
    try:
        code = cli.run(main, [str(a) for a in argv])
    except SystemExit as exit_:  # argparse's own exit
        code = exit_.code
    out, err = capfd.readouterr()
    return code, out, err


def files_under(folder: pathlib.Path) -> set:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def assert_one_line_error(code, err, words):
    lines = [line for line in err.splitlines() if line.strip()]
    assert code not in (0, None), err
    assert "Traceback" not in err
    assert len(lines) == 1, err
    assert lines[0].startswith("error:"), lines[0]
    for word in words:
        assert word in lines[0], (word, lines[0])


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    """Inputs the cases break: episode folders, a finished run, a SavedModel."""
    root = tmp_path_factory.mktemp("fixtures")
    synthetic = DataConfig(dataset="synthetic")
    for split in ("train", "val", "test"):
        records.write_tfrecords(load_episodes(synthetic, split)[:4], root / "episodes" / split, num_shards=2)
    records.write_npz(load_episodes(synthetic, "val")[:2], root / "episodes.npz")
    from tfalign.train import main as train_main

    assert cli.run(train_main, ["--experiment", "rp_adam_sbn", "--dataset", "synthetic", "--epochs", "1",
                                "--max-steps-per-epoch", "1", "--batch-size", "4", "--no-export",
                                "--output-dir", str(root / "run")]) == 0
    from tfalign.experiments import get_experiment
    from tfalign.serving.saved_model import export_saved_model
    from tfalign.model import build_model

    export_saved_model(build_model(get_experiment("rp_lars_sbn").model), root / "model")
    episode = load_episodes(DataConfig(), "test")[0]
    np.save(root / "clips.npy", episode.clip_features)
    np.save(root / "texts.npy", episode.text_features)
    np.savetxt(root / "times.csv", episode.clip_times, delimiter=",")
    return {"root": root, "episode": episode}


def copy_tree(source, destination):
    import shutil

    shutil.copytree(source, destination)
    return destination


# ---------------------------------------------------------------------- cases
# Each: (module, argv builder (tmp, fx) -> argv, words of the error line).

TRAIN = "tfalign.train"
QUICK = ["--experiment", "rp_adam_sbn", "--dry-run"]


def _manifest_edit(change):
    def build(tmp, fx):
        folder = copy_tree(fx["root"] / "episodes", tmp / "in" / "episodes")
        change(folder / "train")
        return [*QUICK[:2], "--dataset", f"tfrecord:{folder}", "--epochs", "1", "--output-dir", tmp / "out" / "run"]
    return build


def _edit_json(path, **changes):
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def _first_shard(folder):
    return sorted(folder.glob("*.tfrecord"))[0]


def _run_copy(change):
    def build(tmp, fx):
        run = copy_tree(fx["root"] / "run", tmp / "in" / "run")
        change(run)
        return ["--run", run, "--split", "val"]
    return build


def _align(change=None, extra=()):
    def build(tmp, fx):
        (tmp / "in").mkdir(exist_ok=True)
        inputs = {"clips": fx["root"] / "clips.npy", "texts": fx["root"] / "texts.npy"}
        if change:
            inputs.update(change(tmp / "in", fx) or {})
        return ["--model", inputs.get("model", fx["root"] / "model"), "--clips", inputs["clips"], "--texts",
                inputs["texts"], "--out", inputs.get("out", tmp / "out" / "alignment.json"),
                *[v(tmp, fx) if callable(v) else v for v in extra]]
    return build


def _array(name, value):
    def change(folder, fx):
        np.save(folder / f"{name}.npy", value(fx))
        return {name: folder / f"{name}.npy"}
    return change


def _text_file(option, text):
    def build(tmp, fx):
        (tmp / "in").mkdir(exist_ok=True)
        path = tmp / "in" / f"{option}.txt"
        path.write_text(text(fx) if callable(text) else text)
        return [f"--{option}", path]
    return build


def _times(text):
    return _align(extra=[lambda tmp, fx: "--clip-times",
                         lambda tmp, fx: _text_file("clip-times", text)(tmp, fx)[1]])


CASES = {
    # ---- options: ranges, types, names, checked before anything is written
    "epochs zero": (TRAIN, lambda t, f: [*QUICK, "--epochs", "0"], ["--epochs", "an integer >= 1"]),
    "lr negative": (TRAIN, lambda t, f: [*QUICK, "--lr", "-1"], ["--lr", "> 0"]),
    "lr nan": (TRAIN, lambda t, f: [*QUICK, "--lr", "nan"], ["--lr"]),
    "lr text": (TRAIN, lambda t, f: [*QUICK, "--lr", "fast"], ["--lr", "'fast'"]),
    "batch size zero": (TRAIN, lambda t, f: [*QUICK, "--batch-size", "0"], ["--batch-size"]),
    "label smoothing above one": (TRAIN, lambda t, f: [*QUICK, "--label-smoothing", "1.5"], ["--label-smoothing"]),
    "difficulty above one": (TRAIN, lambda t, f: [*QUICK, "--difficulty", "2"], ["--difficulty", "<= 1"]),
    "data seed negative": (TRAIN, lambda t, f: [*QUICK, "--data-seed", "-1"], ["--data-seed"]),
    "seed not an integer": (TRAIN, lambda t, f: [*QUICK, "--seed", "1.5"], ["--seed"]),
    "cpu replicas negative": (TRAIN, lambda t, f: [*QUICK, "--cpu-replicas", "-2"], ["--cpu-replicas"]),
    "collective timeout zero": (TRAIN, lambda t, f: [*QUICK, "--collective-timeout", "0"], ["--collective-timeout"]),
    "max steps zero": (TRAIN, lambda t, f: [*QUICK, "--max-steps-per-epoch", "0"], ["--max-steps-per-epoch"]),
    "set out of range": (TRAIN, lambda t, f: [*QUICK, "--set", "plateau_factor=2"], ["plateau_factor"]),
    "set warm-up negative": (TRAIN, lambda t, f: [*QUICK, "--set", "warmup_epochs=-1"], ["warmup_epochs"]),
    "set wrong type": (TRAIN, lambda t, f: [*QUICK, "--set", "epochs=many"], ["--set epochs", "'many'"]),
    "set unknown field": (TRAIN, lambda t, f: [*QUICK, "--set", "nope=1"], ["--set nope", "unknown field"]),
    "set data field": (TRAIN, lambda t, f: [*QUICK, "--set", "data.difficulty=1.5"], ["data.difficulty"]),
    "set without value": (TRAIN, lambda t, f: [*QUICK, "--set", "epochs"], ["FIELD=VALUE"]),
    "unknown experiment": (TRAIN, lambda t, f: ["--experiment", "nope", "--dry-run"], ["unknown experiment 'nope'"]),
    "unknown option": (TRAIN, lambda t, f: [*QUICK, "--epoch-count", "3"], ["unrecognized arguments"]),
    "bad choice": (TRAIN, lambda t, f: [*QUICK, "--optimizer", "sgd"], ["--optimizer", "invalid choice"]),
    "no experiment": (TRAIN, lambda t, f: ["--epochs", "3"], ["--experiment is required"]),
    "pretraining option elsewhere": (TRAIN, lambda t, f: [*QUICK, "--pretrain-epochs", "3"], ["our_pretraining"]),
    "unknown dataset": (TRAIN, lambda t, f: [*QUICK, "--dataset", "imagenet"], ["data.dataset", "'imagenet'"]),
    "resume with nothing to resume": (
        TRAIN, lambda t, f: ["--experiment", "rp_adam_sbn", "--resume", "--output-dir", t / "out" / "fresh"],
        ["--resume", "no run to resume"]),
    "multiworker without TF_CONFIG": (
        TRAIN, lambda t, f: ["--experiment", "rp_adam_sbn", "--strategy", "multiworker", "--output-dir", t / "out"],
        ["TF_CONFIG"]),
    "evaluate bad split": ("tfalign.evaluate", lambda t, f: ["--baseline", "dtw", "--split", "dev"], ["--split"]),
    "evaluate difficulty": ("tfalign.evaluate", lambda t, f: ["--baseline", "md", "--difficulty", "-0.5"],
                            ["--difficulty"]),
    "export accuracy above one": ("tfalign.export", lambda t, f: ["--run", f["root"] / "run", "--min-clip-accuracy",
                                                                  "2"], ["--min-clip-accuracy"]),
    "export negative videos": ("tfalign.export", lambda t, f: ["--run", f["root"] / "run", "--validation-videos",
                                                               "-1"], ["--validation-videos"]),
    # ---- input files: missing, truncated, corrupt, wrongly typed or shaped
    "tfrecord folder missing": (TRAIN, lambda t, f: [*QUICK[:2], "--dataset", f"tfrecord:{t / 'nowhere'}",
                                                     "--output-dir", t / "out" / "run"], ["no such episode folder"]),
    "manifest missing": (TRAIN, _manifest_edit(lambda d: (d / "manifest.json").unlink()), ["no manifest.json"]),
    "manifest corrupt": (TRAIN, _manifest_edit(lambda d: (d / "manifest.json").write_text("{not json")),
                         ["manifest.json", "not valid JSON"]),
    "manifest not an object": (TRAIN, _manifest_edit(lambda d: (d / "manifest.json").write_text("[1, 2]")),
                               ["manifest.json", "JSON object"]),
    "manifest lists a missing shard": (TRAIN, _manifest_edit(lambda d: _first_shard(d).unlink()), ["is missing"]),
    "shard not in the manifest": (TRAIN, _manifest_edit(lambda d: (d / "extra-00000.tfrecord").write_bytes(b"")),
                                  ["extra-00000.tfrecord", "not listed"]),
    "manifest count wrong": (TRAIN, _manifest_edit(lambda d: _edit_json(d / "manifest.json", num_episodes=99)),
                             ["num_episodes", "99"]),
    "manifest width not a number": (TRAIN, _manifest_edit(lambda d: _edit_json(d / "manifest.json", clip_dim="x")),
                                    ["clip_dim"]),
    "shard truncated": (TRAIN, _manifest_edit(lambda d: _first_shard(d).write_bytes(_first_shard(d).read_bytes()[:50])),
                        ["corrupted or truncated"]),
    "shard garbage": (TRAIN, _manifest_edit(lambda d: _first_shard(d).write_bytes(os.urandom(300))),
                      ["corrupted or truncated"]),
    "npz missing": (TRAIN, lambda t, f: [*QUICK[:2], "--dataset", f"npz:{t / 'none.npz'}", "--output-dir", t / "out"],
                    ["none.npz", "no such"]),
    "npz garbage": (TRAIN, lambda t, f: [*QUICK[:2], "--dataset", f"npz:{_garbage(t, 'bad.npz')}",
                                         "--output-dir", t / "out"], ["bad.npz", "not a readable"]),
    "npz truncated": (TRAIN, lambda t, f: [*QUICK[:2], "--dataset", f"npz:{_truncated_npz(t, f)}",
                                           "--output-dir", t / "out"], ["cut.npz"]),
    "npz wrong shape": (TRAIN, lambda t, f: [*QUICK[:2], "--dataset",
                                             f"npz:{_npz_with(t, f, 'clip_features', np.ones(5))}",
                                             "--output-dir", t / "out"], ["clip_features"]),
    "npz strings": (TRAIN, lambda t, f: [*QUICK[:2], "--dataset",
                                         f"npz:{_npz_with(t, f, 'text_features', np.array([['a', 'b']]))}",
                                         "--output-dir", t / "out"], ["text_features", "expected numbers"]),
    "feature widths do not fit": (
        TRAIN, lambda t, f: ["--experiment", "full_adam", "--dataset", f"tfrecord:{f['root'] / 'episodes'}",
                             "--set", "model.clip_dim=2048", "--epochs", "1", "--output-dir", t / "out" / "run"],
        ["model.clip_dim", "2048", "300 wide"]),
    "yms annotations missing": (TRAIN, lambda t, f: [*QUICK[:2], "--dataset", "yms", "--annotation-dir",
                                                     t / "nowhere", "--output-dir", t / "out"], ["is missing"]),
    "yms annotations garbage": (TRAIN, lambda t, f: [*QUICK[:2], "--dataset", "yms", "--annotation-dir",
                                                     _bad_yms(t), "--output-dir", t / "out"],
                                ["clip_segmentation"]),
    "run folder missing": ("tfalign.evaluate", lambda t, f: ["--run", t / "nowhere"], ["no such run folder"]),
    "run state corrupt": ("tfalign.evaluate", _run_copy(lambda r: (r / "state.json").write_text("{")),
                          ["state.json", "not valid JSON"]),
    "run config wrong type": ("tfalign.evaluate", _run_copy(lambda r: _edit_json(
        r / "config.json", trainer={**json.loads((r / "config.json").read_text())["trainer"], "epochs": "x"})),
        ["trainer.epochs", "integer"]),
    "run config unknown field": ("tfalign.evaluate", _run_copy(lambda r: _edit_json(r / "config.json", color=1)),
                                 ["unknown field", "color"]),
    "run checkpoint deleted": ("tfalign.evaluate", _run_copy(
        lambda r: [p.unlink() for pattern in ("*.index", "*.weights.h5") for p in (r / "checkpoints").rglob(pattern)]),
        ["checkpoint", "is missing"]),
    "run checkpoint truncated": ("tfalign.evaluate", _run_copy(
        lambda r: [p.write_bytes(p.read_bytes()[:100]) for pattern in ("*.data-*", "*.weights.h5")
                   for p in (r / "checkpoints").rglob(pattern)]),
        ["cannot be read"]),
    "export of a missing run": ("tfalign.export", lambda t, f: ["--run", t / "nowhere"], ["no such run folder"]),
    "clips missing": ("tfalign.align", _align(lambda d, f: {"clips": d / "none.npy"}), ["--clips", "no such file"]),
    "clips not npy": ("tfalign.align", _align(lambda d, f: {"clips": _garbage(d, "clips.npy")}),
                      ["--clips", "cannot read"]),
    "clips one-dimensional": ("tfalign.align", _align(_array("clips", lambda f: np.ones(5))), ["--clips", "[N, D]"]),
    "clips nan": ("tfalign.align", _align(_array("clips", lambda f: np.full((4, 300), np.nan))), ["--clips", "NaN"]),
    "clips strings": ("tfalign.align", _align(_array("clips", lambda f: np.array([["a"]]))), ["--clips", "numbers"]),
    "clips wrong width": ("tfalign.align", _align(_array("clips", lambda f: np.ones((4, 12)))),
                          ["--clips", "width 300"]),
    "texts wrong width": ("tfalign.align", _align(_array("texts", lambda f: np.ones((4, 7)))),
                          ["--texts", "width 300"]),
    "clip times missing": ("tfalign.align", _align(extra=["--clip-times", "/nowhere/times.csv"]),
                           ["--clip-times", "no such file"]),
    "clip times not numbers": ("tfalign.align", _times("a,b\n"), ["--clip-times"]),
    "clip times wrong count": ("tfalign.align", _times("0,1\n1,2\n"), ["--clip-times", "one per clip"]),
    "clip times empty": ("tfalign.align", _times(""), ["--clip-times", "one per clip"]),  # no numpy warning line
    "clip times end before start": ("tfalign.align", _times(lambda f: _times_text(f, lambda t: t.__setitem__(
        (3, 1), t[3, 0] - 1))), ["--clip-times", "line 4", "end must be after"]),
    "clip times overlap": ("tfalign.align", _times(lambda f: _times_text(f, lambda t: t.__setitem__(
        (2, 1), t[3, 1]))), ["--clip-times", "overlaps"]),
    "clip times decrease": ("tfalign.align", _times(lambda f: _times_text(f, lambda t: t.__setitem__(
        slice(None), t[::-1]))), ["--clip-times", "increasing"]),
    "clip times infinite": ("tfalign.align", _times(lambda f: _times_text(f, lambda t: t.__setitem__(
        (5, 1), np.inf))), ["--clip-times", "not finite"]),
    "texts file count": ("tfalign.align", _align(extra=[lambda t, f: "--texts-file",
                                                        lambda t, f: _text_file("texts", "one\ntwo\n")(t, f)[1]]),
                         ["--texts-file"]),
    "ground truth out of range": ("tfalign.align", _align(extra=[
        lambda t, f: "--ground-truth",
        lambda t, f: _text_file("truth", lambda fx: "999\n" * fx["episode"].num_clips)(t, f)[1]]),
        ["--ground-truth"]),
    "model not a SavedModel": ("tfalign.align", _align(lambda d, f: {"model": d}), ["neither a SavedModel"]),
    "model corrupt": ("tfalign.align", _align(lambda d, f: {"model": _corrupt_model(d, f)}),
                      ["not a loadable SavedModel"]),
    "unknown signature": ("tfalign.align", _align(extra=["--signature", "nope"]), ["--signature", "'nope'"]),
    # ---- outputs: unwritable places leave nothing behind
    "out is a folder": ("tfalign.align", _align(lambda d, f: {"out": d}), ["--out", "is a folder"]),
    "out under a file": ("tfalign.align", _align(lambda d, f: {"out": _garbage(d, "file") / "a.json"}),
                         ["--out", "is a file, not a folder"]),
    "plot unwritable": ("tfalign.align", _align(extra=["--plot", "/proc/tfalign-test/timeline.png"]), ["/proc"]),
    "evaluate json is a folder": ("tfalign.evaluate", lambda t, f: ["--baseline", "unmatched", "--json",
                                                                    _folder(t / "in" / "dir")], ["Is a directory"]),
    "output dir under a file": (TRAIN, lambda t, f: ["--experiment", "rp_adam_sbn", "--output-dir",
                                                     _garbage(t / "in", "file") / "run"], ["--output-dir"]),
    "output dir unwritable": (TRAIN, lambda t, f: ["--experiment", "rp_adam_sbn", "--output-dir",
                                                   "/proc/tfalign-test/run"], ["--output-dir", "cannot be written"]),
    "export base dir is a file": ("tfalign.export", lambda t, f: ["--run", f["root"] / "run", "--base-dir",
                                                                  _garbage(t / "in", "base")], ["base"]),
    "server scheme": ("tfalign.align", lambda t, f: ["--server", "ftp://host", "--clips", f["root"] / "clips.npy",
                                                     "--texts", f["root"] / "texts.npy", "--out", t / "out.json"],
                      ["--server"]),
}


def _garbage(folder, name):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(b"\x93NUMPY garbage \x00\xff" * 10)
    return folder / name


def _folder(path):
    path.mkdir(parents=True, exist_ok=True)
    return path


def _truncated_npz(tmp, fx):
    (tmp / "in").mkdir(exist_ok=True)
    data = (fx["root"] / "episodes.npz").read_bytes()
    (tmp / "in" / "cut.npz").write_bytes(data[: len(data) // 2])
    return tmp / "in" / "cut.npz"


def _npz_with(tmp, fx, field, value):
    (tmp / "in").mkdir(exist_ok=True)
    with np.load(fx["root"] / "episodes.npz") as data:
        arrays = {k: data[k] for k in data.files}
    arrays[f"0/{field}"] = value
    np.savez(tmp / "in" / "odd.npz", **arrays)
    return tmp / "in" / "odd.npz"


def _bad_yms(tmp):
    folder = tmp / "in" / "yms"
    folder.mkdir(parents=True)
    (folder / "clip_segmentation.txt").write_text("this is not a clip line\n")
    (folder / "annotations_phrases.txt").write_text("")
    for name in ("training_split.txt", "val_split.txt", "test_split.txt"):
        (folder / name).write_text("")
    return folder


def _times_text(fx, change):
    times = np.array(fx["episode"].clip_times, np.float64)
    change(times)
    return "\n".join(f"{a},{b}" for a, b in times) + "\n"


def _corrupt_model(folder, fx):
    model = copy_tree(fx["root"] / "model", folder / "model")
    (model / "saved_model.pb").write_bytes(b"\x00garbage" * 50)
    return model


def check_case(case, fx, tmp_path, capfd):
    module, build, words = case
    if module.startswith("pipelines"):
        pytest.importorskip("apache_beam")
    argv = build(tmp_path, fx)
    before = files_under(tmp_path)
    code, out, err = run_command(module, argv, capfd)
    assert_one_line_error(code, err, words)
    assert files_under(tmp_path) == before, "files were left behind"
    assert not pathlib.Path("/proc/tfalign-test").exists()


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_bad_input_is_one_line_and_leaves_nothing(name, fx, tmp_path, capfd):
    check_case(CASES[name], fx, tmp_path, capfd)


# ------------------------------------------------------- beyond the one-liners

def test_the_installed_console_scripts_give_one_line_errors():
    script = pathlib.Path(sys.executable).parent / "tfalign-train"
    if not script.exists():
        pytest.skip("the console scripts are not installed here")
    text = script.read_text()
    if "train_script" not in text:
        pytest.skip("installed before the console scripts went through tfalign.cli.run (reinstall)")
    done = subprocess.run([str(script), "--experiment", "nope", "--dry-run"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == ["error: unknown experiment 'nope'; `python -m tfalign.train --list` "
                                                f"shows the {len(EXPERIMENTS)}"]


def test_a_bug_is_not_disguised_as_a_user_error():
    def buggy(argv):
        return {}["missing"]

    with pytest.raises(KeyError):
        cli.run(buggy, [])


def test_a_run_whose_best_epochs_cross_from_1_to_12_keeps_its_best_checkpoint(tmp_path):
    """Old best checkpoints were removed by the glob ckpt-1*, which also matches ckpt-12;
    one resume checkpoint is kept; the two best of one epoch share their file."""
    from tfalign.experiments import get_experiment
    from tfalign.training.loop import Trainer

    trainer = Trainer(get_experiment("rp_adam_sbn").override({"data.dataset": "synthetic"}), tmp_path,
                      log=lambda *_: None)
    trainer.prepare_run_dir(resume=False)
    for epoch in range(12):
        value = {0: 0.5, 11: 0.6}.get(epoch, 0.1)  # best at epoch 1, then at epoch 12
        logs = {"loss": 1.0, "val_clip_accuracy": value, "val_sentence_iou": value}
        stale = trainer.checkpoints.save_best(epoch, logs)
        trainer.checkpoints.end_epoch(epoch, logs, trainer.plateau.get_state(), stale)
    for metric in ("clip_accuracy", "sentence_iou"):
        path = trainer.state.best[metric].path
        assert path.endswith("epoch-12.weights.h5") and (tmp_path / path).exists()
        assert [p.name for p in (tmp_path / "checkpoints" / f"best_{metric}").iterdir()] == ["epoch-12.weights.h5"]
        trainer.load_best(metric)
    best = [(tmp_path / trainer.state.best[m].path).stat() for m in ("clip_accuracy", "sentence_iou")]
    assert best[0].st_ino == best[1].st_ino  # one file, two names
    assert sorted(p.name for p in (tmp_path / "checkpoints" / "last").iterdir()) == [
        "ckpt-12.data-00000-of-00001", "ckpt-12.index"]


def test_pipelines_reject_malformed_lines_and_refuse_misspelt_flags(tmp_path, capfd):
    pytest.importorskip("apache_beam")
    from pipelines.feature_store import clip_id, text_id, write_shard

    good = {"video_id": "v1", "split": "train",
            "clips": [{"id": clip_id("v1", 0), "start": 0.0, "end": 1.0, "text": text_id("v1", 0)}],
            "texts": [{"id": text_id("v1", 0), "start": 0.0, "end": 1.0, "text": "a"}]}
    lines = [json.dumps(good), "5", "[1, 2]", '"text"', json.dumps({**good, "video_id": "v2", "split": "dev"}),
             json.dumps({**good, "video_id": "v3", "clips": "abc"}),
             json.dumps({**good, "video_id": "v4", "clips": [{"id": 1, "start": "x", "end": 1}]})]
    (tmp_path / "videos.jsonl").write_text("\n".join(lines) + "\n")
    write_shard(tmp_path / "features-00000-of-00001.npz",
                {clip_id("v1", 0): np.ones(300, np.float32), text_id("v1", 0): np.ones(300, np.float32)})
    argv = ["--annotations", f"jsonl:{tmp_path / 'videos.jsonl'}", "--features", str(tmp_path / "features-*.npz"),
            "--out", str(tmp_path / "episodes")]
    code, out, err = run_command("pipelines.prepare", argv, capfd)
    assert code == 0, err
    assert "rejected: 6" in out
    rejected = (tmp_path / "episodes" / "rejected.jsonl").read_text().splitlines()
    reasons = [json.loads(line)["reason"] for line in rejected]
    assert any("expected a JSON object" in r for r in reasons)
    assert any("field 'split'" in r and "'dev'" in r for r in reasons)
    assert any("field 'clips': expected a list" in r for r in reasons)
    assert any("field 'id': expected a string" in r for r in reasons)

    before = files_under(tmp_path)
    code, out, err = run_command("pipelines.prepare", [*argv[:-1], str(tmp_path / "again"), "--runer",
                                                       "DirectRunner"], capfd)
    assert_one_line_error(code, err, ["--runer", "Beam pipeline option"])
    assert files_under(tmp_path) == before


def test_serving_requests_name_the_input_before_reading_shapes(fx):
    from tfalign.serving.client import LocalClient, ServingError

    client = LocalClient(fx["root"] / "model")
    good = {"clip_features": np.ones((1, 3, 300), np.float32), "text_features": np.ones((1, 2, 300), np.float32),
            "clip_lengths": np.array([3], np.int32), "text_lengths": np.array([2], np.int32)}
    assert client.align(good)["clip_to_text"].shape == (1, 3)
    for change, words in [
            ({"clip_features": np.ones((3, 300), np.float32)}, "clip_features: expected rank 3"),
            ({"text_lengths": np.array(2, np.int32)}, "text_lengths: expected rank 1"),
            ({"clip_features": np.ones((0, 3, 300), np.float32), "clip_lengths": np.zeros(0, np.int32)},
             "clip_features: expected a batch of at least one row"),
            ({"clip_features": np.ones((1, 0, 300), np.float32)}, "clip_features: expected at least one element"),
    ]:
        with pytest.raises(ServingError, match=words):
            client.align({**good, **change})
    with pytest.raises(ServingError, match="text_lengths: the request has no such input"):
        client.align({k: v for k, v in good.items() if k != "text_lengths"})


def test_a_killed_push_leaves_nothing_the_next_one_does_not_clean(tmp_path):
    """A candidate of a dead push is removed; the reload child dies with its parent;
    pushes at once get distinct versions; a re-export swaps the folder."""
    from tfalign.files import remove_leftovers

    model_dir = tmp_path / "saved_models" / "m"
    (model_dir / ".candidate-999999-abc" / "model").mkdir(parents=True)
    (model_dir / ".candidate-1-def").mkdir()  # pid 1 is alive: another push's
    assert [p.name for p in remove_leftovers(model_dir, ".candidate-*")] == [".candidate-999999-abc"]
    assert (model_dir / ".candidate-1-def").exists()

    # The reload child: killed with its parent.
    parent = subprocess.Popen([sys.executable, "-c", (
        "import subprocess, sys\n"
        "from tfalign.serving.push import _die_with_parent\n"
        "child = subprocess.Popen(['sleep', '60'], preexec_fn=_die_with_parent)\n"
        "print(child.pid, flush=True)\n"
        "child.wait()\n")], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.time() + 10
    while time.time() < deadline and _alive(child):
        time.sleep(0.05)
    assert not _alive(child), "the reload child outlived its parent"

    # Two pushes at once: the lock gives each its own version.
    script = ("import os, sys, time, pathlib\n"
              "from tfalign.serving.push import _version_lock, next_version\n"
              "d = pathlib.Path(sys.argv[1])\n"
              "with _version_lock(d):\n"
              "    v = next_version(d); time.sleep(0.5); (d / str(v)).mkdir(); print(v)\n")
    racers = [subprocess.Popen([sys.executable, "-c", script, str(model_dir)], stdout=subprocess.PIPE, text=True)
              for _ in range(2)]
    versions = sorted(int(r.communicate(timeout=120)[0]) for r in racers)
    assert versions == [1, 2]


def test_a_re_export_swaps_the_folder_and_clears_a_killed_export(fx, tmp_path):
    from tfalign.experiments import get_experiment
    from tfalign.serving.saved_model import export_saved_model
    from tfalign.model import build_model

    target = tmp_path / "saved_model"
    (tmp_path / ".saved_model.tmp-999999").mkdir()  # a killed export's temporary folder
    model = build_model(get_experiment("rp_lars_sbn").model)
    export_saved_model(model, target, assets={"note.txt": "first"})
    export_saved_model(model, target, assets={"note.txt": "second"})
    assert (target / "assets" / "note.txt").read_text() == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["saved_model"]


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by init) counts as gone.
    status = pathlib.Path(f"/proc/{pid}/status")
    return not (status.exists() and "zombie" in status.read_text())


MORE_CASES = {
    "export name with a slash": ("tfalign.export", lambda t, f: ["--run", f["root"] / "run", "--name", "a/b",
                                                                 "--base-dir", t / "out"], ["--name"]),
    "features elements missing": ("pipelines.features", lambda t, f: ["--elements", t / "none.jsonl", "--out",
                                                                      t / "out", "--text-config", "x.json"],
                                  ["--elements", "no such file"]),
    "features text config corrupt": ("pipelines.features", lambda t, f: [
        "--elements", _text_file("elements", '{"id": "v/text/0", "kind": "text", "text": "a"}\n')(t, f)[1],
        "--out", t / "out", "--text-config", _text_file("config", "{broken")(t, f)[1]], ["not valid JSON"]),
    "features hub not a SavedModel": ("pipelines.features", lambda t, f: [
        "--elements", _text_file("elements", '{"id": "v/text/0", "kind": "text", "text": "a"}\n')(t, f)[1],
        "--out", t / "out", "--text-hub", _folder(t / "in" / "hub")], ["--text-hub", "not a SavedModel"]),
    "prepare annotations missing": ("pipelines.prepare", lambda t, f: [
        "--annotations", f"jsonl:{t / 'none.jsonl'}", "--features", "x*.npz", "--out", t / "out"],
        ["--annotations", "no such file"]),
    "prepare features missing": ("pipelines.prepare", lambda t, f: [
        "--annotations", f"jsonl:{_text_file('videos', '{}')(t, f)[1]}", "--features", str(t / "none-*.npz"),
        "--out", t / "out"], ["--features", "no file matches"]),
    "prepare shard garbage": ("pipelines.prepare", lambda t, f: [
        "--annotations", f"jsonl:{_text_file('videos', '{}')(t, f)[1]}", "--features",
        _garbage(t / "in", "features-0.npz"), "--out", t / "out"], ["pipeline failed"]),
}


@pytest.mark.parametrize("name", sorted(MORE_CASES))
def test_more_bad_inputs(name, fx, tmp_path, capfd):
    check_case(MORE_CASES[name], fx, tmp_path, capfd)


def test_a_run_killed_before_its_first_epoch_starts_again_clean(tmp_path, capfd):
    run = tmp_path / "run"
    stale = run / "tensorboard" / "train" / "events.out.tfevents.stale"
    stale.parent.mkdir(parents=True)
    stale.write_text("from the killed run")
    (run / "config.json").write_text("{}")
    (run / ".state.json.tmp-999999").write_text("half")
    code, out, err = run_command(TRAIN, ["--experiment", "rp_adam_sbn", "--dataset", "synthetic", "--epochs", "1",
                                         "--max-steps-per-epoch", "1", "--batch-size", "4", "--no-export",
                                         "--output-dir", run], capfd)
    assert code == 0, err
    assert not stale.exists() and not (run / ".state.json.tmp-999999").exists()
    assert json.loads((run / "state.json").read_text())["epoch"] == 1
