"""Primitives: BLAKE3 hashing and key derivation, XChaCha20-Poly1305, Ed25519,
sealed boxes and PADME padding. Every function is pure (bytes in, bytes out).

Domain separation: every hash input, AEAD associated data and signed message
starts with one of the ``CTX_*`` / ``AD_*`` / ``SIG_*`` strings below; the
full list is in docs/format.md.
"""

from __future__ import annotations

import os

import blake3
from nacl import bindings as sodium
from nacl import exceptions as nacl_exceptions

from ..errors import IntegrityError
from . import xchacha

# BLAKE3 derive_key contexts (globally unique, hardcoded, as BLAKE3 asks).
CTX_ID_KEY = "neostore-v1 2026-11 domain id_key"
CTX_CONV_KEY = "neostore-v1 2026-11 domain conv_key"
CTX_INDEX_KEY = "neostore-v1 2026-11 domain index_key"
CTX_CHUNKER_SEED = "neostore-v1 2026-11 domain chunker_seed"
CTX_DOMAIN_SECRET = "neostore-v1 2026-11 domain secret from master"  # noqa: S105 (a label)
CTX_TARGET_SEAL = "neostore-v1 2026-11 target seal key from master"
CTX_KEYFILE = "neostore-v1 2026-11 key file wrapping key"
CTX_KEYFILE_CHECK = "neostore-v1 2026-11 key file password check"
CTX_WRITER_HEAD = "neostore-v1 2026-11 writer chain head key"
CTX_SHARELIST_KEY = "neostore-v1 2026-11 target share list key from master"

# AEAD associated-data prefixes.
AD_BLOB = b"neostore-v1-blob"
AD_PACK_HEADER = b"neostore-v1-pack-header"
AD_INDEX = b"neostore-v1-index"
AD_KEYFILE = b"neostore-v1-keyfile"
AD_SHARELIST = b"neostore-v1-sharelist"
AD_WRITER_HEAD = b"neostore-v1-head"

# Signature message prefixes.
SIG_CONFIG = b"neostore-v1-config"
SIG_TARGET = b"neostore-v1-target"
SIG_CERT = b"neostore-v1-writer-cert"
SIG_CERT_DELEGATED = b"neostore-v1-delegated-writer-cert"
SIG_SHARELIST = b"neostore-v1-sharelist"
SIG_SHARE_CAP = b"neostore-v1-share-cap"
SIG_SHARE_WITHDRAW = b"neostore-v1-share-withdraw"
SIG_FORGET = b"neostore-v1-forget"
SIG_PACK = b"neostore-v1-pack"
SIG_INDEX = b"neostore-v1-index"
SIG_SNAPSHOT = b"neostore-v1-snapshot"

KEY_LEN = 32
NONCE_LEN = 24
TAG_LEN = 16


def content_hash(data: bytes | memoryview) -> bytes:
    """``d`` in the design: the plain BLAKE3 of a blob's plaintext."""
    return blake3.blake3(data, max_threads=1).digest()


def object_hash(data: bytes | memoryview) -> bytes:
    """Name of a content-addressed object: BLAKE3 of its stored bytes."""
    return blake3.blake3(data).digest()


def keyed_hash(key: bytes, *parts: bytes) -> bytes:
    hasher = blake3.blake3(key=key)
    for part in parts:
        hasher.update(part)
    return hasher.digest()


def derive_key(context: str, material: bytes) -> bytes:
    return blake3.blake3(material, derive_key_context=context).digest()


def aead_encrypt(key: bytes, plaintext: bytes | memoryview, ad: bytes) -> bytes:
    """Returns ``nonce ‖ ciphertext ‖ tag`` (XChaCha20-Poly1305) with a fresh
    random nonce."""
    nonce = os.urandom(NONCE_LEN)
    return nonce + xchacha.encrypt(key, nonce, plaintext, ad)


def _octets(value: object, what: str) -> bytes:
    """Bytes from a decoded object, or IntegrityError (never ``bytes(n)``:
    an integer there would allocate n bytes)."""
    if not isinstance(value, bytes | bytearray | memoryview):
        raise IntegrityError(f"{what}: malformed (bytes expected)")
    return bytes(value)


def aead_decrypt(key: bytes, stored: bytes | memoryview, ad: bytes, what: str) -> bytes:
    stored = _octets(stored, what)
    if len(stored) < NONCE_LEN + TAG_LEN:
        raise IntegrityError(f"{what}: too short to be an encrypted object")
    try:
        return xchacha.decrypt(key, stored[:NONCE_LEN], stored[NONCE_LEN:], ad)
    except xchacha.AuthenticationFailed as e:
        raise IntegrityError(f"{what}: authentication failed (corrupt or tampered)") from e


class SigningKey:
    """Ed25519 signing key built from a 32-byte seed."""

    def __init__(self, seed: bytes) -> None:
        public, secret = sodium.crypto_sign_seed_keypair(seed)
        self.seed = seed
        self.verify_key: bytes = public
        self._secret: bytes = secret

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(os.urandom(32))

    def sign(self, prefix: bytes, message: bytes) -> bytes:
        signed = sodium.crypto_sign(prefix + message, self._secret)
        return signed[:64]


def verify(verify_key: bytes, prefix: bytes, message: bytes, signature: bytes, what: str) -> None:
    signed = _octets(signature, what) + prefix + _octets(message, what)
    try:
        sodium.crypto_sign_open(signed, _octets(verify_key, what))
    except (nacl_exceptions.BadSignatureError, nacl_exceptions.CryptoError, ValueError) as e:
        raise IntegrityError(f"{what}: signature does not verify") from e


def owner_box_public_key(owner_vk: bytes) -> bytes:
    """The X25519 public key of an Ed25519 key (libsodium's conversion):
    what key-file metadata is sealed to, so that only owner keys read it."""
    try:
        return sodium.crypto_sign_ed25519_pk_to_curve25519(_octets(owner_vk, "owner key"))
    except (nacl_exceptions.RuntimeError, nacl_exceptions.CryptoError, ValueError) as e:
        raise IntegrityError("owner key: not a valid Ed25519 public key") from e


def owner_box_private_key(owner: SigningKey) -> bytes:
    return sodium.crypto_sign_ed25519_sk_to_curve25519(owner._secret)


def box_public_key(private_key: bytes) -> bytes:
    return sodium.crypto_scalarmult_base(private_key)


def seal(public_key: bytes, plaintext: bytes) -> bytes:
    return sodium.crypto_box_seal(plaintext, public_key)


def unseal(private_key: bytes, sealed: bytes, what: str) -> bytes:
    public_key = box_public_key(private_key)
    try:
        return sodium.crypto_box_seal_open(_octets(sealed, what), public_key, private_key)
    except (nacl_exceptions.CryptoError, ValueError) as e:
        raise IntegrityError(f"{what}: cannot be opened with this target's key") from e


def padme(length: int) -> int:
    """PADME padded length (Nikitin et al., 2019): leaks O(log log L) bits."""
    if length < 2:
        return length
    exponent = length.bit_length() - 1
    size_bits = exponent.bit_length()
    low_bits = exponent - size_bits
    mask = (1 << low_bits) - 1
    return (length + mask) & ~mask
