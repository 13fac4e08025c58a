"""Running processes: one run, the per-object scheduler, history pruning."""
