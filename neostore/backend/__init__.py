"""Storage backends and how to open one from a location string."""

from __future__ import annotations

from urllib.parse import unquote, urlparse

from ..errors import UsageError
from .base import Backend
from .local import LocalBackend
from .memory import MemoryBackend

__all__ = ["Backend", "LocalBackend", "MemoryBackend", "open_backend"]


def open_backend(
    location: str,
    fingerprint: str | None = None,
    ca_file: str | None = None,
    env_prefix: str = "NEOSTORE_SERVER",
) -> Backend:
    """A backend for a repository location: a path, a ``file://`` URL, or an
    ``https://HOST:PORT/REPO`` (``http://``) URL of neostore-server. For a
    server, ``fingerprint`` pins its certificate and ``ca_file`` replaces
    the system CAs; credentials come from the URL or the environment
    (variables named ``<env_prefix>_TOKEN`` etc.)."""
    if not location:
        raise UsageError("no repository given (use -r/--repo or NEOSTORE_REPO)")
    if "://" in location:
        url = urlparse(location)
        if url.scheme in ("http", "https"):
            from .http import HttpBackend  # urllib3 only when a server is used

            return HttpBackend(
                location, fingerprint=fingerprint, ca_file=ca_file, env_prefix=env_prefix
            )
        if url.scheme != "file":
            raise UsageError(
                f"unsupported repository URL scheme {url.scheme!r} (file://, https://, http://)"
            )
        return LocalBackend(unquote(url.path))
    return LocalBackend(location)
