"""Benchmarks of optuna-evo: CPU suites and the GPU session scripts (see benchmarks/README.md)."""
