"""Where an S3 location points and with which account: parsing restic's
spellings and reading the usual AWS environment and profile files.

Locations (restic's spellings):

* ``s3:https://HOST[:PORT]/BUCKET[/PREFIX]`` (``s3:http://…``): an
  S3-compatible service at an endpoint, path-style requests;
* ``s3:s3.amazonaws.com/BUCKET[/PREFIX]`` (any ``s3…amazonaws.com`` host):
  restic's spelling for AWS;
* ``s3:BUCKET[/PREFIX]``: a bucket on AWS, virtual-hosted requests, the
  region from the environment, the profile, or asked of AWS.

The account and region come from boto3's usual chain: ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_DEFAULT_REGION``,
``AWS_PROFILE`` and its sections of ``~/.aws/credentials`` and
``~/.aws/config``, then the machine's role. With an
``env_prefix`` (``NEOSTORE_FROM_`` for the source of ``copy``) and an
account of its own (``NEOSTORE_FROM_AWS_ACCESS_KEY_ID`` or
``NEOSTORE_FROM_AWS_PROFILE`` set), every variable is read with that
prefix instead, so two accounts never mix; without one, the source uses
the usual account.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ..errors import UsageError

_AWS_HOST = re.compile(r"s3([.-][a-z0-9-]+)*\.amazonaws\.com(\.cn)?", re.IGNORECASE)
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str  # "" or "path/" (always ends with "/")
    endpoint: str | None  # None: AWS (boto3 finds the bucket's region)
    region: str | None
    path_style: bool
    #: an explicit account (a prefixed environment); empty: boto3's usual chain
    account: dict[str, str] = field(default_factory=dict, repr=False)
    profile: str | None = None


def parse(location: str, env_prefix: str = "") -> S3Location:
    """An :class:`S3Location` from ``s3:…`` and the environment."""
    rest = location[3:]
    endpoint: str | None = None
    if rest.startswith(("http://", "https://")):
        parts = urlsplit(rest)
        if not parts.hostname:
            raise UsageError(
                f"{location}: expected s3:https://HOST[:PORT]/BUCKET[/PREFIX]",
                option="repository",
            )
        endpoint = f"{parts.scheme}://{parts.netloc}"
        path = parts.path
    else:
        host, _, path = rest.partition("/")
        if _AWS_HOST.fullmatch(host):
            endpoint = f"https://{host}"
        else:
            path = rest
    bucket, _, prefix = path.strip("/").partition("/")
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise UsageError(
            f"{location}: {bucket or '(none)'!r} is not a bucket name", option="repository"
        )
    prefix = prefix.strip("/")
    own = bool(env_prefix) and any(
        os.environ.get(env_prefix + v) for v in ("AWS_ACCESS_KEY_ID", "AWS_PROFILE")
    )
    env = _Env(env_prefix if own else "")  # no account of its own: the usual one
    account: dict[str, str] = {}
    if own:
        key, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
        if key and secret:
            account = {"access_key_id": key, "secret_access_key": secret}
            token = env.get("AWS_SESSION_TOKEN")
            if token:
                account["token"] = token
    region = env.get("AWS_DEFAULT_REGION") or env.get("AWS_REGION")
    aws = endpoint is None or bool(_AWS_HOST.fullmatch(urlsplit(endpoint).hostname or ""))
    lookup = (env.get("NEOSTORE_S3_BUCKET_LOOKUP") or "auto").lower()
    if lookup not in ("auto", "path", "dns"):
        raise UsageError(f"NEOSTORE_S3_BUCKET_LOOKUP={lookup}: expected auto, path or dns")
    # AWS: virtual-hosted requests (path style is deprecated there), but
    # bucket names with dots do not fit a TLS wildcard; other services: path
    path_style = lookup == "path" or (lookup == "auto" and (not aws or "." in bucket))
    if aws and endpoint is not None and region is None:
        found = re.search(r"s3[.-]([a-z]{2}(-[a-z]+)+-\d)\.", urlsplit(endpoint).hostname or "")
        region = found.group(1) if found else None
    return S3Location(
        bucket=bucket,
        prefix=f"{prefix}/" if prefix else "",
        endpoint=None if endpoint is not None and aws else endpoint,
        region=region,
        path_style=path_style,
        account=account,
        profile=env.get("AWS_PROFILE") if own and not account else None,
    )


class _Env:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def get(self, name: str) -> str | None:
        return os.environ.get(self.prefix + name) or None
