"""The repository ``config`` object: owner-signed, public parameters."""

from __future__ import annotations

import time
from dataclasses import dataclass

from ..errors import IntegrityError, UnsupportedFormat
from . import crypto
from .codec import field, pack, unpack

FORMAT_VERSION = 1

DEFAULT_CHUNK_MIN = 256 * 1024
DEFAULT_CHUNK_AVG = 1024 * 1024
DEFAULT_CHUNK_MAX = 8 * 1024 * 1024
DEFAULT_PACK_SIZE = 16 * 1024 * 1024


@dataclass(frozen=True)
class Config:
    repo_id: bytes
    owner_vk: bytes
    config_version: int = 1
    chunk_min: int = DEFAULT_CHUNK_MIN
    chunk_avg: int = DEFAULT_CHUNK_AVG
    chunk_max: int = DEFAULT_CHUNK_MAX
    pack_size: int = DEFAULT_PACK_SIZE
    created_ns: int = 0
    format_version: int = FORMAT_VERSION

    def body(self) -> bytes:
        return pack(
            {
                "v": self.format_version,
                "repo_id": self.repo_id,
                "config_version": self.config_version,
                "chunker": {"min": self.chunk_min, "avg": self.chunk_avg, "max": self.chunk_max},
                "pack_size": self.pack_size,
                "owner_vk": self.owner_vk,
                "created": self.created_ns or time.time_ns(),
            }
        )


def encode_config(config: Config, owner: crypto.SigningKey) -> bytes:
    body = config.body()
    return pack([body, owner.sign(crypto.SIG_CONFIG, body)])


def decode_config(data: bytes) -> tuple[Config, bytes, bytes]:
    """Parse without verifying; returns (config, body, signature).

    The format version is checked first so that a newer repository gets a
    clear message even before a password is asked for.
    """
    what = "config"
    outer = unpack(data, what)
    if not (isinstance(outer, list) and len(outer) == 2):
        raise IntegrityError("config: malformed")
    body_bytes, signature = outer
    if not isinstance(body_bytes, bytes) or not isinstance(signature, bytes):
        raise IntegrityError("config: malformed")
    body = unpack(body_bytes, what)
    version = field(body, "v", int, what)
    if version > FORMAT_VERSION:
        raise UnsupportedFormat(
            f"repository format version {version} is newer than this neostore supports "
            f"({FORMAT_VERSION}); upgrade neostore"
        )
    chunker = field(body, "chunker", dict, what)
    config = Config(
        repo_id=field(body, "repo_id", bytes, what),
        owner_vk=field(body, "owner_vk", bytes, what),
        config_version=field(body, "config_version", int, what),
        chunk_min=field(chunker, "min", int, what),
        chunk_avg=field(chunker, "avg", int, what),
        chunk_max=field(chunker, "max", int, what),
        pack_size=field(body, "pack_size", int, what),
        created_ns=field(body, "created", int, what),
        format_version=version,
    )
    return config, body_bytes, signature


def verify_config(data: bytes, owner_vk: bytes) -> Config:
    config, body, signature = decode_config(data)
    crypto.verify(owner_vk, crypto.SIG_CONFIG, body, signature, "config")
    if config.owner_vk != owner_vk:
        raise IntegrityError("config: owner key does not match the key file")
    return config
