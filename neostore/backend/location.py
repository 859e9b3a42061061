"""Opening the store a location names."""

from __future__ import annotations

import re
from urllib.parse import unquote, urlparse

from ..errors import UsageError
from .base import Backend
from .local import LocalBackend
from .options import BackendOptions

#: ``name:…`` with a name of two or more letters (restic's ``s3:``, ``sftp:``,
#: ``rest:``, ``b2:``, ``rclone:`` …): a store, never a local folder by accident
#: (``C:\\…`` on Windows has one letter; a folder named so is ``./name:…``)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+:")
SUPPORTED = (
    "a directory, file://PATH, https://HOST:PORT/REPO (neostore-server), "
    "s3:https://HOST/BUCKET[/PREFIX] or s3:BUCKET[/PREFIX] (S3), "
    "sftp:[USER@]HOST[:PORT]:/PATH (SFTP), "
    "rest:http(s)://[USER:PASS@]HOST:PORT/PATH (restic's REST protocol: rclone serve restic)"
)


def open_backend(location: str, options: BackendOptions | None = None) -> Backend:
    """The store at ``location``: a directory path or ``file://`` URL,
    ``https://HOST:PORT/REPO`` (``http://``) on neostore-server, an S3
    bucket (``s3:…``, :mod:`.s3settings`) or an SSH server's directory
    (``sftp:…``, :mod:`.sftpsettings`); a remote store is opened with
    ``options`` and retries what is safe to retry."""
    if not location:
        raise UsageError("no repository given", option="repository")
    options = options or BackendOptions()
    scheme = location.split(":", 1)[0] if _SCHEME.match(location) else ""
    if scheme.lower() == "s3":
        from .retry import RetryingBackend
        from .s3 import S3Backend  # boto3 only when S3 is used

        return RetryingBackend(S3Backend(location, options), options.retries)
    if scheme.lower() == "sftp":
        from .retry import RetryingBackend
        from .sftp import SftpBackend  # asyncssh only when SFTP is used

        return RetryingBackend(SftpBackend(location, options), options.retries)
    if scheme.lower() == "rest":
        from .rest import RestBackend
        from .retry import RetryingBackend

        return RetryingBackend(RestBackend(location, options), options.retries)
    if "://" not in location:
        if scheme:
            raise UsageError(
                f"{location}: neostore does not know the location type {scheme!r}; "
                f"it takes {SUPPORTED} (a folder whose name has a colon: ./{location})",
                option="repository",
            )
        return LocalBackend(location)
    url = urlparse(location)
    if url.scheme in ("http", "https"):
        from .http import HttpBackend  # urllib3 only when a server is used
        from .retry import RetryingBackend

        return RetryingBackend(HttpBackend(location, options), options.retries)
    if url.scheme != "file":
        raise UsageError(
            f"{location}: neostore does not know the location type {url.scheme!r}; "
            f"it takes {SUPPORTED}",
            option="repository",
        )
    return LocalBackend(unquote(url.path))
