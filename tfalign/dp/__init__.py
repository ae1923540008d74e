"""Every dynamic programme of tfalign, as Drop-DTW keeps its in one place.

    dtw.py       the classical baselines' DTW with a drop cost and minimum distance (NumPy)
    lattice.py   the (clip, text) lattice of a decoder that reads only its cursors: the best
                 path, the log-partition tables, the posterior marginals, the greedy walk
                 (batched TensorFlow, in-graph in the SavedModel)

On the lattice, DTW is the best path under the scores MATCH = cos - 1,
POP_CLIP = -drop_cost, POP_TEXT = 0 (tests/model/test_dtw_start.py checks it).
"""
