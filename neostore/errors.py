"""The one exception hierarchy of neostore.

    NeostoreError
    ├── RepositoryNotFound      no repository at that location
    ├── WrongPassword          no key file opens with the password given
    │   └── TamperedKeyFile    the password fits a key file whose contents were altered
    ├── RepositoryLocked       another process holds an exclusive lock
    ├── UnsupportedFormat      written by a newer neostore
    ├── IntegrityError         tampering or corruption (names the object)
    ├── NotFound               an object, snapshot or path does not exist
    ├── PermissionDenied       the key in use lacks the role for this
    ├── UsageError             the caller asked for something malformed
    └── BackendError           storage failed
        ├── TransientBackendError   worth a retry
        └── PermanentBackendError   retrying will not help

Third-party exceptions are wrapped at the boundary with ``raise ... from``.
"""

from __future__ import annotations


class NeostoreError(Exception):
    """Root of every error the library raises on purpose."""


class RepositoryNotFound(NeostoreError):
    pass


class WrongPassword(NeostoreError):
    pass


class TamperedKeyFile(WrongPassword):
    pass


class RepositoryLocked(NeostoreError):
    pass


class UnsupportedFormat(NeostoreError):
    pass


class IntegrityError(NeostoreError):
    """Data failed authentication or a hash check: corruption or tampering."""


class NotFound(NeostoreError):
    pass


class PermissionDenied(NeostoreError):
    pass


class UsageError(NeostoreError):
    pass


class BackendError(NeostoreError):
    pass


class TransientBackendError(BackendError):
    pass


class PermanentBackendError(BackendError):
    pass
