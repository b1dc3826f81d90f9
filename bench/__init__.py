"""Benchmarks. Run each from the repository root as ``python -m bench.NAME``.

(``python bench/NAME.py`` would put this folder first on sys.path, where ``numbers.py`` shadows
the standard library module of that name.)
"""

import os


def use_secrets_key() -> None:
    """Give this process, and the trunkline processes it starts, a key to encrypt stored secrets
    with (TRUNKLINE_SECRETS_KEYS; the tests' key unless one is set already)."""
    from tests.support.secrets_keys import TEST_SECRETS_KEYS

    os.environ.setdefault("TRUNKLINE_SECRETS_KEYS", TEST_SECRETS_KEYS)
