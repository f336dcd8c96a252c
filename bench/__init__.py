"""Benchmarks and corpus comparisons (not part of the installed package)."""
