"""SavedModels for TF Serving, with the whole greedy alignment in the graph."""
