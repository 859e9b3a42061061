"""Per-user local state: the config pin, snapshot chain heads, the
snapshots seen forgotten and the share lists and capabilities seen.

Unlike the cache, this is *security* state and is not rebuildable from the
repository: it is what lets a client notice a store that replays an old
config or hides snapshots. It lives under ``$NEOSTORE_STATE_DIR`` or
``$XDG_STATE_HOME/neostore`` (default ``~/.local/state/neostore``), one
JSON file per repository id (:func:`state_dir`: the platform's state
folder elsewhere).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import platformdirs

from .. import filelocks
from ..errors import IntegrityError, TamperingDetected


def state_dir() -> Path:
    """``$NEOSTORE_STATE_DIR``, else the platform's per-user state folder
    (``platformdirs``: ``$XDG_STATE_HOME/neostore`` or
    ``~/.local/state/neostore`` on Linux, as before it was used)."""
    explicit = os.environ.get("NEOSTORE_STATE_DIR")
    if explicit:
        return Path(explicit)
    return Path(platformdirs.user_state_dir("neostore", appauthor=False))


def cache_dir() -> Path:
    """``$NEOSTORE_CACHE_DIR``, else the platform's per-user cache folder
    (``$XDG_CACHE_HOME/neostore`` or ``~/.cache/neostore`` on Linux)."""
    explicit = os.environ.get("NEOSTORE_CACHE_DIR")
    if explicit:
        return Path(explicit)
    return Path(platformdirs.user_cache_dir("neostore", appauthor=False))


@contextlib.contextmanager
def _state(repo_id: bytes) -> Iterator[dict[str, Any]]:
    directory = state_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / f"{repo_id.hex()}.json"
    with filelocks.held(directory / f"{repo_id.hex()}.lock"):
        try:
            state = json.loads(path.read_text()) if path.exists() else {}
        except (OSError, ValueError) as e:
            # never silently forget what we knew: that would re-open
            # trust-on-first-use for a store that rolled things back
            raise IntegrityError(
                f"local security state {path} is unreadable ({e}); move it away to start over"
            ) from e
        before = json.dumps(state, sort_keys=True)
        yield state
        if json.dumps(state, sort_keys=True) != before:
            tmp = path.with_suffix(".tmp")
            with open(tmp, "w") as f:
                f.write(json.dumps(state, sort_keys=True))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)


def pin_config(repo_id: bytes, owner_vk: bytes, config_version: int) -> None:
    with _state(repo_id) as state:
        state["config"] = {"owner_vk": owner_vk.hex(), "config_version": config_version}


def check_config_pin(repo_id: bytes, owner_vk: bytes, config_version: int) -> None:
    with _state(repo_id) as state:
        pinned = state.get("config")
        if pinned is None:
            state["config"] = {"owner_vk": owner_vk.hex(), "config_version": config_version}
            return
        if pinned.get("owner_vk") != owner_vk.hex():
            raise TamperingDetected(
                "config: the repository's owner key changed since this machine last saw it"
            )
        if config_version < int(pinned.get("config_version", 0)):
            raise TamperingDetected(
                "config: older than the one this machine last saw (replayed config)"
            )
        pinned["config_version"] = config_version


def pin_target(repo_id: bytes, name: str, target_id: bytes) -> None:
    """Remember a target's id; a record with another id later is refused."""
    with _state(repo_id) as state:
        pinned = state.setdefault("targets", {}).setdefault(name, target_id.hex())
    if pinned != target_id.hex():
        raise TamperingDetected(
            f"target record {name}: replaced since this machine last saw it (different target id)"
        )


def pinned_target(repo_id: bytes, name: str) -> bytes | None:
    with _state(repo_id) as state:
        pinned = state.get("targets", {}).get(name)
    return bytes.fromhex(pinned) if pinned else None


def record_chain_head(
    repo_id: bytes, target_id: bytes, writer_id: bytes, seq: int, snapshot_id: bytes
) -> None:
    with _state(repo_id) as state:
        chains = state.setdefault("chains", {}).setdefault(target_id.hex(), {})
        current = chains.get(writer_id.hex())
        if current is None or seq > current[0]:
            chains[writer_id.hex()] = [seq, snapshot_id.hex()]


def chain_head(repo_id: bytes, target_id: bytes, writer_id: bytes) -> tuple[int, bytes] | None:
    with _state(repo_id) as state:
        current = state.get("chains", {}).get(target_id.hex(), {}).get(writer_id.hex())
    if current is None:
        return None
    return int(current[0]), bytes.fromhex(current[1])


def seen_heads(repo_id: bytes, target_id: bytes) -> dict[bytes, tuple[int, bytes]]:
    """Highest (seq, id) per writer this machine has seen in a target."""
    with _state(repo_id) as state:
        chains = state.get("chains", {}).get(target_id.hex(), {})
    return {bytes.fromhex(w): (int(v[0]), bytes.fromhex(v[1])) for w, v in chains.items()}


