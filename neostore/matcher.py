"""Path patterns for --exclude, --include and find, with restic's meaning.

A pattern is matched component by component against an absolute path
(the wcmatch library does the globbing):

- ``*``, ``?`` and ``[...]`` match within one component, never across
  ``/``; ``**`` matches any number of components, none included
  (``/home/**/cache`` matches ``/home/cache``); names starting with a dot
  are not special.
- A pattern starting with ``/`` is anchored at the root; any other matches
  at any depth (``cache`` is ``/**/cache``).
- A pattern matches a path when it matches the path or one of its
  ancestors: excluding a folder excludes what it holds.
- ``!pattern`` takes back what the patterns before it matched (so order
  matters: ``--exclude '/data/*' --exclude '!/data/keep'``).
- Case-insensitive patterns (``--iexclude``) are kept in a list of their
  own; a path matches when either list matches it.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Sequence

from wcmatch import glob

from .errors import UsageError

_FLAGS = glob.GLOBSTAR | glob.DOTGLOB | glob.FORCEUNIX


def _prepared(pattern: str) -> tuple[bool, str] | None:
    """(negated, the pattern as an anchored glob without the leading
    slash), or None for a blank line."""
    pattern = pattern.strip()
    negated = pattern.startswith("!")
    if negated:
        pattern = pattern[1:]
    if not pattern:
        return None
    anchored = pattern.startswith("/")
    clean = posixpath.normpath(pattern).strip("/")
    if clean in ("", "."):
        clean = "**"  # "/" and "." match everything
    return negated, clean if anchored or clean.startswith("**") else "**/" + clean


class _Ordered:
    """One list of patterns, matched in order (``!`` takes back)."""

    def __init__(self, patterns: Sequence[str], flags: int) -> None:
        prepared = [p for p in map(_prepared, patterns) if p is not None]
        self.empty = not prepared
        self.by_name = all(p.count("/") == 1 and p.startswith("**/") for _, p in prepared)
        self.negations = any(negated for negated, _ in prepared)
        # a pattern or an ancestor: P itself, or P/** below it
        self._whole = [(n, glob.compile([p, p + "/**"], flags=flags)) for n, p in prepared]
        self._exact = [(n, glob.compile(p, flags=flags)) for n, p in prepared]
        self._any = glob.compile([q for _, p in prepared for q in (p, p + "/**")], flags=flags)

    def match(self, text: str, exact: bool) -> bool:
        if self.empty:
            return False
        if not self.negations and not exact:
            return bool(self._any.match(text))
        matched = False
        for negated, matcher in self._exact if exact else self._whole:
            if negated == matched and matcher.match(text):
                matched = not negated
        return matched


class PathMatcher:
    def __init__(self, patterns: Sequence[str], insensitive: Sequence[str] = ()) -> None:
        self._lists = [
            _Ordered(patterns, _FLAGS),
            _Ordered(insensitive, _FLAGS | glob.IGNORECASE),
        ]
        self._lists = [m for m in self._lists if not m.empty]

    def __bool__(self) -> bool:
        return bool(self._lists)

    @property
    def by_name(self) -> bool:
        """Whether every pattern is one component matched at any depth, so
        that whether a path matches exactly depends on its name alone."""
        return all(m.by_name for m in self._lists)

    def matches(self, path: bytes) -> bool:
        """True when ``path`` or one of its ancestors matches."""
        text = os.fsdecode(path).strip("/")
        return any(m.match(text, exact=False) for m in self._lists)

    def matches_exactly(self, path: bytes) -> bool:
        """True when ``path`` itself matches, not only an ancestor (find)."""
        text = os.fsdecode(path).strip("/")
        return any(m.match(text, exact=True) for m in self._lists)


def read_exclude_file(path: str) -> list[str]:
    """Patterns from a file, a line each: blank lines and lines starting
    with ``#`` are skipped, surrounding white space is dropped, and
    ``$VARIABLES`` are expanded (as restic does)."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = [line.strip() for line in f]
    except OSError as e:
        raise UsageError(f"cannot read exclude file {path}: {e.strerror}") from e
    return [os.path.expandvars(line) for line in lines if line and not line.startswith("#")]
