"""S3 backend: a repository in a bucket of AWS S3 or any S3-compatible
service (Ceph RGW, MinIO, Garage …), through boto3.

Why boto3 and not obstore or OpenDAL (docs/design.md, "Storage backends",
has the figures): both Rust libraries keep one tokio runtime per process,
and a worker forked after the parent used it hangs, parent and child
alike (the runtime's epoll instance is shared across ``fork``); neostore's
snapshot and restore fork their workers after the repository is open.
boto3 is plain Python on urllib3: a forked child opens its own client.

* Layout: the same paths as a local repository under the location's prefix
  (``config``, ``keys/…``, ``data/ab/abcd…``).
* ``save`` is one PUT (multipart above :data:`MULTIPART_FROM`): S3 makes an
  object visible whole or not at all, so there are no temporaries.
* ``save_new`` is a conditional PUT (``If-None-Match: *``, which AWS, Ceph
  RGW and MinIO honour). A service that answers 501 to it gets a
  check-then-write, which two writers can race (docs/design.md says what
  that costs).
* Failures: 401/403 are "access denied" naming the location; a missing
  bucket is "no repository"; connection errors, timeouts, 408/429/5xx are
  :class:`~neostore.errors.TransientBackendError`, which the shared
  :class:`~.retry.RetryingBackend` retries (boto3's own retries are off,
  so there is one policy and one bound).
"""

from __future__ import annotations

import io
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from ..errors import NotFound, PermanentBackendError, TransientBackendError, UsageError
from .base import BufferedStream, ObjectStream, Payload, exists_by_size, joined
from .names import OBJECT_TYPES, relative_path, validate
from .options import BackendOptions
from .s3settings import S3Location, parse

T = TypeVar("T")
_RETRY_STATUS = {408, 429, 500, 502, 503, 504}
#: objects from this size on are sent in parts (of this size)
MULTIPART_FROM = 64 << 20

_live: weakref.WeakSet[S3Backend] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for backend in list(_live):
        backend._client = None  # the parent's connections stay the parent's
        backend._lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


