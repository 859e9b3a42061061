"""The envelope shared by pack headers and index files.

``outer = msgpack([1, domain_id, epoch, writer_id, sealed])`` with
``sealed = nonce ‖ XChaCha20-Poly1305(index_key, msgpack([inner, sig,
writer_vk, cert]), AD = prefix ‖ repo_id ‖ domain_id ‖ epoch ‖ writer_id)``
and ``sig = Ed25519_writer(sig_prefix ‖ repo_id ‖ inner)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import IntegrityError
from . import crypto
from .codec import field, pack, unpack, unpack_parts
from .targets import Domain
from .writer import WriterIdentity, verify_writer

ENVELOPE_VERSION = 1


@dataclass(frozen=True)
class Envelope:
    domain_id: bytes
    epoch: int
    writer_id: bytes
    writer_vk: bytes
    body: dict[str, Any]
    #: written by an owner key's own writer (not a delegated key)
    by_owner: bool = True


def seal_envelope(
    body: dict[str, Any],
    *,
    repo_id: bytes,
    domain: Domain,
    target_id: bytes,
    writer: WriterIdentity,
    ad_prefix: bytes,
    sig_prefix: bytes,
) -> bytes:
    # the signature covers where the envelope belongs, not only what it says
    body = dict(body, target_id=target_id, domain_id=domain.domain_id, epoch=domain.epoch)
    inner = pack(body)
    signature = writer.signing.sign(sig_prefix + repo_id, inner)
    cert = writer.cert(repo_id, target_id, domain.epoch)
    plain = pack([inner, signature, writer.verify_key, cert])
    ad = ad_prefix + domain.header_ad(repo_id, writer.writer_id)
    sealed = crypto.aead_encrypt(domain.index_key, plain, ad)
    return pack([ENVELOPE_VERSION, domain.domain_id, domain.epoch, writer.writer_id, sealed])


def open_envelope(
    data: bytes,
    *,
    what: str,
    repo_id: bytes,
    owner_vk: bytes,
    domain_for: Callable[[bytes, int], Domain | None],
    ad_prefix: bytes,
    sig_prefix: bytes,
) -> Envelope | None:
    """Decrypt and verify; None when this key has no access to the domain."""
    outer = unpack(data, what)
    if not (isinstance(outer, list) and len(outer) == 5 and outer[0] == ENVELOPE_VERSION):
        raise IntegrityError(f"{what}: malformed envelope")
    _, domain_id, epoch, writer_id, sealed = outer
    if not (
        isinstance(domain_id, bytes) and isinstance(epoch, int) and isinstance(writer_id, bytes)
    ):
        raise IntegrityError(f"{what}: malformed envelope")
    domain = domain_for(domain_id, epoch)
    if domain is None:
        return None
    ad = ad_prefix + domain.header_ad(repo_id, writer_id)
    plain = crypto.aead_decrypt(domain.index_key, sealed, ad, what)
    inner, signature, writer_vk, cert = unpack_parts(plain, 4, f"{what} contents")
    crypto.verify(writer_vk, sig_prefix + repo_id, inner, signature, what)
    body = unpack(inner, what)
    target_id = field(body, "target_id", bytes, what)
    if (
        field(body, "domain_id", bytes, what) != domain_id
        or field(body, "epoch", int, what) != epoch
    ):
        raise IntegrityError(f"{what}: signed for another dedup domain or epoch")
    by_owner = verify_writer(owner_vk, repo_id, target_id, writer_id, writer_vk, epoch, cert, what)
    return Envelope(domain_id, epoch, writer_id, writer_vk, body, by_owner)
