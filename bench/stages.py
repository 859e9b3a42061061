"""Micro-benchmark of the snapshot stages, so a regression points to its stage.

    python -m bench stages [--mib 64]

Each stage runs alone, single-threaded, on the same seeded inputs: large
incompressible chunks (~1 MiB, the typical big-file blob) and small text
files (~10 KB, the typical source file). Printed per stage: MB/s and
microseconds per blob. Stages: chunk (keyed FastCDC), hash (d, blob id and
key), compress (zstd 3), encrypt (pad + XChaCha20-Poly1305), pack (header,
signature), upload (local backend: temp file, fsync, rename).
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Callable, Sequence

import zstandard

from neostore.backend import LocalBackend
from neostore.format import crypto
from neostore.format.blob import Ref, encrypt_blob, make_ref
from neostore.format.chunker import Chunker
from neostore.format.config import Config
from neostore.format.pack import PackBuilder
from neostore.format.targets import DATA, Domain
from neostore.format.writer import WriterIdentity
from neostore.runtime import tune_malloc

REPO_ID = b"r" * 16
DOMAIN = Domain(b"d" * 16, 1, b"k" * 32)
WRITER = WriterIdentity(b"w" * 16, crypto.SigningKey(b"s" * 32), owner=crypto.SigningKey(b"o" * 32))


def _inputs(mib: int) -> dict[str, list[bytes]]:
    rng = random.Random(42)
    words = [rng.randbytes(rng.randint(2, 9)).hex() for _ in range(4000)]
    big = [rng.randbytes(1024 * 1024) for _ in range(mib)]
    small = []
    for _ in range(mib * 100):
        text = " ".join(rng.choice(words) for _ in range(rng.randint(300, 1500)))
        small.append(text.encode())
    return {"1 MiB random": big, "~10 KB text": small}


def _time(
    stage: str, label: str, items: Sequence[object], nbytes: int, fn: Callable[[object], object]
) -> None:
    started = time.perf_counter()
    for item in items:
        fn(item)
    elapsed = time.perf_counter() - started
    print(
        f"{stage:<9} {label:<13} {nbytes / elapsed / 1e6:9.1f} MB/s "
        f"{elapsed / len(items) * 1e6:9.1f} us/blob"
    )


def _pack_all(pack_size: int, refs: list[Ref], stored: list[bytes]) -> list[bytes]:
    packs: list[bytes] = []
    builder = PackBuilder()
    for ref, blob in zip(refs, stored, strict=True):
        builder.add(DATA, ref.blob_id, blob)
        if builder.size >= pack_size:
            packs.append(_finish(builder))
            builder = PackBuilder()
    if builder.entries:
        packs.append(_finish(builder))
    return packs


def _finish(builder: PackBuilder) -> list[bytes]:
    return builder.finish(repo_id=REPO_ID, domain=DOMAIN, target_id=b"t" * 16, writer=WRITER)[1]


def _stages(label: str, blobs: list[bytes], config: Config, backend: LocalBackend) -> None:
    chunker = Chunker(config, DOMAIN.chunker_seed)
    compressor = zstandard.ZstdCompressor(level=3, write_content_size=True)
    nbytes = sum(len(b) for b in blobs)
    joined = b"".join(blobs)
    _time("chunk", label, [joined], nbytes, lambda d: sum(1 for _ in chunker.cut_buffer(d)))  # type: ignore[arg-type]
    refs = [make_ref(DOMAIN, DATA, b) for b in blobs]
    _time("hash", label, blobs, nbytes, lambda b: make_ref(DOMAIN, DATA, b))  # type: ignore[arg-type]
    _time("compress", label, blobs, nbytes, compressor.compress)
    pairs = list(zip(refs, blobs, strict=True))
    _time("encrypt", label, pairs, nbytes, lambda p: encrypt_blob(REPO_ID, DATA, *p))  # type: ignore[misc]
    stored = [encrypt_blob(REPO_ID, DATA, r, b) for r, b in pairs]
    _time("pack", label, [None], nbytes, lambda _: _pack_all(config.pack_size, refs, stored))
    packs = _pack_all(config.pack_size, refs, stored)
    stored_bytes = sum(len(p) for p in packs)
    _time(
        "upload",
        label,
        packs,
        stored_bytes,
        lambda p: backend.save("data", crypto.object_hash(p).hex(), p),
    )  # type: ignore[arg-type]


def run(mib: int) -> None:
    config = Config(repo_id=REPO_ID, owner_vk=WRITER.verify_key)
    with tempfile.TemporaryDirectory(prefix="neostore-stages-") as tmp:
        backend = LocalBackend(tmp)
        backend.create_repository()
        for label, blobs in _inputs(mib).items():
            _stages(label, blobs, config, backend)


def main() -> None:
    tune_malloc()  # as the neostore command does
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=64, help="MiB of each input kind")
    args = parser.parse_args()
    run(args.mib)


_ = Ref  # re-exported name kept for readers of this module's stage list

if __name__ == "__main__":
    main()
