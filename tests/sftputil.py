"""Helpers for tests on the session's OpenSSH server (the ``sshd``
fixture): a home directory whose ``~/.ssh/config`` names the server's
throwaway user key and known_hosts, as a user's own would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: the host alias ``~/.ssh/config`` gives the test server
ALIAS = "neostore-test-sftp"


def ssh_home(sshd: Any, home: Path, known_hosts: str | None = None) -> Path:
    """``home`` with a ``.ssh/config`` for the server (its host key known
    unless another known_hosts file is named)."""
    (home / ".ssh").mkdir(parents=True, exist_ok=True)
    (home / ".ssh" / "config").write_text(
        f"Host {ALIAS}\n"
        f"  HostName {sshd.host}\n"
        f"  Port {sshd.port}\n"
        f"  User {sshd.user}\n"
        f"  IdentityFile {sshd.identity}\n"
        f"  UserKnownHostsFile {known_hosts or sshd.known_hosts}\n"
    )
    return home


def location(path: Path) -> str:
    return f"sftp:{ALIAS}:{path}"
