"""Training: loss, schedules, the strategy, the loop, and TensorBoard diagnostics."""
