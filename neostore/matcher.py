"""Path patterns for --exclude/--include (restic-like globs).

A pattern containing "/" matches the whole absolute path; one without
matches the name of any single path component. Matching a directory
matches everything below it.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Sequence

from .errors import UsageError


class PathMatcher:
    def __init__(self, patterns: Sequence[str]) -> None:
        cleaned = [p.rstrip("/") for p in patterns if p.strip()]
        self.full = [p for p in cleaned if "/" in p]
        self.names = [p for p in cleaned if "/" not in p]

    def __bool__(self) -> bool:
        return bool(self.full or self.names)

    def matches(self, path: bytes) -> bool:
        """True when ``path`` itself matches (not its ancestors)."""
        text = os.fsdecode(path)
        name = text.rsplit("/", 1)[-1]
        return any(fnmatch.fnmatchcase(name, p) for p in self.names) or any(
            fnmatch.fnmatchcase(text, p) for p in self.full
        )

    def matches_or_below(self, path: bytes) -> bool:
        """True when ``path`` or any of its ancestors matches."""
        parts = path.split(b"/")
        return any(self.matches(b"/".join(parts[:i]) or b"/") for i in range(2, len(parts) + 1))


def read_exclude_file(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8") as f:
            lines = [line.strip() for line in f]
    except OSError as e:
        raise UsageError(f"cannot read exclude file {path}: {e.strerror}") from e
    return [line for line in lines if line and not line.startswith("#")]
