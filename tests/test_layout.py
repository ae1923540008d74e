"""Where things live (issue 33): the Python API is a layer of its own, classes and
functions stay readable, and each concept has one home."""

import ast
import pathlib
import re

import pytest

import tfalign

PACKAGE = pathlib.Path(tfalign.__file__).parent
MAX_CLASS_LINES, MAX_FUNCTION_LINES = 250, 60


def sources():
    return sorted(PACKAGE.rglob("*.py"))


def oversized(path: pathlib.Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        limit = (MAX_CLASS_LINES if isinstance(node, ast.ClassDef) else
                 MAX_FUNCTION_LINES if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) else None)
        if limit and node.end_lineno - node.lineno + 1 > limit:
            found.append(f"{path.name}:{node.name} "
                         f"({node.end_lineno - node.lineno + 1} lines, at most {limit})")
    return found


def test_no_library_class_over_250_lines_or_function_over_60():
    assert [entry for path in sources() for entry in oversized(path)] == []


def test_the_size_check_sees_a_long_function(tmp_path):
    source = tmp_path / "long.py"
    source.write_text("def f():\n" + "    x = 1\n" * 59)
    assert oversized(source) == []
    source.write_text("def f():\n" + "    x = 1\n" * 60)
    assert [entry.split(":")[-1] for entry in oversized(source)] == ["f (61 lines, at most 60)"]
    source.write_text("class C:\n" + "    x = 1\n" * 250)
    assert [entry.split(":")[-1] for entry in oversized(source)] == ["C (251 lines, at most 250)"]


def test_the_python_api_is_its_own_layer_and_serving_defines_no_aligner():
    serving_classes = {node.name for path in (PACKAGE / "serving").glob("*.py")
                       for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.ClassDef)}
    assert "Aligner" not in serving_classes
    import inspect

    from tfalign.api import Aligner, TrainingRun, evaluate, train

    assert (tfalign.Aligner, tfalign.TrainingRun, tfalign.train, tfalign.evaluate) == \
        (Aligner, TrainingRun, train, evaluate)
    assert inspect.isfunction(tfalign.train) and inspect.isfunction(tfalign.evaluate)


def test_the_functions_stay_functions_once_the_commands_are_imported():
    import importlib

    command = importlib.import_module("tfalign.train")
    importlib.import_module("tfalign.evaluate")
    assert callable(command.main) and tfalign.train.__module__ == "tfalign.api.training"
    assert tfalign.evaluate.__module__ == "tfalign.api.evaluation"


def test_the_decoding_names_and_the_history_rule_have_one_home():
    """Only data/decoding_choice.py spells the decoding names together or ties exact
    decoding to the decoder's history; every other module asks ``Decoding``."""
    home = PACKAGE / "data" / "decoding_choice.py"
    names = re.compile(r"""[\(\[]\s*["']greedy["']\s*,\s*["']exact["']""")
    rule = re.compile(r"""(decoder_history|\.history\b).*["']exact["']|["']exact["'].*(decoder_history|\.history\b)""")
    offenders = [f"{path.relative_to(PACKAGE.parent)}:{number}" for path in sources() if path != home
                 for number, line in enumerate(path.read_text().splitlines(), 1)
                 if names.search(line) or (rule.search(line) and "Decoding." not in line)]
    assert offenders == []


@pytest.mark.parametrize("decoding, history, expected", [
    ("greedy", True, "greedy"), ("exact", False, "exact"), ("greedy", False, "greedy")])
def test_decoding_check_returns_plain_names(decoding, history, expected):
    from tfalign.data.decoding_choice import Decoding

    assert Decoding.check(decoding, history) == expected and type(Decoding.check(decoding, history)) is str
    assert Decoding.check(Decoding(decoding), history) == expected


def test_decoding_check_names_the_field():
    from tfalign.data.decoding_choice import Decoding
    from tfalign.errors import UserError

    with pytest.raises(UserError, match="^--decoding: 'exact' needs a decoder without history") as caught:
        Decoding.check("exact", history=True, field="--decoding")
    assert caught.value.field == "--decoding"
    with pytest.raises(UserError, match=r"^decoding: expected one of \['greedy', 'exact'\], got 'auto'"):
        Decoding.check("auto", history=False)
    assert Decoding.check("auto", history=False, auto=True) == "auto"
    assert Decoding.default(history=True) == "greedy" and Decoding.default(history=False) == "exact"
