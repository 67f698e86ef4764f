"""Cutout quality/speed benchmark: ``python -m benchmarks.cutout --help``."""
