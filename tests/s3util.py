"""Helpers for tests on the session's Ceph RADOS Gateway (the ``ceph``
fixture): its account as environment variables, buckets, and what a bucket
holds, seen from below neostore's Backend API."""

from __future__ import annotations

import uuid
from typing import Any

import boto3
from botocore.config import Config


def account_env(ceph: Any) -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": ceph.access_key,
        "AWS_SECRET_ACCESS_KEY": ceph.secret_key,
        "AWS_DEFAULT_REGION": ceph.region,
    }


def client(ceph: Any) -> Any:
    return boto3.session.Session().client(
        "s3",
        endpoint_url=ceph.endpoint,
        aws_access_key_id=ceph.access_key,
        aws_secret_access_key=ceph.secret_key,
        region_name=ceph.region,
        config=Config(s3={"addressing_style": "path"}),
    )


def make_bucket(ceph: Any, bucket: str | None = None) -> str:
    """A bucket (a new one unless named), created behind neostore's back."""
    bucket = bucket or f"t-{uuid.uuid4().hex[:16]}"
    s3 = client(ceph)
    try:
        s3.create_bucket(Bucket=bucket)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    return bucket


def location(ceph: Any, bucket: str, prefix: str = "") -> str:
    return f"s3:{ceph.endpoint}/{bucket}" + (f"/{prefix}" if prefix else "")


def objects(ceph: Any, bucket: str, prefix: str = "") -> dict[str, bytes]:
    """Every object under ``prefix`` by its key below the prefix."""
    s3 = client(ceph)
    start = f"{prefix}/" if prefix else ""
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=start):
        for item in page.get("Contents", ()):
            key = item["Key"]
            found[key[len(start) :]] = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return found
