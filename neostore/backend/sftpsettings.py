"""Where an SFTP location points: parsing restic's spellings.

* ``sftp:[USER@]HOST[:PORT]:/PATH`` (``sftp:host:relative/path`` is
  relative to the login directory); a host may be an alias of
  ``~/.ssh/config``, whose ``HostName``, ``Port``, ``User``,
  ``IdentityFile`` and ``UserKnownHostsFile`` apply;
* ``sftp://[USER@]HOST[:PORT]//PATH`` (absolute; one slash: relative).

Nothing else is read from the environment: keys come from the SSH agent
(``SSH_AUTH_SOCK``), ``~/.ssh/id_*`` and the SSH configuration, host keys
from ``~/.ssh/known_hosts`` (or the configured files).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from ..errors import UsageError

_SHORT = re.compile(
    r"(?:(?P<user>[^@/:]+)@)?(?P<host>\[[0-9A-Fa-f:.]+\]|[^@/:\[\]]+)(?::(?P<port>\d+))?:(?P<path>.+)"
)


@dataclass(frozen=True)
class SftpLocation:
    host: str
    #: None: from the SSH configuration, else 22
    port: int | None
    #: None: from the SSH configuration, else the local user
    user: str | None
    #: absolute, or relative to the login directory; never ends with "/"
    path: str

    def __str__(self) -> str:
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"sftp:{user}{host}{port}:{self.path}"


def parse(location: str) -> SftpLocation:
    """The parts of an ``sftp:`` location; UsageError when malformed."""
    rest = location[len("sftp:") :]
    if rest.startswith("//"):
        url = urlsplit(location)
        try:
            port = url.port
        except ValueError:
            raise _malformed(location) from None
        path = unquote(url.path[1:]) if url.path.startswith("/") else ""
        found = SftpLocation(url.hostname or "", port, url.username, path)
    else:
        match = _SHORT.fullmatch(rest)
        if match is None:
            raise _malformed(location)
        port_text = match.group("port")
        found = SftpLocation(
            match.group("host").strip("[]"),
            int(port_text) if port_text else None,
            match.group("user"),
            match.group("path"),
        )
    path = found.path.rstrip("/") or ("/" if found.path.startswith("/") else "")
    if not found.host or not path or (found.port is not None and not 0 < found.port < 65536):
        raise _malformed(location)
    return SftpLocation(found.host, found.port, found.user, path)


def _malformed(location: str) -> UsageError:
    return UsageError(
        f"{location}: not an SFTP location; expected sftp:[USER@]HOST[:PORT]:/PATH "
        "or sftp://[USER@]HOST[:PORT]//PATH",
        option="repository",
    )
