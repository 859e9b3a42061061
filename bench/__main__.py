"""``python -m bench <command> [options]``: the benchmarks in one entry point.

Commands:

* ``compare [--size small|full] [--reps N] ...``: neostore beside restic and borg on
  one seeded corpus (see :mod:`bench.compare`);
* ``stages [--mib N]``: per-stage micro-benchmark (chunk, hash, compress, encrypt,
  pack, upload; see :mod:`bench.stages`);
* ``index-memory [--blobs N]``: bytes of memory per indexed blob (see
  :mod:`bench.index_memory`);
* ``flat-memory [--gb 10]``: peak memory of snapshot and restore of a large input
  next to the bench corpus (see :mod:`bench.flat_memory`);
* ``server [--size small|full] [--reps N]``: snapshot and restore throughput
  through neostore-server over HTTPS beside a local directory, for neostore
  and restic (see :mod:`bench.server`);
* ``delta-restore [--size small|full] [--reps N]``: restoring the 1 %-changed corpus
  over its previous version against a full restore (see :mod:`bench.delta_restore`);
* ``copy [--size small|full] [--reps N]``: copying snapshots between two
  repositories, beside restic's copy (see :mod:`bench.copy`);
* ``prune [--size small|full] [--reps N]``: forget one snapshot and prune,
  beside restic's prune: time, peak memory, space freed (see :mod:`bench.prune`);
* ``mount [--size small|full] [--reps N]``: browsing through ``neostore mount``
  beside ``restic mount`` (see :mod:`bench.mount`);
* ``stores [--size small|full | --corpus DIR] [--reps N]``: snapshot and restore
  on Ceph RGW (S3) and OpenSSH (SFTP) beside restic on the same services (see
  :mod:`bench.stores`);
* ``start-methods [--size small|full | --corpus DIR] [--reps N]``: first snapshot
  and restore with workers forked, spawned and started by a fork server (see
  :mod:`bench.startmethods`);
* ``ui [--reps N]``: ``neostore ui``'s first page with 1 000 snapshots, a
  100 000-entry folder, and download throughput beside ``dump`` (see
  :mod:`bench.ui`).
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    commands = (
        "compare",
        "stages",
        "index-memory",
        "flat-memory",
        "server",
        "delta-restore",
        "copy",
        "prune",
        "mount",
        "ui",
        "stores",
        "start-methods",
    )
    if not argv or argv[0] not in commands:
        print(__doc__, file=sys.stderr)
        return 2
    command, rest = argv[0], argv[1:]
    sys.argv = [f"python -m bench {command}", *rest]
    if command == "compare":
        from bench import compare

        return compare.main(rest)
    if command == "ui":
        from bench import ui

        return ui.main(rest)
    if command == "start-methods":
        from bench import startmethods

        return startmethods.main(rest)
    if command == "stores":
        from bench import stores

        return stores.main(rest)
    if command == "mount":
        from bench import mount

        return mount.main(rest)
    if command == "prune":
        from bench import prune

        return prune.main(rest)
    if command == "copy":
        from bench import copy

        return copy.main(rest)
    if command == "delta-restore":
        from bench import delta_restore

        return delta_restore.main(rest)
    if command == "server":
        from bench import server

        return server.main(rest)
    if command == "stages":
        from bench import stages

        stages.main()
        return 0
    if command == "flat-memory":
        from bench import flat_memory

        flat_memory.main()
        return 0
    from bench import index_memory

    index_memory.main()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
