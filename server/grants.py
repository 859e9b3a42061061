"""What an account may do: grants, scopes and the permission a request needs.

Pure functions, no I/O. A grant gives permissions on one repository (or
``*``, every repository) within a scope:

* ``repo`` — every object;
* ``target:T`` — T's own objects (``snapshots/T/…``, ``sharelists/T/…``,
  ``forget/T/…``, ``heads/T/…``, ``targets/T``) plus the pools every member of the
  repository needs (``config``, ``keys``, ``data``, ``index``, ``locks``),
  and ``shares/…`` for reading and appending only: T's writers publish to
  T's shares, whose names the server cannot tie to a target (capabilities
  are sealed; a writer of another target cannot make one a share holder
  accepts), and may not delete other targets' capabilities;
* ``share:S`` — ``shares/S/…`` plus the same pools.
"""

from __future__ import annotations

from dataclasses import dataclass

PERMISSIONS = ("read", "append", "delete", "admin")

#: objects every member of a repository needs, whatever its scope
SHARED_TYPES = frozenset({"config", "keys", "data", "index", "locks"})
#: types whose first name segment is a target name
TARGET_TYPES = frozenset({"snapshots", "sharelists", "forget", "targets", "heads"})


class GrantError(ValueError):
    """A malformed scope or permission list."""


def parse_scope(scope: str) -> str:
    if scope == "repo":
        return scope
    kind, _, name = scope.partition(":")
    if kind not in ("target", "share") or not name:
        raise GrantError(f"invalid scope {scope!r}: expected repo, target:NAME or share:NAME")
    return scope


def parse_perms(perms: str) -> list[str]:
    items = [p.strip() for p in perms.split(",") if p.strip()]
    bad = [p for p in items if p not in PERMISSIONS]
    if bad or not items:
        raise GrantError(f"invalid permissions {perms!r}: expected some of {','.join(PERMISSIONS)}")
    return sorted(set(items), key=PERMISSIONS.index)


@dataclass(frozen=True, slots=True)
class Grant:
    repo: str  # a repository name or "*"
    scope: str
    perms: frozenset[str]

    def applies_to(self, repo: str) -> bool:
        return self.repo in ("*", repo)


def covers(scope: str, otype: str, name: str | None) -> bool:
    """Does ``scope`` cover object ``otype/name`` (``name`` None: the whole
    listing of ``otype``, filtered later with :func:`covers` per entry)?"""
    if scope == "repo" or otype in SHARED_TYPES:
        return True
    kind, _, owner = scope.partition(":")
    if name is None:  # a listing: allowed, entries are filtered
        return (kind == "target" and (otype in TARGET_TYPES or otype == "shares")) or (
            kind == "share" and otype == "shares"
        )
    first = name.split("/", 1)[0]
    if kind == "target":
        return (otype in TARGET_TYPES and first == owner) or otype == "shares"
    return otype == "shares" and first == owner


def allowed(grants: list[Grant], repo: str, perm: str, otype: str, name: str | None) -> bool:
    return any(
        g.applies_to(repo)
        and perm in g.perms
        and covers(g.scope, otype, name)
        and not (otype == "shares" and g.scope.startswith("target:") and perm == "delete")
        for g in grants
    )


def repo_wide(grants: list[Grant], repo: str, perm: str) -> bool:
    """Does some grant give ``perm`` on the whole repository?"""
    return any(g.applies_to(repo) and perm in g.perms and g.scope == "repo" for g in grants)
