"""Finding the key file a password opens."""

from __future__ import annotations

from collections.abc import Callable

from ..backend.names import ObjectType
from ..errors import IntegrityError, NeostoreError, TamperedKeyFile, WrongPassword
from ..format import keyfile as keys
from . import objects
from .objects import ObjectStore


def open_with_password(
    store: ObjectStore,
    password: bytes,
    first: str | None = None,
    on_problem: Callable[[NeostoreError], None] | None = None,
) -> keys.KeyMaterial:
    """The key material of the first key file the password opens (each try
    costs one Argon2id run); key file ``first`` is tried before the others.
    A key file that is malformed (planted, corrupt) is skipped and reported
    to ``on_problem``, so it cannot lock anyone out; one whose contents were
    altered after the password sealed them is refused with
    :class:`TamperedKeyFile`."""
    names = sorted(store.list(ObjectType.KEYS))
    if first in names:
        names.remove(first)
        names.insert(0, first)
    if not names:
        raise IntegrityError("repository has no key files")
    tampered: TamperedKeyFile | None = None
    malformed: list[str] = []
    for name in names:
        try:
            material = keys.open_keyfile(store.load(objects.key_file(name)), name, password)
        except TamperedKeyFile as e:
            tampered = tampered or e
            continue
        except WrongPassword:
            continue
        except IntegrityError as e:
            malformed.append(name[:8])
            if on_problem is not None:
                on_problem(IntegrityError(f"skipped: {e}"))
            continue
        if material.key_id.hex() != name:
            tampered = tampered or TamperedKeyFile(
                f"key file {name[:8]} claims to be key {material.key_id.hex()[:8]}; refusing it"
            )
            continue
        return material
    if tampered is not None:
        raise tampered
    if malformed:
        raise WrongPassword(
            "wrong password: no key file opens with it (malformed key file(s), "
            f"maybe tampered: {', '.join(malformed)})"
        )
    raise WrongPassword("wrong password: no key file opens with it")
