"""Escaped names for destinations with Windows' rules or case folding
(neostore/restorer/names.py), from Windows-style inputs: the names
``PureWindowsPath`` gives for paths a Windows user would type or a
Linux snapshot would carry."""

from __future__ import annotations

import os
import random
from pathlib import Path, PureWindowsPath

import pytest

from neostore.restorer.names import POSIX, WINDOWS, NameRules, escape, fold, plan, problem
from neostore.restorer.probe import destination_rules


def _name(path: str) -> bytes:
    return PureWindowsPath(path).name.encode()


@pytest.mark.parametrize(
    ("path", "escaped"),
    [
        (r"C:\Users\me\CON", "CO%4E"),
        (r"C:\Users\me\con.txt", "co%6E.txt"),
        (r"C:\Users\me\Aux.tar.gz", "Au%78.tar.gz"),
        (r"C:\Users\me\LPT9", "LPT%39"),
        (r"C:\Users\me\COM¹.log", "COM%C2%B9.log"),
        (r"C:\Users\me\notes.", "notes%2E"),
        (r"C:\Users\me\draft .", "draft%20%2E"),
    ],
)
def test_windows_names_are_escaped(path: str, escaped: str) -> None:
    name = _name(path)
    assert problem(name, WINDOWS) is not None
    assert escape(name, WINDOWS) == escaped.encode()
    assert problem(escape(name, WINDOWS), WINDOWS) is None


@pytest.mark.parametrize(
    "name", [b"a?b", b"x:y", b'q"uote', b"<tag>", b"pipe|", b"star*", b"back\\slash", b"bell\x07"]
)
def test_forbidden_characters_become_hex(name: bytes) -> None:
    escaped = escape(name, WINDOWS)
    assert problem(escaped, WINDOWS) is None
    assert b"%" in escaped
    assert problem(name, POSIX) is None  # Linux takes them as they are


def test_names_that_are_fine_stay() -> None:
    for path in (r"C:\a\Report.txt", r"C:\a\CONSOLE", r"C:\a\con-notes.txt", r"C:\a\.hidden"):
        assert problem(_name(path), WINDOWS) is None, path
    assert plan([b"Report.txt", b"other.txt"], WINDOWS) == {}


def test_not_utf8_and_overlong() -> None:
    raw = b"caf\xe9.txt"  # Latin-1 from an old Linux
    assert problem(raw, WINDOWS) == "not valid UTF-8"
    assert escape(raw, WINDOWS) == b"caf%E9.txt"
    long = ("語" * 300 + ".txt").encode()  # 900 bytes, 304 UTF-16 units
    assert problem(long, WINDOWS) == "longer than 255 characters"
    assert problem(long, POSIX) == "longer than 255 bytes"
    for rules in (WINDOWS, POSIX):
        short = escape(long, rules)
        assert problem(short, rules) is None and short.endswith(b".txt")
        assert short != escape(("語" * 299 + "x.txt").encode(), rules)  # the hash tells them apart


def test_case_families_keep_the_first_and_number_the_rest() -> None:
    listing = sorted([b"Report.txt", b"report.txt", b"REPORT.TXT", b"report~2.txt"])
    renames = plan(listing, WINDOWS)
    assert set(renames) == {b"Report.txt", b"report.txt"}
    taken = {fold(n, WINDOWS) for n in listing if n not in renames}
    written = [r.restored_as for r in renames.values()]
    # unique, including against the real "report~2.txt", and stable
    assert len({fold(n, WINDOWS) for n in written} | taken) == len(listing)
    assert plan(listing, WINDOWS) == renames
    assert "ignoring case" in renames[b"report.txt"].reason


def test_unicode_normalisation_folds_too() -> None:
    composed, decomposed = "é.txt".encode(), "e\u0301.txt".encode()
    assert fold(composed, WINDOWS) == fold(decomposed, WINDOWS)
    assert list(plan([composed, decomposed], NameRules(case_insensitive=True))) == [decomposed]


def test_plans_are_collision_free_on_random_listings() -> None:
    rng = random.Random(19)
    alphabet = "aAbB?:. ~%2"
    for _ in range(300):
        listing = sorted(
            {
                "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 5))).encode()
                for _ in range(12)
            }
            - {b".", b".."}
        )
        renames = plan(listing, WINDOWS)
        final = [renames[n].restored_as if n in renames else n for n in listing]
        assert all(problem(n, WINDOWS) is None for n in final), (listing, final)
        assert len({fold(n, WINDOWS) for n in final}) == len(listing), (listing, final)


def test_a_plain_linux_folder_has_posix_rules_and_keeps_no_probe(tmp_path: Path) -> None:
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert destination_rules(fd) == POSIX  # so plan() takes its fast path
    finally:
        os.close(fd)
    assert list(tmp_path.iterdir()) == []
