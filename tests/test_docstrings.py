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
            "tfalign.layers.ridge_similarity.RidgeSimilarity"} <= names, sorted(names)


@pytest.mark.parametrize("test", TESTS, ids=[t.name for t in TESTS])
def test_a_docstring_example_runs_as_written(test):
    test.globs.update(np=np, tfalign=tfalign)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report = []
    result = runner.run(test, out=report.append)
    assert result.failed == 0, "".join(report)
