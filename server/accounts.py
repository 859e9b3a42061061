"""Accounts: names, hashed tokens and grants, kept in ``DATA/accounts.json``.

Tokens are 256-bit random strings, so a fast hash is enough to store them
(a slow password hash would cost a KDF on every request). Management commands
change the file under an exclusive ``flock`` and replace it atomically;
running servers notice the new file by its inode, size and mtime, so grants
take effect without a restart and several server processes agree.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import os
import re
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import blake3

from neostore import filelocks
from neostore.fsutil import atomic_write

from .grants import Grant, parse_perms, parse_scope

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,63}")
_TOKEN_CONTEXT = b"neostore-server-v1-token\x00"


class AccountError(ValueError):
    """A management request that cannot be done (unknown account, bad name)."""


def hash_token(token: str) -> str:
    return blake3.blake3(_TOKEN_CONTEXT + token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)  # 256 bits, URL-safe: fits restic's rest: URLs


@dataclass(frozen=True, slots=True)
class Account:
    name: str
    grants: list[Grant]


def _grants(entry: dict[str, Any]) -> list[Grant]:
    return [Grant(g["repo"], g["scope"], frozenset(g["perms"])) for g in entry.get("grants", [])]


class AccountStore:
    def __init__(self, data_dir: str) -> None:
        self.path = os.path.join(data_dir, "accounts.json")
        self._lock_path = os.path.join(data_dir, "accounts.lock")
        self._cache_key: tuple[int, int, int] | None = None
        self._accounts: dict[str, Any] = {}
        self._by_hash: dict[str, str] = {}
        self._mutex = threading.Lock()

    # -- reading (server side) ------------------------------------------------

    def _current(self) -> dict[str, Any]:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return {}
        key = (st.st_ino, st.st_size, st.st_mtime_ns)
        with self._mutex:
            if key != self._cache_key:
                with open(self.path, "rb") as f:
                    self._accounts = json.load(f).get("accounts", {})
                self._by_hash = {a["token_hash"]: n for n, a in self._accounts.items()}
                self._cache_key = key
            return self._accounts

    def authenticate(self, name: str | None, token: str) -> Account | None:
        """The account a credential belongs to: ``name`` + token (HTTP Basic)
        or the token alone (bearer)."""
        accounts = self._current()
        digest = hash_token(token)
        if name is None:
            name = self._by_hash.get(digest)
            if name is None:
                return None
        entry = accounts.get(name)
        if entry is None or not hmac.compare_digest(entry["token_hash"], digest):
            return None
        return Account(name, _grants(entry))

    def list(self) -> list[dict[str, Any]]:
        accounts = self._current()
        return [
            {"name": n, "created": a.get("created"), "grants": a.get("grants", [])}
            for n, a in sorted(accounts.items())
        ]

    # -- changing (management commands) --------------------------------------

    @contextlib.contextmanager
    def _editing(self) -> Iterator[dict[str, Any]]:
        with filelocks.held(self._lock_path):
            try:
                with open(self.path, "rb") as f:
                    doc = json.load(f)
            except FileNotFoundError:
                doc = {"version": 1, "accounts": {}}
            yield doc["accounts"]
            atomic_write(self.path, json.dumps(doc, indent=1, sort_keys=True).encode())

    def add(self, name: str) -> str:
        """Create an account; returns its token (shown once, stored hashed)."""
        if not _NAME.fullmatch(name):
            raise AccountError(f"invalid account name {name!r}")
        token = new_token()
        with self._editing() as accounts:
            if name in accounts:
                raise AccountError(f"account {name!r} already exists")
            accounts[name] = {
                "token_hash": hash_token(token),
                "created": int(time.time()),
                "grants": [],
            }
        return token

    def remove(self, name: str) -> None:
        with self._editing() as accounts:
            if accounts.pop(name, None) is None:
                raise AccountError(f"no account {name!r}")

    def grant(self, name: str, repo: str, scope: str, perms: str) -> dict[str, Any]:
        scope = parse_scope(scope)
        wanted = parse_perms(perms)
        with self._editing() as accounts:
            entry = self._entry(accounts, name)
            for g in entry["grants"]:
                if g["repo"] == repo and g["scope"] == scope:
                    g["perms"] = sorted(set(g["perms"]) | set(wanted))
                    return dict(g)
            g = {"repo": repo, "scope": scope, "perms": wanted}
            entry["grants"].append(g)
            return dict(g)

    def revoke(self, name: str, repo: str, scope: str | None, perms: str | None) -> int:
        """Remove permissions (all of them when ``perms`` is None) from the
        account's grants on ``repo`` (in ``scope`` only, when given). Returns
        how many grants changed."""
        if scope is not None:
            scope = parse_scope(scope)
        dropped = set(parse_perms(perms)) if perms else None
        changed = 0
        with self._editing() as accounts:
            entry = self._entry(accounts, name)
            kept = []
            for g in entry["grants"]:
                if g["repo"] == repo and scope in (None, g["scope"]):
                    changed += 1
                    g["perms"] = (
                        [] if dropped is None else [p for p in g["perms"] if p not in dropped]
                    )
                if g["perms"]:
                    kept.append(g)
            entry["grants"] = kept
        return changed

    @staticmethod
    def _entry(accounts: dict[str, Any], name: str) -> dict[str, Any]:
        entry = accounts.get(name)
        if entry is None:
            raise AccountError(f"no account {name!r}")
        return entry  # type: ignore[no-any-return]
