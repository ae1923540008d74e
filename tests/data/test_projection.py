import numpy as np
import pytest

from tfalign.data.projection import RandomProjection, achlioptas_matrix


def test_achlioptas_entries_and_probabilities():
    matrix = achlioptas_matrix(2048, 300, seed=0)
    values, counts = np.unique(np.round(matrix / np.sqrt(3), 6), return_counts=True)
    assert values.tolist() == [-1.0, 0.0, 1.0]
    assert counts / matrix.size == pytest.approx([1 / 6, 2 / 3, 1 / 6], abs=0.01)


def test_projection_is_fixed_by_its_config_and_reusable():
    projection = RandomProjection(16, 4, seed=7)
    x = np.random.default_rng(0).normal(size=(5, 16)).astype(np.float32)
    again = RandomProjection.from_config(projection.to_config())
    assert np.array_equal(projection(x), again(x))
    assert np.allclose(projection(x), x @ achlioptas_matrix(16, 4, 7))
    assert not np.array_equal(projection.matrix, RandomProjection(16, 4, seed=8).matrix)
    with pytest.raises(ValueError, match="width 16"):
        projection(np.zeros((2, 15)))
