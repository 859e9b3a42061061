"""This machine's user and group names (POSIX ``pwd`` and ``grp``). On a
platform without them (Windows) every lookup finds nothing: snapshots then
record numeric owners only, and restore applies owners by number."""

from __future__ import annotations

import functools
import getpass
import os
from types import ModuleType

pwd: ModuleType | None
grp: ModuleType | None
try:
    import grp
    import pwd
except ImportError:
    pwd = grp = None


@functools.lru_cache(maxsize=4096)
def user_name(uid: int) -> str | None:
    try:
        return None if pwd is None else str(pwd.getpwuid(uid).pw_name)
    except KeyError:
        return None


@functools.lru_cache(maxsize=4096)
def group_name(gid: int) -> str | None:
    try:
        return None if grp is None else str(grp.getgrgid(gid).gr_name)
    except KeyError:
        return None


@functools.lru_cache(maxsize=4096)
def uid_of(name: str) -> int | None:
    try:
        return None if pwd is None else int(pwd.getpwnam(name).pw_uid)
    except KeyError:
        return None


@functools.lru_cache(maxsize=4096)
def gid_of(name: str) -> int | None:
    try:
        return None if grp is None else int(grp.getgrnam(name).gr_gid)
    except KeyError:
        return None


def login_name() -> str:
    """Who runs this process: the login name (``getpass``), else the user
    id, else "" (a platform with neither)."""
    try:
        return getpass.getuser()
    except (ImportError, KeyError, OSError):
        getuid = getattr(os, "getuid", None)
        return str(getuid()) if getuid is not None else ""
