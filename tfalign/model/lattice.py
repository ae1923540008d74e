"""The lattice's dynamic programmes moved to ``tfalign.dp.lattice`` (every dynamic programme in
``tfalign.dp``); this name stays for the code that imports it from here."""

from tfalign.dp.lattice import (best_path, clip_confidence, clip_posteriors, conditional_log_probabilities,  # noqa: F401
                                greedy_walk, log_partition, log_partition_table, node_labels, node_mask,
                                posterior_marginals, running_max)
