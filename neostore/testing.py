"""Knobs for tests of neostore and of programs built on it. Nothing in the
library imports this module; importing it changes nothing until a function
here is called.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def memoized_key_derivation() -> Iterator[None]:
    """Within the block, Argon2id runs once per (password, salt, cost) in
    this process: opening the same key file again costs nothing. Key files
    are still written and checked exactly as in production; only repeated
    derivations are skipped."""
    from .format import keyfile as keys

    original: Callable[..., bytes] = keys._wrapping_key
    keys._wrapping_key = functools.lru_cache(maxsize=256)(original)
    try:
        yield
    finally:
        keys._wrapping_key = original
