"""Opening the store a location names."""

from __future__ import annotations

from urllib.parse import unquote, urlparse

from ..errors import UsageError
from .base import Backend
from .local import LocalBackend
from .options import BackendOptions


def open_backend(location: str, options: BackendOptions | None = None) -> Backend:
    """The store at ``location``: a directory path or ``file://`` URL, or
    ``https://HOST:PORT/REPO`` (``http://``) on neostore-server, which is
    opened with ``options`` and retries what is safe to retry."""
    if not location:
        raise UsageError("no repository given", option="repository")
    options = options or BackendOptions()
    if "://" not in location:
        return LocalBackend(location)
    url = urlparse(location)
    if url.scheme in ("http", "https"):
        from .http import HttpBackend  # urllib3 only when a server is used
        from .retry import RetryingBackend

        return RetryingBackend(HttpBackend(location, options), options.retries)
    if url.scheme != "file":
        raise UsageError(
            f"unsupported repository URL scheme {url.scheme!r} (file://, https://, http://)",
            option="repository",
        )
    return LocalBackend(unquote(url.path))
