"""Names a destination cannot hold, and the names they are restored under.

A snapshot's names are whatever its source file system allowed: on Linux
any bytes but ``/`` and NUL. A destination may refuse some (FAT, exFAT,
NTFS and Windows: the characters ``<>:"\\|?*`` and controls, trailing
dots and spaces, the device names ``CON``, ``PRN``, ``AUX``, ``NUL``,
``COM0``–``COM9``, ``LPT0``–``LPT9`` with any extension, names that are
not Unicode, over 255 UTF-16 units; every file system: names over its
``NAME_MAX``), and a case-insensitive one holds only one of ``Report.txt``
and ``report.txt`` — writing the second silently replaces the first.

:func:`plan` decides, before anything of a directory is written, which of
its entries cannot keep their names, and what they are restored as. The
escaped name is a function of the directory's listing alone, so a later
restore into the same folder (delta, ``--overwrite if-changed``,
``--delete``) finds the same files under the same names:

1. Entries that can keep their names keep them, in listing order (the
   snapshot's, sorted by name bytes): of ``Report.txt`` and
   ``report.txt`` on a case-insensitive destination, ``Report.txt``.
2. An invalid name is escaped: each refused byte becomes ``%XX`` (its
   value in hex), trailing dots and spaces too; a device name has its last
   letter escaped (``CON.txt`` → ``CO%4E.txt``); a name still too long
   keeps its start and extension and gains ``~`` and 8 hex digits of its
   BLAKE3 hash.
3. A name taken (by step 1 or an earlier escaped name; compared ignoring
   case and Unicode normalisation on a case-insensitive destination) gets
   ``~2``, ``~3``, … before its extension: ``report~2.txt``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from ..format import crypto

#: characters Windows refuses in names (besides "/" and NUL, refused everywhere)
FORBIDDEN = frozenset(b'<>:"\\|?*') | frozenset(range(1, 32))
_DEVICES = {"CON", "PRN", "AUX", "NUL"} | {
    f"{kind}{n}" for kind in ("COM", "LPT") for n in (*"0123456789", "¹", "²", "³")
}
_ESCAPE = ord("%")


@dataclass(frozen=True)
class NameRules:
    """What a destination's names may be."""

    #: Windows' rules (reserved characters and device names, no trailing
    #: dot or space, valid Unicode, length in UTF-16 units)
    windows: bool = False
    #: two names that differ only in case (or Unicode normalisation) are one
    case_insensitive: bool = False
    #: the longest name: bytes, or UTF-16 units under Windows' rules
    name_max: int = 255


POSIX = NameRules()
WINDOWS = NameRules(windows=True, case_insensitive=True)


def problem(name: bytes, rules: NameRules) -> str | None:
    """Why the destination cannot hold ``name`` as it is, or None."""
    if rules.windows:
        try:
            text = name.decode()
        except UnicodeDecodeError:
            return "not valid UTF-8"
        if any(b in FORBIDDEN for b in name):
            return 'a character Windows file systems refuse (<>:"\\|?* or a control)'
        if name[-1:] in (b".", b" "):
            return "ends with a dot or space"
        if _device(text):
            return "a Windows device name"
        if len(text.encode("utf-16-le")) // 2 > rules.name_max:
            return f"longer than {rules.name_max} characters"
    elif len(name) > rules.name_max:
        return f"longer than {rules.name_max} bytes"
    return None


def _device(text: str) -> bool:
    base = text.split(".", 1)[0].rstrip(" ").upper()
    return base in _DEVICES


def fold(name: bytes, rules: NameRules) -> bytes:
    """The key two names share when the destination holds only one of them."""
    if not rules.case_insensitive:
        return name
    text = name.decode("utf-8", "surrogateescape")
    return unicodedata.normalize("NFC", text).casefold().encode("utf-8", "surrogateescape")


def escape(name: bytes, rules: NameRules) -> bytes:
    """A name the destination holds, made from ``name`` (step 2 above)."""
    if rules.windows:
        name = _escape_bytes(name)
        text = name.decode()
        if _device(text):
            stem, dot, ext = text.partition(".")
            last = b"".join(b"%%%02X" % b for b in stem[-1].encode())
            name = stem[:-1].encode() + last + (dot + ext).encode()
    if _length(name, rules) > rules.name_max:
        name = _shorten(name, rules)
    return name


def _escape_bytes(name: bytes) -> bytes:
    out = bytearray()
    text = name.decode("utf-8", "surrogateescape")
    trailing = len(text) - len(text.rstrip(". "))
    for i, char in enumerate(text):
        raw = char.encode("utf-8", "surrogateescape")
        if 0xDC80 <= ord(char) <= 0xDCFF or raw[0] in FORBIDDEN or i >= len(text) - trailing:
            out += b"".join(b"%%%02X" % b for b in raw)
        else:
            out += raw
    return bytes(out)


def _length(name: bytes, rules: NameRules) -> int:
    if rules.windows:
        return len(name.decode("utf-8", "surrogateescape").encode("utf-16-le", "surrogatepass"))
    return len(name)


def _split(name: bytes) -> tuple[bytes, bytes]:
    """Stem and extension (from the last dot; none for a leading dot or a
    long one)."""
    dot = name.rfind(b".")
    if dot <= 0 or len(name) - dot > 16:
        return name, b""
    return name[:dot], name[dot:]


def _shorten(name: bytes, rules: NameRules) -> bytes:
    stem, ext = _split(name)
    tail = b"~" + crypto.content_hash(name)[:4].hex().encode() + ext
    text = stem.decode("utf-8", "surrogateescape")
    while text and _length(text.encode("utf-8", "surrogateescape") + tail, rules) > rules.name_max:
        text = text[:-1]
    return text.encode("utf-8", "surrogateescape") + tail


def _numbered(name: bytes, n: int, rules: NameRules) -> bytes:
    stem, ext = _split(name)
    candidate = stem + b"~%d" % n + ext
    if _length(candidate, rules) > rules.name_max:
        candidate = _shorten(name, rules)[: -len(ext) or None] + b"~%d" % n + ext
    return candidate


@dataclass(frozen=True)
class Rename:
    """An entry restored under another name, and why."""

    name: bytes
    restored_as: bytes
    reason: str


def plan(names: Iterable[bytes], rules: NameRules) -> dict[bytes, Rename]:
    """The entries of one directory listing (in listing order) that cannot
    keep their names at the destination, by name (see the module's text)."""
    names = list(names)
    if rules == POSIX and max(map(len, names), default=0) <= rules.name_max:
        return {}  # the common case, at no cost per name
    taken: dict[bytes, bytes] = {}
    moved: list[tuple[bytes, str]] = []
    for name in names:
        why = problem(name, rules)
        key = fold(name, rules)
        if why is None and key not in taken:
            taken[key] = name
        else:
            moved.append((name, why or f"same name as {_show(taken[key])} ignoring case"))
    out: dict[bytes, Rename] = {}
    for name, why in moved:
        base = escape(name, rules) if problem(name, rules) else name
        candidate, n = base, 2
        while fold(candidate, rules) in taken:
            candidate, n = _numbered(base, n, rules), n + 1
        taken[fold(candidate, rules)] = candidate
        out[name] = Rename(name, candidate, why)
    return out


def _show(name: bytes) -> str:
    return name.decode("utf-8", "backslashreplace")
