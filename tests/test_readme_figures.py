"""The README's figures are the results files' (benchmarks/readme_figures.py), and the
README stays a newcomer's page."""

import importlib.util
import json
import pathlib
import shutil

ROOT = pathlib.Path(__file__).resolve().parents[1]


def load_script():
    spec = importlib.util.spec_from_file_location("readme_figures", ROOT / "benchmarks" / "readme_figures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_table_is_what_the_results_files_say():
    figures = load_script()
    readme = (ROOT / "README.md").read_text()
    assert figures.readme_table(readme) == figures.render(), \
        "README.md's figures table is out of date: run python benchmarks/readme_figures.py"


def test_a_changed_results_file_changes_the_table(tmp_path):
    figures = load_script()
    results = tmp_path / "results"
    shutil.copytree(ROOT / "benchmarks" / "results", results)
    baselines = json.loads((results / "baselines.json").read_text())
    baselines["results"]["rp"]["dtw"]["clip_accuracy"] = 0.5
    (results / "baselines.json").write_text(json.dumps(baselines))
    changed = figures.render(results)
    assert changed != figures.render() and "| 0.500 / " in changed


def test_every_results_file_says_where_it_comes_from():
    for path in sorted((ROOT / "benchmarks" / "results").glob("*.json")):
        record = json.loads(path.read_text())
        missing = [key for key in ("commit", "command", "config_hash") if not record.get(key)]
        assert not missing, f"{path.name}: no {missing}"


def test_the_readme_is_a_newcomers_page():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    for script in ("tfalign-train", "tfalign-evaluate", "tfalign-compare", "tfalign-export", "tfalign-align"):
        assert script in readme
    for link in ("docs/usage.md", "docs/results.md", "docs/README.md"):
        assert (ROOT / link).exists() and link in readme
