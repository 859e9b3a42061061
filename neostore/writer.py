"""Writer identities: an Ed25519 key per key file that can write, certified
by the owner for a (target, epoch)."""

from __future__ import annotations

from dataclasses import dataclass

from . import crypto
from .codec import pack
from .errors import IntegrityError


def cert_message(
    repo_id: bytes, target_id: bytes, writer_id: bytes, writer_vk: bytes, epoch: int
) -> bytes:
    return pack([repo_id, target_id, writer_id, writer_vk, epoch])


@dataclass
class WriterIdentity:
    writer_id: bytes
    signing: crypto.SigningKey
    owner: crypto.SigningKey | None = None

    @property
    def verify_key(self) -> bytes:
        return self.signing.verify_key

    def cert(self, repo_id: bytes, target_id: bytes, epoch: int) -> bytes:
        if self.owner is not None:
            message = cert_message(repo_id, target_id, self.writer_id, self.verify_key, epoch)
            return self.owner.sign(crypto.SIG_CERT, message)
        raise IntegrityError("this key holds no writer certificate for the target")


def verify_writer(
    owner_vk: bytes,
    repo_id: bytes,
    target_id: bytes,
    writer_id: bytes,
    writer_vk: bytes,
    epoch: int,
    cert: bytes,
    what: str,
) -> None:
    message = cert_message(repo_id, target_id, writer_id, writer_vk, epoch)
    crypto.verify(owner_vk, crypto.SIG_CERT, message, cert, f"{what}: writer certificate")
