"""The one exception hierarchy of neostore.

    NeostoreError
    ├── RepositoryNotFound      no repository at that location
    ├── WrongPassword          no key file opens with the password given
    │   └── TamperedKeyFile    the password fits a key file whose contents were altered
    ├── RepositoryLocked       another process holds an exclusive lock
    ├── UnsupportedFormat      written by a newer neostore
    ├── IntegrityError         tampering or corruption (names the object)
    │   └── TamperingDetected  evidence only a hostile store or key holder leaves
    ├── NotFound               an object, snapshot or path does not exist
    ├── PermissionDenied       the key in use lacks the role for this
    ├── UsageError             the caller asked for something malformed
    └── BackendError           storage failed
        ├── TransientBackendError   worth a retry
        └── PermanentBackendError   retrying will not help

Third-party exceptions are wrapped at the boundary with ``raise ... from``.
An error about one argument of the call names it in ``option`` (the API
parameter: ``"overwrite"``, ``"max_unused"`` …); messages never spell a
command-line flag, which the command line adds from ``option``.
"""

from __future__ import annotations


class NeostoreError(Exception):
    """Root of every error the library raises on purpose."""

    def __init__(self, message: str = "", *, option: str | None = None) -> None:
        super().__init__(message)
        #: the parameter of the call that the problem is about, if one is
        self.option = option


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


class TamperingDetected(IntegrityError):
    """The repository's history was changed behind its owner's back:
    snapshots hidden, rolled back or put back after being forgotten, a
    replayed config, a replaced target record. Unlike a damaged object,
    none of these can come from a failing disk."""


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
