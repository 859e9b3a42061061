"""HTTP(S) backend: a repository on neostore-server (or any server speaking
its protocol, ``docs/server.md``).

* TLS is verified against the system CAs, a given CA file, or a pinned
  SHA-256 certificate fingerprint (for the server's self-signed certificate);
  a pinned fingerprint that does not match is a hard error naming both.
* One urllib3 pool per process, shared by threads; after ``fork`` a child
  starts with an empty pool (sockets and TLS state are never shared between
  processes).
* Failures worth retrying (connection errors, timeouts, 408/429/5xx other
  than 507) are raised as TransientBackendError; :func:`.open_backend`
  wraps this backend in a :class:`~.retry.RetryingBackend`, which retries
  the requests that are safe to repeat.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import ssl
import threading
import weakref
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import urllib3
from urllib3.exceptions import HTTPError, SSLError

from ..errors import (
    NotFound,
    PermanentBackendError,
    TransientBackendError,
    UsageError,
)
from .base import BufferedStream, ObjectStream, Payload, exists_by_size
from .names import CONTENT_ADDRESSED, validate, validate_type
from .options import BackendOptions, Credentials

V2 = "application/vnd.x.restic.rest.v2"
_RETRY_STATUS = {408, 429, 500, 502, 503, 504}
_VERBS = {"GET": "read", "HEAD": "read", "POST": "write", "DELETE": "delete"}

_live: weakref.WeakSet[HttpBackend] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for backend in list(_live):
        backend._pool = None  # the parent's sockets stay the parent's


os.register_at_fork(after_in_child=_after_fork_in_child)


def normalise_fingerprint(text: str) -> str:
    """``SHA256:<64 hex>`` from what a user may paste (colons, case, prefix)."""
    body = text.strip()
    if body.upper().startswith("SHA256:"):
        body = body[7:]
    body = body.replace(":", "").lower()
    if len(body) != 64 or any(c not in "0123456789abcdef" for c in body):
        raise UsageError(
            f"invalid certificate fingerprint {text!r}: expected SHA256:<64 hex digits>"
        )
    return "SHA256:" + body


def credentials_from_env(
    url_user: str | None, url_token: str | None, env_prefix: str = "NEOSTORE_SERVER"
) -> Credentials | None:
    """Credentials from the URL, the environment or a credentials file
    (``NEOSTORE_SERVER_CREDENTIALS``: JSON ``{"user": ..., "token": ...}``).
    ``env_prefix`` names the variables (``NEOSTORE_FROM_SERVER`` for the
    source of ``copy``, so one server's token never goes to another)."""
    token = os.environ.get(f"{env_prefix}_TOKEN")
    user = os.environ.get(f"{env_prefix}_USER")
    path = os.environ.get(f"{env_prefix}_CREDENTIALS")
    if token:
        return Credentials(user or None, token)
    if url_token:
        return Credentials(url_user, url_token)
    if path:
        try:
            with open(path, "rb") as f:
                doc = json.load(f)
            return Credentials(doc.get("user") or None, str(doc["token"]))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise UsageError(f"cannot read server credentials from {path}: {e}") from e
    return None


class HttpBackend:
    batch_reads = True  # a request costs ~1 ms even on localhost
    #: a repository may be a path of several folders (restic's REST servers)
    nested_paths = False

    def __init__(self, url: str, options: BackendOptions | None = None) -> None:
        options = options or BackendOptions()
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(f"invalid server URL {url!r}")
        repo_path = parts.path.strip("/")
        if not repo_path or ("/" in repo_path and not self.nested_paths):
            raise UsageError(f"{url}: expected https://HOST:PORT/REPOSITORY")
        credentials = options.credentials
        if credentials is None and options.credentials_env:
            credentials = credentials_from_env(
                parts.username, parts.password, options.credentials_env
            )
        elif credentials is None and parts.password:
            credentials = Credentials(parts.username, parts.password)
        if credentials is not None and parts.scheme == "http" and not options.insecure_http:
            raise UsageError(
                f"{parts.scheme}://{parts.hostname}: refusing to send the account's credentials "
                "over plain http, where anyone on the way can read and reuse them; use "
                "https://, or allow it with this option",
                option="insecure_http",
            )
        self._env = options.credentials_env or "NEOSTORE_SERVER"
        host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
        netloc = f"{host}:{parts.port}" if parts.port else host
        self._base = urlunsplit((parts.scheme, netloc, "/" + quote(repo_path) + "/", "", ""))
        self.location = self._base
        self._headers = {"Accept": V2, "User-Agent": "neostore"}
        if credentials is not None:
            self._headers["Authorization"] = credentials.header()
        fingerprint = options.server_fingerprint
        self._fingerprint = normalise_fingerprint(fingerprint) if fingerprint else None
        self._ca_file = options.server_ca
        self._https = parts.scheme == "https"
        self._address = (parts.hostname, parts.port or (443 if self._https else 80))
        self._timeout = urllib3.Timeout(connect=10.0, read=options.timeout)
        self._pool: urllib3.PoolManager | None = None
        self._pool_lock = threading.Lock()
        self._opened_with = (url, options)
        _live.add(self)

    def __reduce__(self) -> tuple[Any, tuple[str, BackendOptions]]:
        # to a spawned worker: opened again there, with its own connections
        return (type(self), self._opened_with)

    # -- transport ------------------------------------------------------------

    def _manager(self) -> urllib3.PoolManager:
        with self._pool_lock:
            if self._pool is None:
                kwargs: dict[str, Any] = {"maxsize": 8, "block": False, "retries": False}
                if self._https:
                    if self._fingerprint:
                        # the pin replaces CA and host name checks
                        kwargs["cert_reqs"] = ssl.CERT_NONE
                        kwargs["assert_fingerprint"] = self._fingerprint[7:]
                    else:
                        kwargs["cert_reqs"] = ssl.CERT_REQUIRED
                        if self._ca_file:
                            kwargs["ca_certs"] = self._ca_file
                self._pool = urllib3.PoolManager(**kwargs)
            return self._pool

    def _url(self, otype: str, name: str | None) -> str:
        if otype == "config":
            return self._base + "config"
        if name is None:
            validate_type(otype)
            return f"{self._base}{otype}/"
        validate(otype, name)
        return f"{self._base}{otype}/{self._name_in_url(name)}"

    def _name_in_url(self, name: str) -> str:
        return name

    def _name_listed(self, otype: str, listed: str) -> str:
        """A name as the server's listing spells it, in the usual form."""
        return listed

    def _request(
        self,
        method: str,
        url: str,
        what: str,
        body: Payload | None = None,
        headers: dict[str, str] | None = None,
        expect: tuple[int, ...] = (200,),
    ) -> urllib3.BaseHTTPResponse:
        """One request. A failure worth retrying (a broken connection, a
        timeout, 408/429/5xx) is a TransientBackendError: retrying is the
        business of a :class:`~.retry.RetryingBackend` around this one."""
        all_headers = dict(self._headers)
        if headers:
            all_headers.update(headers)
        if isinstance(body, list):
            all_headers["Content-Length"] = str(sum(len(p) for p in body))
        try:
            response = self._manager().request(
                method,
                url,
                body=_body(body),
                headers=all_headers,
                timeout=self._timeout,
                preload_content=True,
                redirect=False,
            )
        except SSLError as e:
            if _is_verification_failure(e):
                raise self._tls_error(e) from e
            # the connection broke during or after the handshake
            raise TransientBackendError(
                f"{self.location}: {what}: server unreachable ({_reason(e)})"
            ) from e
        except (HTTPError, OSError) as e:
            raise TransientBackendError(
                f"{self.location}: {what}: server unreachable ({_reason(e)})"
            ) from e
        if response.status not in expect:
            raise self._status_error(method, response, what)
        return response

    def _tls_error(self, e: SSLError) -> Exception:
        if self._fingerprint and "fingerprint" in str(e).lower():
            actual = "unknown"
            with contextlib.suppress(OSError, ssl.SSLError, ValueError):
                pem = ssl.get_server_certificate(self._address, timeout=10)
                actual = "SHA256:" + hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()
            return PermanentBackendError(
                f"{self.location}: the server's certificate has fingerprint {actual}, "
                f"not the pinned {self._fingerprint}: refusing to talk to it"
            )
        return PermanentBackendError(
            f"{self.location}: TLS verification failed ({_reason(e)}); for a self-signed "
            "certificate pin its fingerprint",
            option="server_fingerprint",
        )

    def _status_error(
        self, method: str, response: urllib3.BaseHTTPResponse, what: str
    ) -> Exception:
        status = response.status
        detail = response.data[:200].decode("utf-8", "replace").strip()
        if status == 404:
            return NotFound(f"{what} does not exist")
        if status == 401:
            return PermanentBackendError(
                f"{self.location}: the server refused the credentials (401); set "
                f"{self._env}_TOKEN (and {self._env}_USER) or {self._env}_CREDENTIALS"
            )
        if status == 403:
            verb = _VERBS.get(method, method.lower())
            return PermanentBackendError(
                f"{self.location}: this account may not {verb} {what} "
                f"(server answered 403: {detail})"
            )
        if status == 507:
            return PermanentBackendError(
                f"{self.location}: {what}: server storage full or over quota"
            )
        cls = TransientBackendError if status in _RETRY_STATUS else PermanentBackendError
        return cls(f"{self.location}: {what}: server answered {status} {detail}".rstrip())

    # -- Backend --------------------------------------------------------------

    def exists_repository(self) -> bool:
        return self.exists("config", "config")

    def create_repository(self) -> None:
        self._request(
            "POST", self._base + "?create=true&format=neostore", "create repository", body=b""
        )

    def save(self, otype: str, name: str, data: Payload) -> None:
        self._request(
            "POST",
            self._url(otype, name),
            f"{otype}/{name}",
            body=data,
        )

    def save_new(self, otype: str, name: str, data: Payload) -> bool:
        response = self._request(
            "POST",
            self._url(otype, name),
            f"{otype}/{name}",
            body=data,
            headers={"If-None-Match": "*"},
            expect=(200, 412),
        )
        return response.status == 200

    def create_stream(self, otype: str) -> ObjectStream:
        # a pack's name (the hash of its bytes) is known only at the end and
        # a POST carries a whole object: kept in memory, uploaded on commit
        if otype not in CONTENT_ADDRESSED:
            raise PermanentBackendError(f"no streamed objects of type {otype!r}")
        return BufferedStream(self, otype)

    def load(self, otype: str, name: str, offset: int = 0, length: int | None = None) -> bytes:
        if length is not None and length <= 0:
            return b""
        end = "" if length is None else str(offset + length - 1)
        response = self._request(
            "GET",
            self._url(otype, name),
            f"{otype}/{name}",
            headers={"Range": f"bytes={offset}-{end}"},
            expect=(200, 206, 416),
        )
        if response.status == 416:
            return b""  # the range starts at or past the end
        data = response.data
        if response.status == 200:  # a server that ignored Range
            data = data[offset : None if length is None else offset + length]
        elif length is not None and len(data) > length:
            raise PermanentBackendError(f"{otype}/{name}: server sent more than the range asked")
        return bytes(data)

    def size(self, otype: str, name: str) -> int:
        response = self._request("HEAD", self._url(otype, name), f"{otype}/{name}")
        try:
            return int(response.headers["Content-Length"])
        except (KeyError, ValueError) as e:
            raise PermanentBackendError(f"{otype}/{name}: server sent no size") from e

    def exists(self, otype: str, name: str) -> bool:
        return exists_by_size(self.size, otype, name)

    def remove(self, otype: str, name: str) -> None:
        self._request("DELETE", self._url(otype, name), f"{otype}/{name}")

    def temporaries(self) -> Iterator[tuple[str, int]]:
        return iter(())  # the server removes its own upload leftovers

    def remove_temporary(self, path: str) -> None:
        raise NotFound(f"{path}: the server keeps no temporary files in view")

    def list(self, otype: str) -> Iterator[tuple[str, int]]:
        response = self._request("GET", self._url(otype, None), f"list of {otype}")
        if response.headers.get("Content-Type", "").split(";")[0].strip() != V2:
            raise PermanentBackendError(f"{self.location}: the server does not speak protocol v2")
        try:
            entries = json.loads(response.data)
            items = [(self._name_listed(otype, str(e["name"])), int(e["size"])) for e in entries]
        except (ValueError, KeyError, TypeError) as e:
            raise PermanentBackendError(f"{self.location}: malformed listing of {otype}") from e
        for name, size in items:
            try:
                validate(otype, name)
            except UsageError:
                continue  # not ours to interpret (the server checks names too)
            yield name, size


def _is_verification_failure(error: BaseException) -> bool:
    """A certificate that failed checks (wrong pin, unknown CA, wrong host),
    as opposed to a connection that broke during the TLS handshake."""
    seen: list[BaseException] = []
    todo: list[Any] = [error]
    while todo:
        item = todo.pop()
        if not isinstance(item, BaseException) or item in seen:
            continue
        seen.append(item)
        if isinstance(item, ssl.SSLCertVerificationError):
            return True
        text = str(item).lower()
        if "fingerprint" in text or "certificate verify failed" in text or "hostname" in text:
            return True
        todo += [item.__cause__, item.__context__, *item.args]
    return False


def _body(body: Payload | None) -> Any:
    """What urllib3 sends: buffers in order (fresh for every attempt)."""
    return iter(body) if isinstance(body, list) else body


def _reason(e: BaseException) -> str:
    reason = getattr(e, "reason", None)
    return str(reason or e).splitlines()[0][:200]
