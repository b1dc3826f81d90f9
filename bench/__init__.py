"""Benchmarks. Run each from the repository root as ``python -m bench.NAME``.

(``python bench/NAME.py`` would put this folder first on sys.path, where ``numbers.py`` shadows
the standard library module of that name.)
"""
