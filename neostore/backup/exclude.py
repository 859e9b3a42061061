"""What a snapshot leaves out: restic's patterns (case-sensitive and not),
folders marked by a file (``--exclude-if-present``, ``--exclude-caches``)
and files above a size (``--exclude-larger-than``)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..errors import UsageError
from ..matcher import PathMatcher

#: the Cache Directory Tagging Specification's marker (bford.info/cachedir)
CACHEDIR_TAG = "CACHEDIR.TAG:Signature: 8a477f597d28d172789f06886806bc55"


@dataclass(frozen=True)
class Exclusions:
    patterns: Sequence[str] = ()
    #: patterns matched without regard to case (--iexclude)
    insensitive: Sequence[str] = ()
    #: "NAME" or "NAME:HEADER": a folder holding a file NAME (that starts
    #: with HEADER) keeps only that file
    if_present: Sequence[str] = ()
    #: regular files larger than this many bytes are left out
    larger_than: int | None = None


def _marker(spec: str) -> tuple[bytes, bytes]:
    name, _, header = spec.partition(":")
    if not name or "/" in name:
        raise UsageError(f"--exclude-if-present {spec}: give a file name, optionally NAME:HEADER")
    return os.fsencode(name), header.encode()


class Excluder:
    def __init__(self, rules: Exclusions) -> None:
        self._paths = PathMatcher(rules.patterns, rules.insensitive)
        self._markers = [_marker(spec) for spec in rules.if_present]
        self._larger_than = rules.larger_than

    def __bool__(self) -> bool:
        return bool(self._paths) or self._larger_than is not None

    @property
    def marks(self) -> bool:
        return bool(self._markers)

    def excludes(self, path: bytes, st: os.stat_result) -> bool:
        """Whether a pattern leaves ``path`` out, or its size."""
        if self._paths and self._paths.matches(path):
            return True
        limit = self._larger_than
        return limit is not None and stat.S_ISREG(st.st_mode) and st.st_size > limit

    def marker_in(self, folder: bytes, names: Iterable[bytes]) -> bytes | None:
        """The marker file that makes ``folder`` keep nothing but itself,
        when it holds one (restic keeps the marker so that the folder
        stays marked in a restore)."""
        present = set(names)
        for name, header in self._markers:
            if name in present and _starts_with(os.path.join(folder, name), header):
                return name
        return None


def _starts_with(path: bytes, header: bytes) -> bool:
    if not header:
        return True
    try:
        with open(path, "rb") as f:
            return f.read(len(header)) == header
    except OSError:
        return False


def parse_size(text: str) -> int:
    """``--exclude-larger-than``: bytes, or with k, m, g, t (powers of 1024,
    as restic reads them)."""
    units = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    body = text.strip().lower()
    unit = body[-1:] if body[-1:].isalpha() else ""
    number = body[: len(body) - len(unit)]
    if unit not in units or not number.isdigit():
        raise UsageError(f"{text!r}: not a size (e.g. 500k, 2m, 1g)", option="exclude_larger_than")
    return int(number) * units[unit]
