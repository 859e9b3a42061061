"""Writer identities: an Ed25519 key per key file that can write, certified
by the owner for a (target, epoch).

Two kinds of certificate exist. An owner key file signs its own on the fly
(``SIG_CERT``); a delegated key (role ``writer`` or ``read-write``) carries
one the owner signed when the key was made (``SIG_CERT_DELEGATED``). The
prefix tells a verifier which kind it is: blobs written by delegated keys
are not trusted for dedup by anyone else (docs/design.md, "Dedup trust").
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import IntegrityError, PermissionDenied
from . import crypto
from .codec import pack


def cert_message(
    repo_id: bytes, target_id: bytes, writer_id: bytes, writer_vk: bytes, epoch: int
) -> bytes:
    return pack([repo_id, target_id, writer_id, writer_vk, epoch])


@dataclass
class WriterIdentity:
    writer_id: bytes
    signing: crypto.SigningKey
    owner: crypto.SigningKey | None = None
    #: certificates signed in advance by the owner, by (target_id, epoch)
    certs: dict[tuple[bytes, int], bytes] = field(default_factory=dict)

    @property
    def verify_key(self) -> bytes:
        return self.signing.verify_key

    def cert(self, repo_id: bytes, target_id: bytes, epoch: int) -> bytes:
        if self.owner is not None:
            message = cert_message(repo_id, target_id, self.writer_id, self.verify_key, epoch)
            return self.owner.sign(crypto.SIG_CERT, message)
        found = self.certs.get((target_id, epoch))
        if found is None:
            raise PermissionDenied("this key holds no writer certificate for the target")
        return found


def delegated_cert(
    owner: crypto.SigningKey,
    repo_id: bytes,
    target_id: bytes,
    writer_id: bytes,
    writer_vk: bytes,
    epoch: int,
) -> bytes:
    message = cert_message(repo_id, target_id, writer_id, writer_vk, epoch)
    return owner.sign(crypto.SIG_CERT_DELEGATED, message)


def verify_writer(
    owner_vk: bytes,
    repo_id: bytes,
    target_id: bytes,
    writer_id: bytes,
    writer_vk: bytes,
    epoch: int,
    cert: bytes,
    what: str,
) -> bool:
    """Check a writer's certificate; True for an owner key's own writer,
    False for a delegated one. Raises IntegrityError when it is neither."""
    message = cert_message(repo_id, target_id, writer_id, writer_vk, epoch)
    try:
        crypto.verify(owner_vk, crypto.SIG_CERT, message, cert, what)
        return True
    except IntegrityError:
        pass
    crypto.verify(owner_vk, crypto.SIG_CERT_DELEGATED, message, cert, f"{what}: writer certificate")
    return False
