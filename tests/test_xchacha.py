"""The two XChaCha20-Poly1305 engines are the same cipher."""

from __future__ import annotations

import os

import pytest

from neostore.format import xchacha


def test_hchacha20_known_answer() -> None:
    # draft-irtf-cfrg-xchacha, section 2.2.1
    key = bytes(range(32))
    nonce = bytes.fromhex("000000090000004a0000000031415927")
    expected = "82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc"
    assert xchacha.hchacha20(key, nonce).hex() == expected


@pytest.mark.parametrize(
    "size",
    [0, 1, 63, 64, 1000, xchacha.FAST_MIN - 1, xchacha.FAST_MIN, xchacha.FAST_MIN + 1, 1 << 20],
)
def test_engines_agree_and_interoperate(size: int) -> None:
    key, nonce, ad = os.urandom(32), os.urandom(24), os.urandom(40)
    plaintext = os.urandom(size)
    by_sodium = xchacha.encrypt(key, nonce, plaintext, ad, engine="sodium")
    by_openssl = xchacha.encrypt(key, nonce, plaintext, ad, engine="openssl")
    assert by_sodium == by_openssl
    assert xchacha.encrypt(key, nonce, plaintext, ad) == by_sodium
    for engine in ("sodium", "openssl", "auto"):
        assert xchacha.decrypt(key, nonce, by_sodium, ad, engine=engine) == plaintext


@pytest.mark.parametrize("engine", ["sodium", "openssl"])
@pytest.mark.parametrize("size", [10, 200_000])
def test_tampering_fails_in_both_engines(engine: str, size: int) -> None:
    key, nonce, ad = os.urandom(32), os.urandom(24), b"ad"
    sealed = bytearray(xchacha.encrypt(key, nonce, os.urandom(size), ad))
    for position in (0, len(sealed) // 2, len(sealed) - 1):
        bad = bytearray(sealed)
        bad[position] ^= 0x80
        with pytest.raises(xchacha.AuthenticationFailed):
            xchacha.decrypt(key, nonce, bytes(bad), ad, engine=engine)
    with pytest.raises(xchacha.AuthenticationFailed):
        xchacha.decrypt(key, nonce, bytes(sealed), b"other ad", engine=engine)
    with pytest.raises(xchacha.AuthenticationFailed):
        xchacha.decrypt(key, os.urandom(24), bytes(sealed), ad, engine=engine)