def key_hint(repo_id: bytes) -> str | None:
    """The key file this machine opened last (only orders the attempts)."""
    with _state(repo_id) as state:
        hint = state.get("key_hint")
    return hint if isinstance(hint, str) else None


def record_key_hint(repo_id: bytes, key_id: str) -> None:
    with _state(repo_id) as state:
        state["key_hint"] = key_id


def sharelist_version(repo_id: bytes, target_id: bytes) -> int:
    """The newest share list version this machine has seen for a target."""
    with _state(repo_id) as state:
        return int(state.get("sharelists", {}).get(target_id.hex(), 0))


def revoked_shares(repo_id: bytes, target_id: bytes) -> dict[bytes, int]:
    """Shares this machine has seen revoked (id -> time): they stay revoked."""
    with _state(repo_id) as state:
        seen = state.get("revoked_shares", {}).get(target_id.hex(), {})
    return {bytes.fromhex(k): int(v) for k, v in seen.items()}


def pin_sharelist(
    repo_id: bytes, target_id: bytes, version: int, revoked: dict[bytes, int]
) -> None:
    with _state(repo_id) as state:
        pinned = state.setdefault("sharelists", {})
        pinned[target_id.hex()] = max(version, int(pinned.get(target_id.hex(), 0)))
        seen = state.setdefault("revoked_shares", {}).setdefault(target_id.hex(), {})
        for share_id, when in revoked.items():
            seen.setdefault(share_id.hex(), when)


def seen_share_caps(repo_id: bytes, share_id: bytes) -> str | None:
    """The newest capability (object name) a share key saw on this machine."""
    with _state(repo_id) as state:
        found = state.get("share_heads", {}).get(share_id.hex())
    return found if isinstance(found, str) else None


def record_share_cap(repo_id: bytes, share_id: bytes, name: str) -> None:
    with _state(repo_id) as state:
        state.setdefault("share_heads", {})[share_id.hex()] = name


Remembered = tuple[bytes, int, bytes | None, bool]


def forgotten_snapshots(repo_id: bytes, target_id: bytes) -> dict[bytes, Remembered]:
    """Snapshots this machine saw named in the owner's forget records:
    id -> (writer id, seq, prev, whether it was seen gone from the store)."""
    with _state(repo_id) as state:
        seen = state.get("forgotten", {}).get(target_id.hex(), {})
    return {
        bytes.fromhex(sid): (
            bytes.fromhex(w),
            int(seq),
            bytes.fromhex(prev) if prev else None,
            bool(gone),
        )
        for sid, (w, seq, prev, gone) in seen.items()
    }


def remember_forgotten(
    repo_id: bytes, target_id: bytes, entries: dict[bytes, tuple[bytes, int, bytes | None]]
) -> None:
    with _state(repo_id) as state:
        seen = state.setdefault("forgotten", {}).setdefault(target_id.hex(), {})
        for sid, (writer_id, seq, prev) in entries.items():
            seen.setdefault(sid.hex(), [writer_id.hex(), seq, prev.hex() if prev else None, 0])


def confirm_forgotten(repo_id: bytes, target_id: bytes, snapshot_ids: list[bytes]) -> None:
    """Mark remembered forgotten snapshots as seen gone from the store."""
    with _state(repo_id) as state:
        seen = state.get("forgotten", {}).get(target_id.hex(), {})
        for sid in snapshot_ids:
            if sid.hex() in seen:
                seen[sid.hex()][3] = 1


def withdrawn_caps(repo_id: bytes, share_id: bytes) -> set[str]:
    """Capabilities (object names) a share key saw withdrawn on this machine."""
    with _state(repo_id) as state:
        return set(state.get("share_withdrawn", {}).get(share_id.hex(), []))


def remember_withdrawn(repo_id: bytes, share_id: bytes, names: set[str]) -> None:
    with _state(repo_id) as state:
        seen = state.setdefault("share_withdrawn", {}).setdefault(share_id.hex(), [])
        seen.extend(sorted(set(names) - set(seen)))


def future_pins(repo_id: bytes, target_id: bytes) -> dict[bytes, int]:
    """Snapshots that claimed a future time when this machine first listed
    them: id -> when that was."""
    with _state(repo_id) as state:
        pins = state.get("future_pins", {}).get(target_id.hex(), {})
    return {bytes.fromhex(sid): int(ns) for sid, ns in pins.items()}


def pin_future(repo_id: bytes, target_id: bytes, first_seen: dict[bytes, int]) -> None:
    with _state(repo_id) as state:
        pins = state.setdefault("future_pins", {}).setdefault(target_id.hex(), {})
        for sid, ns in first_seen.items():
            pins.setdefault(sid.hex(), ns)


def record_check(repo_id: bytes, outcome: dict[str, Any]) -> None:
    """What the last check of this repository on this machine found (for
    status displays; not security state)."""
    with _state(repo_id) as state:
        state["last_check"] = outcome


def last_check(repo_id: bytes) -> dict[str, Any] | None:
    with _state(repo_id) as state:
        found = state.get("last_check")
        return dict(found) if isinstance(found, dict) else None
