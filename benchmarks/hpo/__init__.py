"""Hyperparameter-optimization benchmark: modelyard's optimizers against Optuna's samplers."""
