"""Every docstring example that does not say ``+SKIP`` runs and prints what it shows
(the API's, the tasks', the layers', the closed form's), in the quick set."""

import doctest
import importlib
import pkgutil

import numpy as np
import pytest

import tfalign


def docstring_tests():
    for info in pkgutil.walk_packages(tfalign.__path__, "tfalign."):
        try:
            module = importlib.import_module(info.name)
        except ImportError:  # an optional extra that is not installed
            continue
        for test in doctest.DocTestFinder().find(module):
            if test.examples and not all(example.options.get(doctest.SKIP) for example in test.examples):
                yield test


TESTS = list(docstring_tests())


def test_the_examples_cover_the_api_and_the_tasks():
    names = {t.name for t in TESTS}
    assert {"tfalign.api.aligner.Aligner.zero_shot", "tfalign.data.classical.DTWFit.fit",
            "tfalign.layers.ridge_similarity.RidgeSimilarity", "tfalign.model.backbone.NeuMatchBackbone",
            "tfalign.model.neumatch.NeuMatchAligner", "tfalign.model.lattice_aligner.LatticeAligner"} <= names, \
        sorted(names)


def test_the_python_blocks_of_the_design_pages_run():
    """docs/*.md: every ```python block runs as written (the README's have their own tests)."""
    import pathlib
    import re

    docs = pathlib.Path(__file__).parent.parent / "docs"
    blocks = [(page.name, block) for page in sorted(docs.glob("*.md"))
              for block in re.findall(r"```python\n(.*?)```", page.read_text(), re.S)]
    assert blocks
    for name, block in blocks:
        exec(compile(block, name, "exec"), {})


@pytest.mark.parametrize("test", TESTS, ids=[t.name for t in TESTS])
def test_a_docstring_example_runs_as_written(test):
    test.globs.update(np=np, tfalign=tfalign)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report = []
    result = runner.run(test, out=report.append)
    assert result.failed == 0, "".join(report)
