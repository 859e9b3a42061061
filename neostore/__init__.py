"""neostore: end-to-end encrypted, deduplicating backups.

The supported Python API is what ``__all__`` lists (docs/api.md); the
modules below it are implementation detail. Importing this package stays
cheap: a name loads its module on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: public name -> the module that defines it
_EXPORTS = {
    # opening a repository
    "open_repository": "neostore.api",
    "init_repository": "neostore.api",
    "Repository": "neostore.core.repository",
    "BackendOptions": "neostore.backend.options",
    "Credentials": "neostore.backend.options",
    # snapshots and what is in them
    "list_targets": "neostore.api",
    "list_snapshots": "neostore.api",
    "find_snapshot": "neostore.api",
    "Listing": "neostore.snapshots.chains",
    "SnapshotInfo": "neostore.snapshots.info",
    "Manifest": "neostore.format.manifest",
    "Node": "neostore.format.tree",
    "list_directory": "neostore.api",
    "walk": "neostore.api",
    "open_file": "neostore.api",
    "read_file": "neostore.api",
    "find": "neostore.api",
    "diff": "neostore.api",
    "Change": "neostore.browse.diff",
    "dump_archive": "neostore.api",
    "ArchiveStats": "neostore.restorer.archive",
    "stored_bytes": "neostore.api",
    "check_reachable": "neostore.api",
    "state_dir": "neostore.api",
    # backing up and restoring
    "snapshot": "neostore.api",
    "SnapshotOptions": "neostore.backup.options",
    "SnapshotResult": "neostore.backup.options",
    "SnapshotStats": "neostore.backup.options",
    "restore": "neostore.api",
    "count_paths": "neostore.api",
    "PathCount": "neostore.backup.precount",
    "RestoreOptions": "neostore.restorer.options",
    "RestoreStats": "neostore.restorer.options",
    "Overwrite": "neostore.restorer.options",
    "Reporter": "neostore.progress",
    "Role": "neostore.format.keyfile",
    # profiles (neostore run)
    "Profile": "neostore.profiles",
    "load_profiles": "neostore.profiles",
    "profiles_file": "neostore.profiles",
    # checking
    "check": "neostore.api",
    "last_check": "neostore.api",
    "CheckResult": "neostore.lifecycle.check",
    "LastCheck": "neostore.lifecycle.check",
    # errors
    "NeostoreError": "neostore.errors",
    "RepositoryNotFound": "neostore.errors",
    "WrongPassword": "neostore.errors",
    "TamperedKeyFile": "neostore.errors",
    "RepositoryLocked": "neostore.errors",
    "UnsupportedFormat": "neostore.errors",
    "IntegrityError": "neostore.errors",
    "NotFound": "neostore.errors",
    "PermissionDenied": "neostore.errors",
    "UsageError": "neostore.errors",
    "BackendError": "neostore.errors",
    "TransientBackendError": "neostore.errors",
    "PermanentBackendError": "neostore.errors",
}

__all__ = [
    "ArchiveStats",
    "BackendError",
    "BackendOptions",
    "Change",
    "CheckResult",
    "Credentials",
    "IntegrityError",
    "LastCheck",
    "Listing",
    "Manifest",
    "NeostoreError",
    "Node",
    "NotFound",
    "Overwrite",
    "PathCount",
    "PermanentBackendError",
    "PermissionDenied",
    "Profile",
    "Reporter",
    "Repository",
    "RepositoryLocked",
    "RepositoryNotFound",
    "RestoreOptions",
    "RestoreStats",
    "Role",
    "SnapshotInfo",
    "SnapshotOptions",
    "SnapshotResult",
    "SnapshotStats",
    "TamperedKeyFile",
    "TransientBackendError",
    "UnsupportedFormat",
    "UsageError",
    "WrongPassword",
    "__version__",
    "check",
    "check_reachable",
    "count_paths",
    "diff",
    "dump_archive",
    "find",
    "find_snapshot",
    "init_repository",
    "last_check",
    "list_directory",
    "list_snapshots",
    "list_targets",
    "load_profiles",
    "open_file",
    "open_repository",
    "profiles_file",
    "read_file",
    "restore",
    "snapshot",
    "state_dir",
    "stored_bytes",
    "walk",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'neostore' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups do not come here
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:
    from .api import (
        check,
        check_reachable,
        count_paths,
        diff,
        dump_archive,
        find,
        find_snapshot,
        init_repository,
        last_check,
        list_directory,
        list_snapshots,
        list_targets,
        open_file,
        open_repository,
        read_file,
        restore,
        snapshot,
        state_dir,
        stored_bytes,
        walk,
    )
    from .backend.options import BackendOptions, Credentials
    from .backup.options import SnapshotOptions, SnapshotResult, SnapshotStats
    from .backup.precount import PathCount
    from .browse.diff import Change
    from .core.repository import Repository
    from .errors import (
        BackendError,
        IntegrityError,
        NeostoreError,
        NotFound,
        PermanentBackendError,
        PermissionDenied,
        RepositoryLocked,
        RepositoryNotFound,
        TamperedKeyFile,
        TransientBackendError,
        UnsupportedFormat,
        UsageError,
        WrongPassword,
    )
    from .format.keyfile import Role
    from .format.manifest import Manifest
    from .format.tree import Node
    from .lifecycle.check import CheckResult, LastCheck
    from .profiles import Profile, load_profiles, profiles_file
    from .progress import Reporter
    from .restorer.archive import ArchiveStats
    from .restorer.options import Overwrite, RestoreOptions, RestoreStats
    from .snapshots.chains import Listing
    from .snapshots.info import SnapshotInfo
