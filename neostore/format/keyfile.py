"""Password-wrapped key files (``keys/<key id>``) and the key material inside.

A key file is ``msgpack([header, sealed])``: ``header`` is the msgpack of the
public parameters (Argon2id cost, salt, key id, role, target) and ``sealed``
is ``nonce ‖ XChaCha20-Poly1305(Argon2id(password), material, AD = header)``.
"""

from __future__ import annotations

import hmac
import math
import os
import socket
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from nacl import pwhash

from .. import owners
from ..errors import IntegrityError, TamperedKeyFile, UsageError, WrongPassword
from . import crypto
from .codec import field as get_field
from .codec import pack, unpack, unpack_parts

MAGIC = "neostore-key"
KEYFILE_VERSION = 1
ALG = "argon2id13+xchacha20poly1305"


class Role(StrEnum):
    """What a key file lets its holder do (docs/design.md, "Roles")."""

    OWNER = "owner"
    WRITER = "writer"
    READER = "reader"
    READ_WRITE = "read-write"
    SHARE = "share"


def _role(value: object, what: str) -> Role:
    if not (isinstance(value, str) and value in tuple(Role)):
        raise IntegrityError(f"{what}: unknown role {value!r}")
    return Role(value)


@dataclass(frozen=True)
class KdfParams:
    ops: int
    mem: int  # bytes


#: new key files: RFC 9106's second recommended option (64 MiB, 3 passes;
#: borg 2 and kopia use 64 MiB), so every command fits small machines
DEFAULT_KDF = KdfParams(ops=3, mem=64 * 1024 * 1024)
#: the stronger choice a user can make (``--kdf strong``)
STRONG_KDF = KdfParams(ops=3, mem=256 * 1024 * 1024)
#: the choices by name
KDF_PROFILES = {"default": DEFAULT_KDF, "strong": STRONG_KDF}
#: The floor: files below it are refused.
FLOOR_KDF = KdfParams(ops=2, mem=64 * 1024 * 1024)
MAX_KDF_MEM = 4 * 1024 * 1024 * 1024
#: a planted key file must not be able to stall the client
MAX_KDF_OPS = 16


#: passwords estimated below this many bits are called weak (``init`` warns)
WEAK_BELOW_BITS = 60


def password_bits(password: bytes) -> float:
    """A rough strength estimate: length × log2 of the alphabet its
    character classes span (lower, upper, digits, the rest). Generous to
    repeated or dictionary text, so it only tells a clearly weak password,
    never a strong one."""
    text = password.decode("utf-8", "replace")
    if not text:
        return 0.0
    alphabet = sum(
        size
        for size, present in (
            (26, any(c.islower() for c in text)),
            (26, any(c.isupper() for c in text)),
            (10, any(c.isdigit() for c in text)),
            (33, any(not c.isalnum() for c in text)),
        )
        if present
    )
    return len(text) * math.log2(max(alphabet, 2))


def kdf_profile(name: str) -> KdfParams:
    """``default`` or ``strong``."""
    found = KDF_PROFILES.get(name)
    if found is None:
        raise UsageError(f"{name!r}: use {' or '.join(KDF_PROFILES)}", option="kdf")
    return found


@dataclass(frozen=True)
class KeyMaterial:
    """What a key file carries. Fields a role does not need are absent (None)."""

    key_id: bytes
    role: Role
    repo_id: bytes
    owner_vk: bytes
    target: str | None = None
    owner_seed: bytes | None = None
    master: bytes | None = None
    writer_seed: bytes | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        body: dict[str, Any] = {
            "repo_id": self.repo_id,
            "owner_vk": self.owner_vk,
            "role": self.role,
            "target": self.target,
            "extra": self.extra,
        }
        for name in ("owner_seed", "master", "writer_seed"):
            value = getattr(self, name)
            if value is not None:
                body[name] = value
        return pack(body)

    @classmethod
    def from_bytes(cls, key_id: bytes, data: bytes) -> KeyMaterial:
        what = "key material"
        body = unpack(data, what)
        if not isinstance(body, dict):
            raise IntegrityError(f"{what}: malformed")
        target = body.get("target")
        extra = body.get("extra") or {}
        if not (target is None or isinstance(target, str)) or not isinstance(extra, dict):
            raise IntegrityError(f"{what}: malformed")

        def secret(name: str) -> bytes | None:
            value = body.get(name)
            if value is not None and not (isinstance(value, bytes) and len(value) == 32):
                raise IntegrityError(f"{what}: malformed {name}")
            return value

        return cls(
            key_id=key_id,
            role=_role(body.get("role"), what),
            repo_id=get_field(body, "repo_id", bytes, what),
            owner_vk=get_field(body, "owner_vk", bytes, what),
            target=target,
            owner_seed=secret("owner_seed"),
            master=secret("master"),
            writer_seed=secret("writer_seed"),
            extra=extra,
        )


def _wrapping_key(password: bytes, salt: bytes, params: KdfParams) -> bytes:
    return pwhash.argon2id.kdf(
        crypto.KEY_LEN, password, salt, opslimit=params.ops, memlimit=params.mem
    )


