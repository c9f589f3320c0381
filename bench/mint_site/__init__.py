"""The example project with production settings, for ``bench_mint.py``."""
