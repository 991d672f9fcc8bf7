"""The side-by-side benchmark harness (bench/compare.py)."""
