"""Profiles: named backup jobs in a TOML file (what resticprofile,
autorestic and borgmatic give their users).

::

    [profiles.documents]
    repo = "/mnt/backup/neostore"
    password-file = "~/.config/neostore/documents.pw"
    target = "documents"
    paths = ["~/Documents"]
    exclude = ["*.tmp", "~$*"]
    keep-daily = 7
    keep-weekly = 5
    prune = true
    check = true
    read-data-subset = "5%"
    before = ["pg_dump mydb > ~/Documents/db.sql"]

Keys are spelled like the commands' long options; a profile is the
command lines it stands for (:meth:`Profile.steps`): ``snapshot``, then
``forget`` when a ``keep-*`` key is set, then ``prune`` and ``check``
when asked for. Every key is checked when the file is read: an unknown
key, a value of the wrong type or a missing file is an error naming the
file and the key (and the line, for a syntax error).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from .errors import UsageError

STR, INT, BOOL, LIST = "a string", "an integer", "true or false", "a list of strings"

#: key -> (expected type, the steps whose command line takes it)
KEYS: dict[str, tuple[str, tuple[str, ...]]] = {
    # the repository, for every step
    "repo": (STR, ("snapshot", "forget", "prune", "check")),
    "password-file": (STR, ("snapshot", "forget", "prune", "check")),
    "password-command": (STR, ("snapshot", "forget", "prune", "check")),
    "server-fingerprint": (STR, ("snapshot", "forget", "prune", "check")),
    "target": (STR, ("snapshot", "forget")),
    # what to back up
    "paths": (LIST, ("snapshot",)),
    "files-from": (LIST, ("snapshot",)),
    "exclude": (LIST, ("snapshot",)),
    "iexclude": (LIST, ("snapshot",)),
    "exclude-file": (LIST, ("snapshot",)),
    "iexclude-file": (LIST, ("snapshot",)),
    "exclude-caches": (BOOL, ("snapshot",)),
    "exclude-if-present": (LIST, ("snapshot",)),
    "exclude-larger-than": (STR, ("snapshot",)),
    "one-file-system": (BOOL, ("snapshot",)),
    "tag": (LIST, ("snapshot",)),
    "host": (STR, ("snapshot",)),
    # retention (a forget runs when one of the keep-* is set)
    "keep-last": (INT, ("forget",)),
    "keep-hourly": (INT, ("forget",)),
    "keep-daily": (INT, ("forget",)),
    "keep-weekly": (INT, ("forget",)),
    "keep-monthly": (INT, ("forget",)),
    "keep-yearly": (INT, ("forget",)),
    "keep-within": (STR, ("forget",)),
    "keep-tag": (LIST, ("forget",)),
    "group-by": (STR, ("forget",)),
    # after it
    "prune": (BOOL, ()),
    "max-unused": (STR, ("prune",)),
    "grace": (STR, ("prune",)),
    "check": (BOOL, ()),
    "read-data": (BOOL, ("check",)),
    "read-data-subset": (STR, ("check",)),
    # hook commands, run by the system shell
    "before": (LIST, ()),
    "after": (LIST, ()),
    "on-failure": (LIST, ()),
}
#: keys whose values are paths: ``~`` is expanded
PATH_KEYS = {"password-file", "paths", "files-from", "exclude-file", "iexclude-file"}
STEPS = ("snapshot", "forget", "prune", "check")


def profiles_file() -> Path:
    """``$NEOSTORE_CONFIG``, else ``config.toml`` in the platform's
    per-user configuration folder (``~/.config/neostore`` on Linux)."""
    explicit = os.environ.get("NEOSTORE_CONFIG")
    if explicit:
        return Path(explicit)
    return Path(platformdirs.user_config_dir("neostore", appauthor=False)) / "config.toml"


@dataclass(frozen=True)
class Profile:
    name: str
    settings: Mapping[str, Any] = field(default_factory=dict)

    def hooks(self, when: str) -> list[str]:
        return list(self.settings.get(when, []))

    def steps(self) -> list[tuple[str, list[str]]]:
        """The command lines this profile runs, in order: (step, argv
        after ``neostore``)."""
        wanted = {
            "snapshot": True,
            "forget": any(k.startswith("keep-") for k in self.settings),
            "prune": bool(self.settings.get("prune")),
            "check": bool(self.settings.get("check")),
        }
        return [(step, self._argv(step)) for step in STEPS if wanted[step]]

    def _argv(self, step: str) -> list[str]:
        argv = [step]
        paths: list[str] = []
        for key, value in self.settings.items():
            kind, used_by = KEYS[key]
            if step not in used_by:
                continue
            if key == "paths":
                paths = list(value)
            elif kind == BOOL:
                argv += [f"--{key}"] if value else []
            elif kind == LIST:
                for item in value:
                    argv += [f"--{key}", str(item)]
            else:
                argv += [f"--{key}", str(value)]
        return argv + (["--", *paths] if paths else [])


def _checked(path: Path, name: str, table: Any) -> Profile:
    where = f"{path}: profile {name!r}"
    if not isinstance(table, dict):
        raise UsageError(f"{where}: expected a table ([profiles.{name}])")
    settings: dict[str, Any] = {}
    for key, value in table.items():
        if key not in KEYS:
            raise UsageError(f"{where}: unknown key {key!r}")
        kind = KEYS[key][0]
        ok = {
            STR: isinstance(value, str),
            INT: isinstance(value, int) and not isinstance(value, bool),
            BOOL: isinstance(value, bool),
            LIST: isinstance(value, list) and all(isinstance(v, str) for v in value),
        }[kind]
        if not ok:
            raise UsageError(f"{where}: {key!r} must be {kind}, not {value!r}")
        if key in PATH_KEYS:
            value = (
                [os.path.expanduser(v) for v in value]
                if kind == LIST
                else os.path.expanduser(value)
            )
        settings[key] = value
    if not settings.get("paths") and not settings.get("files-from"):
        raise UsageError(f"{where}: give 'paths' (or 'files-from'): what to back up")
    if "password-file" in settings and "password-command" in settings:
        raise UsageError(f"{where}: give 'password-file' or 'password-command', not both")
    return Profile(name, settings)


def load_profiles(path: Path | None = None) -> dict[str, Profile]:
    """Every profile of the configuration file, checked."""
    path = path if path is not None else profiles_file()
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise UsageError(f"{path}: no configuration file there") from None
    except OSError as e:
        raise UsageError(f"{path}: cannot read it: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{path}: {e}") from None  # the parser names the line
    unknown = sorted(set(data) - {"profiles"})
    if unknown:
        raise UsageError(f"{path}: unknown key {unknown[0]!r} (profiles go in [profiles.NAME])")
    profiles = data.get("profiles", {})
    if not isinstance(profiles, dict):
        raise UsageError(f"{path}: 'profiles' must be a table of [profiles.NAME]")
    return {name: _checked(path, name, table) for name, table in profiles.items()}


def get_profile(name: str, path: Path | None = None) -> Profile:
    profiles = load_profiles(path)
    if name not in profiles:
        known = ", ".join(sorted(profiles)) or "none"
        raise UsageError(f"no profile {name!r} in {path or profiles_file()} (profiles: {known})")
    return profiles[name]
