"""Storage backends: the :class:`Backend` protocol, the stores (a local
directory, neostore-server over HTTPS, memory for tests), wrappers that add
behaviour to any of them (retries), and opening one from a location."""

from __future__ import annotations

from .base import Backend
from .local import LocalBackend
from .location import open_backend
from .memory import MemoryBackend
from .options import BackendOptions, Credentials

__all__ = [
    "Backend",
    "BackendOptions",
    "Credentials",
    "LocalBackend",
    "MemoryBackend",
    "open_backend",
]