class S3Backend:
    batch_reads = True  # a request costs milliseconds

    def __init__(self, location: str, options: BackendOptions | None = None) -> None:
        options = options or BackendOptions()
        self.where: S3Location = parse(location, options.env_prefix)
        self.location = location.rstrip("/")  # as the user wrote it
        self._options = options
        self._session: Any = None
        self._client: Any = None
        self._lock = threading.Lock()
        self._conditional = True  # cleared when the service refuses If-None-Match
        _live.add(self)

    def __reduce__(self) -> tuple[Any, tuple[str, BackendOptions]]:
        # to a spawned worker: opened again there, with its own connection
        return (type(self), (self.location, self._options))

    # -- transport ------------------------------------------------------------

    def _s3(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self._connect()
            return self._client

    def _connect(self) -> Any:
        import boto3
        from botocore.config import Config

        where = self.where
        if self._session is None:
            # kept across fork: a worker's client then reuses the loaded
            # service model (12 ms of CPU instead of 110 ms per process)
            self._session = boto3.session.Session(
                aws_access_key_id=where.account.get("access_key_id"),
                aws_secret_access_key=where.account.get("secret_access_key"),
                aws_session_token=where.account.get("token"),
                profile_name=where.profile,
                region_name=where.region,
            )
        session = self._session
        settings: dict[str, Any] = {
            "s3": {
                "addressing_style": "path" if where.path_style else "virtual",
                # TLS protects the body on the way; our objects authenticate themselves
                "payload_signing_enabled": False,
            },
            "retries": {"max_attempts": 1},  # RetryingBackend retries
            "connect_timeout": 10,
            "read_timeout": self._options.timeout,
            "max_pool_connections": 16,
            "request_checksum_calculation": "when_required",
            "response_checksum_validation": "when_required",
        }
        if where.endpoint is None and session.region_name is None:
            settings["region_name"] = "us-east-1"  # boto3 follows AWS's redirect to the bucket
        return session.client("s3", endpoint_url=where.endpoint, config=Config(**settings))

    def _call(self, what: str, call: Callable[[Any], T]) -> T:
        from botocore import exceptions as bx

        try:
            return call(self._s3())
        except bx.ClientError as e:
            raise self._client_error(what, e) from e
        except bx.NoCredentialsError as e:
            raise PermanentBackendError(
                f"{self.location}: no S3 credentials: set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE"
            ) from e
        except bx.SSLError as e:  # a certificate that fails checks: retrying will not help
            raise PermanentBackendError(
                f"{self.location}: TLS verification failed ({e}); for a private CA set "
                "AWS_CA_BUNDLE"
            ) from e
        except (bx.ConnectionError, bx.HTTPClientError, bx.IncompleteReadError) as e:
            # no connection, timeouts, a response cut short
            raise TransientBackendError(f"{self.location}: {what}: unreachable ({e})") from e
        except bx.BotoCoreError as e:  # a malformed request or setting: permanent
            raise PermanentBackendError(f"{self.location}: {what}: {e}") from e

    def _client_error(self, what: str, e: Any) -> Exception:
        error = e.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = _status(e)
        message = str(error.get("Message") or code or status)
        if code == "NoSuchBucket":
            return NotFound(f"{self.location}: bucket {self.where.bucket!r} does not exist")
        if status == 404 or code in ("NoSuchKey", "NotFound"):
            return NotFound(f"{what} does not exist")
        if status in (401, 403):
            return PermanentBackendError(
                f"{self.location}: access denied ({what}: {code or status}); check "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) and the "
                "account's rights"
            )
        if status in _RETRY_STATUS or code in ("SlowDown", "RequestTimeout"):
            return TransientBackendError(f"{self.location}: {what}: {status} {message}")
        return PermanentBackendError(f"{self.location}: {what}: {status} {message}")

    # -- Backend --------------------------------------------------------------

    def exists_repository(self) -> bool:
        return self.exists("config", "config")

    def create_repository(self) -> None:
        """Check the bucket is there (creating it when the options say so)."""
        if self.exists_repository():
            raise PermanentBackendError(f"{self.location}: a repository already exists here")
        bucket = self.where.bucket
        try:
            self._call("bucket", lambda s: s.head_bucket(Bucket=bucket))
        except NotFound:
            if not self._options.create_bucket:
                raise PermanentBackendError(
                    f"{self.location}: bucket {bucket!r} does not exist: create it, "
                    "or let init create it with this option",
                    option="create_bucket",
                ) from None
            self._call("create bucket", self._create_bucket)

    def _create_bucket(self, s3: Any) -> None:
        region = s3.meta.region_name
        if self.where.endpoint is None and region not in (None, "us-east-1"):
            s3.create_bucket(
                Bucket=self.where.bucket,
                CreateBucketConfiguration={"LocationConstraint": region},
            )
        else:
            s3.create_bucket(Bucket=self.where.bucket)

    def _key(self, otype: str, name: str) -> str:
        return self.where.prefix + relative_path(otype, name)

    def save(self, otype: str, name: str, data: Payload) -> None:
        key = self._key(otype, name)
        size = sum(map(len, data)) if isinstance(data, list) else len(data)
        if size >= MULTIPART_FROM:
            self._call(f"{otype}/{name}", lambda s: _multipart(s, self.where.bucket, key, data))
            return
        body = joined(data)
        self._call(
            f"{otype}/{name}",
            lambda s: s.put_object(Bucket=self.where.bucket, Key=key, Body=body),
        )

    def save_new(self, otype: str, name: str, data: Payload) -> bool:
        from botocore.exceptions import ClientError

        key = self._key(otype, name)
        body = joined(data)
        if not self._conditional:
            if self.exists(otype, name):
                return False
            self.save(otype, name, body)
            return True

        def put(s3: Any) -> int:
            """0 when written, else the status that refused it (412, 409, 501)."""
            try:
                s3.put_object(Bucket=self.where.bucket, Key=key, Body=body, IfNoneMatch="*")
            except ClientError as e:
                status = _status(e)
                if status in (409, 412, 501):
                    return status
                raise
            return 0

        for _ in range(20):
            refused = self._call(f"{otype}/{name}", put)
            if refused in (0, 412):
                return refused == 0
            if refused == 501:  # no conditional writes here: check, then write
                self._conditional = False
                return self.save_new(otype, name, body)
            # 409: a conditional write of the same name is in flight
            time.sleep(0.05)
            if self.exists(otype, name):
                return False
        raise TransientBackendError(
            f"{self.location}: {otype}/{name}: conditional write kept conflicting"
        )

    def create_stream(self, otype: str) -> ObjectStream:
        # the name (a hash of the bytes) is known at the end and S3 has no
        # rename: parts kept in memory, one upload on commit
        return BufferedStream(self, otype)

    def load(self, otype: str, name: str, offset: int = 0, length: int | None = None) -> bytes:
        from botocore.exceptions import ClientError

        if length is not None and length <= 0:
            return b""
        key = self._key(otype, name)
        extra: dict[str, str] = {}
        if offset or length is not None:
            end = "" if length is None else str(offset + length - 1)
            extra["Range"] = f"bytes={offset}-{end}"

        def get(s: Any) -> bytes:
            try:
                response = s.get_object(Bucket=self.where.bucket, Key=key, **extra)
            except ClientError as e:
                if e.response.get("Error", {}).get("Code") == "InvalidRange":
                    return b""  # the range starts at or past the end
                raise
            with response["Body"] as body:
                return bytes(body.read())

        data = self._call(f"{otype}/{name}", get)
        if length is not None and len(data) > length:
            raise PermanentBackendError(f"{otype}/{name}: the store sent more than the range")
        return data

    def size(self, otype: str, name: str) -> int:
        key = self._key(otype, name)
        head = self._call(
            f"{otype}/{name}", lambda s: s.head_object(Bucket=self.where.bucket, Key=key)
        )
        return int(head["ContentLength"])

    def exists(self, otype: str, name: str) -> bool:
        return exists_by_size(self.size, otype, name)

    def remove(self, otype: str, name: str) -> None:
        key = self._key(otype, name)
        # S3 answers a DELETE of nothing with success: the contract wants NotFound
        self.size(otype, name)
        self._call(f"{otype}/{name}", lambda s: s.delete_object(Bucket=self.where.bucket, Key=key))

    def list(self, otype: str) -> Iterator[tuple[str, int]]:
        if otype not in OBJECT_TYPES:
            raise UsageError(f"unknown object type {otype!r}")
        if otype == "config":
            if self.exists_repository():
                yield "config", self.size("config", "config")
            return
        start = f"{self.where.prefix}{otype}/"

        def listing(s: Any) -> list[tuple[str, int]]:
            found = []
            pages = s.get_paginator("list_objects_v2").paginate(
                Bucket=self.where.bucket, Prefix=start
            )
            for page in pages:
                for item in page.get("Contents", ()):
                    found.append((str(item["Key"]), int(item["Size"])))
            return found

        for key, size in self._call(f"list of {otype}", listing):
            parts = key[len(start) :].split("/")
            if otype == "data" and len(parts) == 2:
                parts = parts[1:]
            name = "/".join(parts)
            try:
                validate(otype, name)
            except UsageError:
                continue  # not ours (a stray object in the bucket)
            yield name, size

    def temporaries(self) -> Iterator[tuple[str, int]]:
        return iter(())  # a PUT is all or nothing; unfinished multipart uploads expire

    def remove_temporary(self, path: str) -> None:
        raise NotFound(f"{path}: an S3 repository keeps no temporary objects")


def _multipart(s3: Any, bucket: str, key: str, data: Payload) -> None:
    from boto3.s3.transfer import TransferConfig

    stream = _Buffers(data if isinstance(data, list) else [bytes(data)])
    config = TransferConfig(multipart_threshold=MULTIPART_FROM, multipart_chunksize=16 << 20)
    s3.upload_fileobj(stream, bucket, key, Config=config)


class _Buffers(io.RawIOBase):
    """The buffers of a payload read as one file, without joining them."""

    def __init__(self, parts: list[bytes]) -> None:
        self._parts = [memoryview(p) for p in parts if len(p)]
        self._at = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        target = memoryview(buffer).cast("B")
        filled = 0
        while filled < len(target) and self._parts:
            part = self._parts[0]
            n = min(len(target) - filled, len(part) - self._at)
            target[filled : filled + n] = part[self._at : self._at + n]
            filled += n
            self._at += n
            if self._at == len(part):
                self._parts.pop(0)
                self._at = 0
        return filled


def _status(error: Any) -> int:
    """The HTTP status of a boto3 ClientError (0 when it has none)."""
    return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
