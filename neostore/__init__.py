"""neostore: end-to-end encrypted, deduplicating backups.

The public API is re-exported here; submodules are implementation detail.
Importing this package stays cheap: heavy modules load on first use.
"""

from __future__ import annotations

from .errors import (
    BackendError,
    IntegrityError,
    NeostoreError,
    NotFound,
    PermanentBackendError,
    PermissionDenied,
    RepositoryLocked,
    RepositoryNotFound,
    TransientBackendError,
    UnsupportedFormat,
    UsageError,
    WrongPassword,
)

__version__ = "0.1.0"

__all__ = [
    "BackendError",
    "IntegrityError",
    "NeostoreError",
    "NotFound",
    "PermanentBackendError",
    "PermissionDenied",
    "RepositoryLocked",
    "RepositoryNotFound",
    "TransientBackendError",
    "UnsupportedFormat",
    "UsageError",
    "WrongPassword",
    "__version__",
]
