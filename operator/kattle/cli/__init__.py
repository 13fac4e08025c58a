"""The `kattle` command line (also installed as `kubectl-kattle`, a kubectl plugin)."""
