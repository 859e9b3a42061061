"""How to reach a store: the typed options every backend is opened with."""

from __future__ import annotations

import base64
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Credentials:
    """An account on a remote store: a user name (or none) and its token."""

    user: str | None
    token: str

    def header(self) -> str:
        """The HTTP ``Authorization`` value: bearer token, or basic with a user."""
        if self.user is None:
            return f"Bearer {self.token}"
        raw = f"{self.user}:{self.token}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    def __repr__(self) -> str:  # never print a token
        return f"Credentials(user={self.user!r}, token=...)"


@dataclass(frozen=True)
class BackendOptions:
    """Options for :func:`neostore.backend.open_backend`; a local directory
    needs none of them."""

    #: pin a server's TLS certificate (``SHA256:<hex>``) instead of checking CAs
    server_fingerprint: str | None = None
    #: trust this CA file for the server instead of the system's
    server_ca: str | None = None
    #: the account (else the one the location's URL names)
    credentials: Credentials | None = None
    #: also look for an account in the environment, as the command line does:
    #: ``<prefix>_TOKEN`` and ``<prefix>_USER`` (before the URL's), then the
    #: JSON file ``<prefix>_CREDENTIALS`` names
    credentials_env: str | None = None
    #: send credentials over plain ``http://`` (refused otherwise: anyone
    #: on the way could read and replay them)
    insecure_http: bool = False
    #: how often a request that failed in a way worth retrying is tried again
    retries: int = 5
    #: seconds a request may wait for an answer
    timeout: float = 60.0
    #: read store settings from the environment with this prefix before each
    #: usual name (``NEOSTORE_FROM_`` + ``AWS_ACCESS_KEY_ID`` for the source
    #: of ``copy``): two accounts never mix
    env_prefix: str = ""
    #: ``init`` on S3 may create a missing bucket
    create_bucket: bool = False
