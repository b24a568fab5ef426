"""regsweep's Hydra Sweeper: a persistent Optuna study with pruning (``hydra/sweeper=regsweep``)."""
