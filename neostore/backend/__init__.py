"""Storage backends and how to open one from a location string."""

from __future__ import annotations

from urllib.parse import unquote, urlparse

from ..errors import UsageError
from .base import Backend
from .local import LocalBackend
from .memory import MemoryBackend

__all__ = ["Backend", "LocalBackend", "MemoryBackend", "open_backend"]


def open_backend(location: str) -> Backend:
    """A backend for a repository location: a path or a ``file://`` URL."""
    if not location:
        raise UsageError("no repository given (use -r/--repo or NEOSTORE_REPO)")
    if "://" in location:
        url = urlparse(location)
        if url.scheme != "file":
            raise UsageError(
                f"unsupported repository URL scheme {url.scheme!r} (only file:// for now)"
            )
        return LocalBackend(unquote(url.path))
    return LocalBackend(location)