def _password_check(wrapping: bytes) -> bytes:
    """A 16-byte verifier of the password: tells a wrong password from a
    key file whose contents were altered. It confirms a guess no faster than
    the AEAD tag already does (one Argon2id run per guess either way)."""
    return crypto.derive_key(crypto.CTX_KEYFILE_CHECK, wrapping)[:16]


def encode_keyfile(
    material: KeyMaterial, password: bytes, params: KdfParams | None = None
) -> bytes:
    params = params or DEFAULT_KDF
    if not password:
        raise UsageError("empty password")
    salt = os.urandom(pwhash.argon2id.SALTBYTES)
    wrapping = _wrapping_key(password, salt, params)
    header = pack(
        {
            "magic": MAGIC,
            "v": KEYFILE_VERSION,
            "alg": ALG,
            "ops": params.ops,
            "mem": params.mem,
            "salt": salt,
            "key_id": material.key_id,
            "role": material.role,
            "target": material.target,
            "created": time.time_ns(),
            "who": crypto.seal(
                crypto.owner_box_public_key(material.owner_vk),
                pack([socket.gethostname().encode(), _user().encode()]),
            ),
            "check": _password_check(wrapping),
        }
    )
    sealed = crypto.aead_encrypt(wrapping, material.to_bytes(), crypto.AD_KEYFILE + header)
    return pack([header, sealed])


def _user() -> str:
    return owners.login_name()


@dataclass(frozen=True)
class KeyFileHeader:
    key_id: bytes
    role: Role
    target: str | None
    params: KdfParams
    salt: bytes
    created_ns: int
    #: the creating host and user in clear (key files made before they
    #: were sealed), else None
    host: str | None
    user: str | None
    #: host and user sealed to the owner key (:func:`who_made`)
    who: bytes | None
    check: bytes | None
    raw: bytes


def who_made(header: KeyFileHeader, owner: crypto.SigningKey | None) -> tuple[str, str] | None:
    """The host and user that made a key file: in clear in old files,
    else for owner keys only (None for other keys)."""
    if header.host is not None and header.user is not None:
        return header.host, header.user
    if header.who is None or owner is None:
        return None
    what = f"key file {header.key_id.hex()[:8]}"
    sealed = crypto.unseal(crypto.owner_box_private_key(owner), header.who, what)
    host, user = unpack_parts(sealed, 2, what)
    return host.decode(errors="replace"), user.decode(errors="replace")


def decode_keyfile_header(data: bytes, name: str) -> tuple[KeyFileHeader, bytes]:
    what = f"key file {name}"
    outer = unpack(data, what)
    if not (
        isinstance(outer, list) and len(outer) == 2 and all(isinstance(x, bytes) for x in outer)
    ):
        raise IntegrityError(f"{what}: malformed")
    raw, sealed = outer
    header = unpack(raw, what)
    if get_field(header, "magic", str, what) != MAGIC:
        raise IntegrityError(f"{what}: not a neostore key file")
    if get_field(header, "v", int, what) != KEYFILE_VERSION or header.get("alg") != ALG:
        raise IntegrityError(f"{what}: unsupported key file version or algorithm")
    params = KdfParams(get_field(header, "ops", int, what), get_field(header, "mem", int, what))
    salt = get_field(header, "salt", bytes, what)
    if len(salt) != pwhash.argon2id.SALTBYTES:
        raise IntegrityError(f"{what}: malformed salt")
    if not (
        FLOOR_KDF.ops <= params.ops <= MAX_KDF_OPS and FLOOR_KDF.mem <= params.mem <= MAX_KDF_MEM
    ):
        raise IntegrityError(f"{what}: Argon2id parameters outside the accepted range")
    return (
        KeyFileHeader(
            key_id=get_field(header, "key_id", bytes, what),
            role=_role(header.get("role"), what),
            target=header.get("target"),
            params=params,
            salt=salt,
            created_ns=get_field(header, "created", int, what),
            host=_text(header.get("host")),
            user=_text(header.get("user")),
            who=header.get("who") if isinstance(header.get("who"), bytes) else None,
            check=header.get("check") if isinstance(header.get("check"), bytes) else None,
            raw=raw,
        ),
        sealed,
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def open_keyfile(data: bytes, name: str, password: bytes) -> KeyMaterial:
    """Decrypt a key file. Raises WrongPassword when the password does not
    fit, TamperedKeyFile when it fits but the file was altered since."""
    header, sealed = decode_keyfile_header(data, name)
    wrapping = _wrapping_key(password, header.salt, header.params)
    fits = header.check is not None and hmac.compare_digest(header.check, _password_check(wrapping))
    tampered = TamperedKeyFile(
        f"key file {name[:8]} was altered after it was written (the password fits, its "
        "contents do not authenticate); refusing it"
    )
    try:
        plain = crypto.aead_decrypt(
            wrapping, sealed, crypto.AD_KEYFILE + header.raw, f"key file {name}"
        )
    except IntegrityError as e:
        if fits:
            raise tampered from e
        raise WrongPassword("wrong password") from e
    material = KeyMaterial.from_bytes(header.key_id, plain)
    if material.role != header.role or material.target != header.target:
        raise tampered
    return material
