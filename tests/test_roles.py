"""Per-target roles and sub-folder shares, through the real CLI (and, for the
cryptographic claims, through the library on the raw store)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import msgpack
import pytest

from neostore.browse.navigate import root_listing
from neostore.commandline import ExitCode
from neostore.snapshots.catalog import list_snapshots

from conftest import PASSWORD, Cli, Result
from treeutil import assert_same_tree

OWNER, WRITER, READER, READ_WRITE, SHARE = "owner", "writer", "reader", "read-write", "share"
PASSWORDS = {
    OWNER: PASSWORD,
    WRITER: "writer pw",
    READER: "reader pw",
    READ_WRITE: "read-write pw",
    SHARE: "share pw",
}
#: bytes that exist only outside the shared folder, in contents and in names
SECRET_MARKERS = (b"PRIVATE-CONTENT-7f3a", b"WORK-CONTENT-91c2", b"private-name-5d1e")


@dataclass
class Setup:
    repo: Cli
    docs: Path  # the source of target documents
    work: Path  # the source of target work
    shared: str  # /…/docs/presentations as the snapshot records it
    key_ids: dict[str, str]

    def run(self, role: str, *args: str | os.PathLike[str], **kw: object) -> Result:
        return self.repo(*args, password=PASSWORDS[role], **kw)  # type: ignore[arg-type]


def _add_key(repo: Cli, role: str, target: str) -> str:
    result = repo.ok(
        "key",
        "add",
        "--role",
        role,
        "--target",
        target,
        "--json",
        extra_env={"NEOSTORE_NEW_PASSWORD": PASSWORDS[role]},
    ).json()
    assert result["role"] == role and result["target"] == target
    return str(result["key_id"])


def _tree(base: Path) -> tuple[Path, Path]:
    docs = base / "docs"
    (docs / "presentations" / "2026").mkdir(parents=True)
    (docs / "presentations" / "deck.txt").write_text("quarterly slides v1\n")
    (docs / "presentations" / "2026" / "big.bin").write_bytes(os.urandom(300_000))
    (docs / "private").mkdir()
    (docs / "private" / "private-name-5d1e.txt").write_bytes(
        b"PRIVATE-CONTENT-7f3a\n" + os.urandom(200_000)
    )
    (docs / "notes.txt").write_bytes(b"PRIVATE-CONTENT-7f3a top-level note\n")
    work = base / "work"
    work.mkdir()
    (work / "plan.txt").write_bytes(b"WORK-CONTENT-91c2\n")
    return docs, work


@pytest.fixture
def setup(repo: Cli, tmp_path: Path) -> Setup:
    docs, work = _tree(tmp_path)
    repo.ok("snapshot", "--target", "documents", docs)
    repo.ok("snapshot", "--target", "work", work)
    key_ids = {role: _add_key(repo, role, "documents") for role in (WRITER, READER, READ_WRITE)}
    shared = str(docs / "presentations")
    created = repo.ok(
        "share",
        "create",
        "--target",
        "documents",
        "--path",
        shared,
        "--json",
        extra_env={"NEOSTORE_NEW_PASSWORD": PASSWORDS[SHARE]},
    ).json()
    assert created["name"] == "presentations" and created["path"] == shared
    key_ids[SHARE] = created["key_id"]
    return Setup(repo, docs, work, shared, key_ids)


def _denied(result: Result, needs: str) -> bool:
    return result.code == 13 and needs in result.err and "this is" in result.err


ROLES = (OWNER, WRITER, READER, READ_WRITE, SHARE)
# per command, for the roles in ROLES order: "ok" (must succeed) or what it
# must be refused for (exit 13, the message naming the role or target needed)
MATRIX = [
    ("snapshot", "ok ok writer ok writer"),
    ("snapshot-work", "ok work work work work"),
    ("snapshots", "ok reader ok ok ok"),
    ("snapshots-work", "ok work work work work"),
    ("ls", "ok reader ok ok ok"),
    ("dump", "ok reader ok ok ok"),
    ("restore", "ok reader ok ok ok"),
    ("check", "ok owner owner owner owner"),
    ("key-add", "ok owner owner owner owner"),
    ("key-list", "ok ok ok ok ok"),
    ("share-create", "ok owner owner owner owner"),
    ("share-list", "ok owner owner owner owner"),
    ("share-sync", "ok read-write read-write ok read-write"),
    ("key-remove", "ok owner owner owner owner"),  # a spare key: the owner's run removes it
    ("key-passwd", "ok ok ok ok ok"),  # last: each role's password changes
]


def _command(s: Setup, name: str, role: str, tmp: Path) -> list[str | os.PathLike[str]]:
    shared_file = "/presentations/deck.txt" if role == SHARE else f"{s.shared}/deck.txt"
    return {
        "snapshot": ["snapshot", s.docs, "--target", "documents", "--json"],
        "snapshot-work": ["snapshot", s.work, "--target", "work", "--json"],
        "snapshots": ["snapshots", "--json"],
        "snapshots-work": ["snapshots", "--target", "work", "--json"],
        "ls": ["ls", "latest", "-R", "--json", "-t", "documents"],
        "dump": ["dump", "latest", shared_file, "-t", "documents"],
        "restore": ["restore", "latest", "--to", tmp / f"restore-{role}", "-t", "documents"],
        "check": ["check"],
        "key-add": ["key", "add", "--role", "reader", "--target", "documents", "--json"],
        "key-list": ["key", "list", "--json"],
        "share-create": ["share", "create", "-t", "documents", "--path", s.shared, "--name", role],
        "share-list": ["share", "list", "--json"],
        "share-sync": ["share", "sync", "--target", "documents", "--json"],
        "key-remove": ["key", "remove", s.key_ids["spare"][:8]],
        "key-passwd": ["key", "passwd"],
    }[name]  # fmt: skip


#: commands that must not write to the repository even when they succeed
READ_ONLY = {"snapshots", "snapshots-work", "ls", "dump", "restore", "check", "key-list"}
READ_ONLY |= {"share-list"}


def _stored(s: Setup) -> dict[str, tuple[int, int]]:
    """The repository's files: size and mtime by path (a refused command
    must leave every one as it was)."""
    root = str(s.repo.repo)
    found = {}
    for directory, _, files in os.walk(root):
        for name in files:
            path = os.path.join(directory, name)
            st = os.lstat(path)
            found[os.path.relpath(path, root)] = (st.st_size, st.st_mtime_ns)
    return found


@dataclass
class Expected:
    """What the repository holds, as the matrix's commands change it."""

    writers: dict[str, str]  # snapshot id -> key id of its writer
    targets: dict[str, str]  # snapshot id -> target
    shared: set[str]  # ids of the snapshots published to the share "presentations"
    keys: dict[str, tuple[str, str | None]]  # key id -> (role, target)
    shares: list[str]  # share names, in order of creation

    def ids(self, target: str) -> set[str]:
        return {i for i, t in self.targets.items() if t == target}


def _key_id(s: Setup, owner: str, role: str) -> str:
    return owner if role == OWNER else s.key_ids[role]


def _verify(
    s: Setup, exp: Expected, owner: str, name: str, role: str, result: Result, tmp: Path
) -> None:
    """Check what an allowed command did (and update ``exp`` with it)."""
    docs_rel = s.docs.relative_to("/")
    if name in ("snapshot", "snapshot-work"):
        made = result.json()
        target = "documents" if name == "snapshot" else "work"
        assert made["target"] == target and made["id"] not in exp.targets
        exp.targets[made["id"]] = target
        exp.writers[made["id"]] = _key_id(s, owner, role)
        if target == "documents":  # a writer publishes to the share too
            assert made["shares_published"] == 1, made
            exp.shared.add(made["id"])
    elif name == "snapshots":
        listed = result.json()
        seen = {x["id"]: x for x in listed}
        assert len(seen) == len(listed)
        if role == OWNER:
            assert {i: x["target"] for i, x in seen.items()} == exp.targets
            assert {i: x["writer"] for i, x in seen.items()} == exp.writers
        elif role == SHARE:
            assert set(seen) == exp.shared
            assert all(x["paths"] == [s.shared] for x in listed)
        else:  # a reader of documents sees all of its snapshots, whoever wrote them
            assert set(seen) == exp.ids("documents")
            assert all(x["paths"] == [str(s.docs)] for x in listed)
    elif name == "snapshots-work":
        assert {x["id"] for x in result.json()} == exp.ids("work")
    elif name == "ls":
        listed = {e["path"]: e for e in result.json()}
        if role == SHARE:
            files = {"/presentations/deck.txt": 20, "/presentations/2026/big.bin": 300_000}
            dirs = {"/presentations", "/presentations/2026"}
        else:
            files = {str(p): p.stat().st_size for p in s.docs.rglob("*") if p.is_file()}
            dirs = {str(p) for p in s.docs.rglob("*") if p.is_dir()} | {str(s.docs)}
            dirs |= {str(p) for p in s.docs.parents if p != Path("/")}
        assert set(listed) == set(files) | dirs
        assert {p: e["size"] for p, e in listed.items() if e["type"] == "file"} == files
    elif name == "dump":
        assert result.stdout_bytes == b"quarterly slides v1\n"
    elif name == "restore":
        out = tmp / f"restore-{role}"
        if role == SHARE:
            assert [p.name for p in out.iterdir()] == ["presentations"]
            assert_same_tree(s.docs / "presentations", out / "presentations")
        else:
            assert_same_tree(s.docs, out / docs_rel)
    elif name == "check":
        assert result.out.startswith("no errors") and f"({len(exp.targets)} snapshots" in result.out
    elif name == "key-add":
        added = result.json()
        assert (added["role"], added["target"]) == ("reader", "documents")
        assert added["key_id"] not in exp.keys
        exp.keys[added["key_id"]] = ("reader", "documents")
    elif name == "key-list":
        listed = result.json()
        assert {k["id"]: (k["role"], k["target"]) for k in listed} == exp.keys
        assert [k["id"] for k in listed if k["current"]] == [_key_id(s, owner, role)]
    elif name == "share-create":
        key_id = result.out.strip()  # the new share's key
        assert len(key_id) == 32 and key_id not in exp.keys
        exp.keys[key_id] = ("share", "documents")
        exp.shares.append(role)
    elif name == "share-list":
        listed = result.json()
        assert [x["name"] for x in listed] == exp.shares
        assert all(x["path"] == s.shared and x["revoked"] is None for x in listed)
    elif name == "share-sync":
        # the owner's run publishes what the share "presentations" lacked
        # and every snapshot to the share the matrix created; then nothing is left
        docs = exp.ids("documents")
        wanted = len(docs - exp.shared) + len(docs) if role == OWNER else 0
        assert result.json() == {"target": "documents", "published": wanted}
        exp.shared = docs
        seen = s.run(SHARE, "snapshots", "--json").json()
        assert {x["id"] for x in seen} == docs
    elif name == "key-remove":
        assert result.out.strip() == f"removed key {s.key_ids['spare']}"
        assert not (s.repo.repo / "keys" / s.key_ids["spare"]).exists()
        del exp.keys[s.key_ids["spare"]]
    elif name == "key-passwd":
        assert result.out.strip() == f"password changed for key {_key_id(s, owner, role)}"
    else:
        raise AssertionError(f"no check for {name}")


def test_role_command_matrix(setup: Setup, tmp_path: Path) -> None:
    """Every role, every command: allowed ones succeed and do what they
    should (checked cell by cell), the others exit 13 naming what they would
    need, and change nothing in the repository."""
    s = setup
    preamble = s.repo.ok("snapshot", s.docs, "--target", "documents", "--json").json()
    # a reader key of its own password (with the reader's, either key could
    # open under it, and "current" would name one at random)
    spare = ["key", "add", "--role", "reader", "--target", "documents", "--json"]
    new_password = {"NEOSTORE_NEW_PASSWORD": "spare pw"}
    s.key_ids["spare"] = s.repo.ok(*spare, extra_env=new_password).json()["key_id"]
    before = s.repo.ok("snapshots", "--json").json()
    keys = s.repo.ok("key", "list", "--json").json()
    (owner,) = [k["id"] for k in keys if k["current"]]
    exp = Expected(
        writers={x["id"]: x["writer"] for x in before},
        targets={x["id"]: x["target"] for x in before},
        shared={preamble["id"]},  # the first snapshot predates the share
        keys={k["id"]: (k["role"], k["target"]) for k in keys},
        shares=["presentations"],
    )
    assert set(exp.writers.values()) == {owner} and len(exp.ids("documents")) == 2
    assert len(exp.keys) == 6
    failures = []
    for name, row in MATRIX:
        for role, outcome in zip(ROLES, row.split(), strict=True):
            args = _command(s, name, role, tmp_path)
            stored = _stored(s) if outcome != "ok" or name in READ_ONLY else {}
            result = s.run(role, *args, extra_env={"NEOSTORE_NEW_PASSWORD": f"new {role}"})
            cell = f"{role} {name}: exit {result.code}: {result.err.strip()}"
            if outcome != "ok":
                if not _denied(result, outcome):
                    failures.append(cell)
                elif _stored(s) != stored:
                    failures.append(f"{role} {name}: refused, but changed the repository")
                elif name == "restore" and (tmp_path / f"restore-{role}").exists():
                    failures.append(f"{role} {name}: refused, but restored something")
                continue
            if result.code != 0:
                failures.append(cell)
                continue
            try:
                _verify(s, exp, owner, name, role, result, tmp_path)
                if name in READ_ONLY:
                    assert _stored(s) == stored, "a reading command changed the repository"
            except AssertionError as e:
                failures.append(f"{role} {name}: {e}\n{result.out[:2000]}")
    assert not failures, "\n".join(failures)
    for role in ROLES:  # key passwd re-wrapped each key under its new password
        assert s.repo("key", "list", password=f"new {role}").code == 0
        assert s.run(role, "key", "list").code == 12
    remaining = s.repo.ok("key", "list", "--json", password=f"new {OWNER}").json()
    assert {k["id"]: (k["role"], k["target"]) for k in remaining} == exp.keys
    assert s.key_ids["spare"] not in {k["id"] for k in remaining} and len(remaining) == 7


def test_what_each_reading_role_sees(setup: Setup, tmp_path: Path) -> None:
    s = setup
    s.repo.ok("snapshot", s.docs, "--target", "documents")
    docs_rel = s.docs.relative_to("/")
    for role in (READER, READ_WRITE):
        listed = s.run(role, "snapshots", "--json").json()
        assert {x["target"] for x in listed} == {"documents"} and len(listed) == 2
        out = tmp_path / f"out-{role}"
        assert s.run(role, "restore", "latest", "--to", out).code == 0
        assert_same_tree(s.docs, out / docs_rel)
    # the share holder sees the shared folder of its snapshots and nothing else
    listed = s.run(SHARE, "snapshots", "--json").json()
    assert len(listed) == 1 and listed[0]["paths"] == [s.shared]
    names = [e["path"] for e in s.run(SHARE, "ls", "latest", "-R", "--json").json()]
    assert names == [
        "/presentations",
        "/presentations/2026",
        "/presentations/2026/big.bin",
        "/presentations/deck.txt",
    ]
    dumped = s.run(SHARE, "dump", "latest", "/presentations/deck.txt")
    assert dumped.stdout_bytes == b"quarterly slides v1\n"
    out = tmp_path / "out-share"
    assert s.run(SHARE, "restore", "latest", "--to", out).code == 0
    assert_same_tree(s.docs / "presentations", out / "presentations")
    assert sorted(p.name for p in out.iterdir()) == ["presentations"]
    assert s.run(SHARE, "dump", "latest", f"{s.docs}/notes.txt").code == 1  # not in its view
    # share sync publishes the snapshot made before the share existed
    synced = s.repo.ok("share", "sync", "--target", "documents", "--json").json()
    assert synced == {"target": "documents", "published": 1}
    assert s.repo.ok("share", "sync", "--target", "documents", "--json").json()["published"] == 0
    assert len(s.run(SHARE, "snapshots", "--json").json()) == 2


def test_writer_cannot_read_what_it_wrote_and_keeps_incremental_speed(
    setup: Setup, tmp_path: Path
) -> None:
    s = setup
    first = s.run(WRITER, "snapshot", s.docs, "--json").json()
    again = s.run(WRITER, "snapshot", s.docs, "--json").json()
    assert again["files_unchanged"] == 4 and again["bytes_read"] == 0  # the files cache
    for args in (
        ("snapshots",),
        ("ls", first["id"]),
        ("ls", "latest"),
        ("restore", first["id"], "--to", tmp_path / "x"),
        ("dump", first["id"], f"{s.shared}/deck.txt"),
    ):
        result = s.run(WRITER, *args)
        assert _denied(result, "reader"), (args, result.err)
    assert not (tmp_path / "x").exists()
    # not a flag: its key material cannot open the manifest it sealed
    from neostore.backend import LocalBackend
    from neostore.core.objects import ObjectStore
    from neostore.core.unlock import open_with_password
    from neostore.errors import IntegrityError
    from neostore.format import crypto

    backend = LocalBackend(str(s.repo.repo))
    material = open_with_password(ObjectStore(backend), PASSWORDS[WRITER].encode())
    assert material.master is None and material.owner_seed is None
    assert "seal_sk" not in material.extra and "share_sk" not in material.extra
    stored = backend.load("snapshots", f"documents/{first['id']}")
    for secret in _secrets(material.extra):
        with pytest.raises(IntegrityError):
            crypto.unseal(secret, stored, "manifest")
    # a reader restores it, bit for bit
    out = tmp_path / "by-reader"
    assert s.run(READER, "restore", first["id"], "--to", out).code == 0
    assert_same_tree(s.docs, out / s.docs.relative_to("/"))
    assert s.repo.ok("check", "--read-data").code == 0


def _secrets(value: object) -> list[bytes]:
    """Every 32-byte string inside key material (all of a key's secrets)."""
    if isinstance(value, bytes):
        return [value] if len(value) == 32 else []
    if isinstance(value, dict):
        return [x for v in value.values() for x in _secrets(v)]
    if isinstance(value, list):
        return [x for v in value for x in _secrets(v)]
    return []


def test_share_holder_recovers_nothing_outside_the_shared_folder(setup: Setup) -> None:
    """Given the whole store, the share key and every blob key it can reach
    open the shared folder and nothing else."""
    s = setup
    s.repo.ok("snapshot", s.docs, "--target", "documents")
    s.run(WRITER, "snapshot", s.docs)
    s.repo.ok("share", "sync", "--target", "documents")
    from neostore.backend import LocalBackend
    from neostore.core.repository import Repository
    from neostore.errors import IntegrityError
    from neostore.format import crypto
    from neostore.format.blob import Ref, blob_ad, decrypt_blob
    from neostore.format.pack import header_length, open_header
    from neostore.format.targets import TREE

    backend = LocalBackend(str(s.repo.repo))
    holder = Repository.open(backend, PASSWORDS[SHARE].encode())
    holder.load_index()
    shared = list_snapshots(holder)
    assert len(shared) == 3
    # every reference the holder can reach: the shared subtrees, recursively
    reachable: dict[bytes, tuple[int, Ref]] = {}

    def collect(nodes: list) -> None:  # type: ignore[type-arg]
        for node in nodes:
            for ref in node.content:
                reachable[ref.blob_id] = (0, ref)
            for ref in node.subtree:
                reachable[ref.blob_id] = (TREE, ref)
            if node.subtree:
                collect(holder.blobs.load_tree(node.subtree))

    for info in shared:
        collect(root_listing(holder, info))
    keys = [ref.blob_key for _, ref in reachable.values()] + _secrets(holder.material.extra)
    assert len(keys) > 5
    # every blob of every pack (located with the owner's keys, so that the
    # other target's packs count too), tried with every key the holder has
    owner = Repository.open(backend, PASSWORD.encode())
    opened: dict[bytes, bytes] = {}
    attempts = 0
    for name, size in backend.list("data"):
        data = backend.load("data", name)
        length = header_length(data[-4:], size, name)
        located = [
            open_header(
                data[-4 - length : -4],
                what=name,
                repo_id=holder.repo_id,
                owner_vk=holder.material.owner_vk,
                domain_for=repo.domain_for,
            )
            for repo in (owner, holder)
        ]
        header = located[0]
        assert header is not None
        # the holder locates blobs of its target's domain only (metadata)
        assert (located[1] is not None) == (
            header[0].domain_id == holder.target("documents").domain_id
        )
        for entry in header[1]:
            stored = data[entry.offset : entry.offset + entry.length]
            for key in keys:
                attempts += 1
                try:
                    crypto.aead_decrypt(
                        key, stored, blob_ad(holder.repo_id, entry.btype, entry.blob_id), "b"
                    )
                except IntegrityError:
                    continue
                assert entry.blob_id in reachable, "a blob outside the share opened"
                btype, ref = reachable[entry.blob_id]
                opened[entry.blob_id] = decrypt_blob(holder.repo_id, btype, ref, stored)
    assert attempts > 100 and set(opened) == set(reachable)
    everything = b"".join(opened.values())
    assert b"quarterly slides v1" in everything
    for marker in SECRET_MARKERS:
        assert marker not in everything
    # no sealed object but its own capabilities opens with its secrets; no
    # encrypted object opens with them as a symmetric key
    for otype in ("snapshots", "sharelists", "shares", "index", "keys", "targets"):
        for name, _ in backend.list(otype):
            stored = backend.load(otype, name)
            for key in _secrets(holder.material.extra):
                try:
                    crypto.unseal(key, stored, name)
                    assert otype == "shares" and name.startswith("presentations/"), name
                except IntegrityError:
                    pass
            if otype == "sharelists":
                body = msgpack.unpackb(stored)
                for key in _secrets(holder.material.extra):
                    with pytest.raises(IntegrityError):
                        crypto.aead_decrypt(key, body[1], b"", name)


def test_unsigned_share_registration_is_ignored_with_a_warning(setup: Setup) -> None:
    """A share list not signed by the owner (a store or a leaked writer key
    planting a share to harvest data) is ignored, loudly."""
    s = setup
    from neostore.backend import LocalBackend
    from neostore.core.repository import Repository
    from neostore.format import crypto
    from neostore.format.shares import Share, ShareList, encode_sharelist
    from neostore.shares.lists import current_sharelist

    backend = LocalBackend(str(s.repo.repo))
    owner = Repository.open(backend, PASSWORD.encode())
    record = owner.target("documents")
    real = current_sharelist(owner, record)
    thief_secret = os.urandom(32)
    planted = Share(os.urandom(32), "harvest", crypto.box_public_key(thief_secret), b"/", 1)
    forged = ShareList(real.version + 5, 2, (*real.shares, planted))
    key = owner.sharelist_key(record)
    assert key is not None  # a writer holds it too
    stored = encode_sharelist(
        forged,
        key=key,
        owner=crypto.SigningKey.generate(),
        repo_id=owner.repo_id,
        target_id=record.target_id,
    )
    name = crypto.object_hash(stored).hex()
    backend.save("sharelists", f"documents/{name}", stored)
    result = s.run(WRITER, "snapshot", s.docs, "--json")
    assert result.code == 0
    assert result.json()["shares_published"] == 1  # the real share only
    assert "warning" in result.err and "owner signature" in result.err
    assert not [n for n, _ in backend.list("shares") if n.startswith("harvest/")]
    assert len(s.run(SHARE, "snapshots", "--json").json()) == 1
    # a store that hides the newest list (a revocation) is refused, not obeyed
    s.repo.ok("share", "revoke", "presentations")
    lists = sorted(backend.list("sharelists"))
    newest = max(
        (n for n, _ in lists if n != f"documents/{name}"),
        key=lambda n: _object_path(s, "sharelists", n).stat().st_mtime_ns,
    )
    hidden = backend.load("sharelists", newest)
    backend.remove("sharelists", newest)
    rolled = s.run(WRITER, "snapshot", s.docs, "--json")
    assert rolled.code == 0 and rolled.json()["shares_published"] == 0
    assert "rolled back" in rolled.err
    backend.save("sharelists", newest, hidden)
    after = s.run(WRITER, "snapshot", s.docs, "--json")
    assert after.code == 0 and after.json()["shares_published"] == 0  # revoked
    listed = s.repo.ok("share", "list", "--json").json()
    assert [(x["name"], x["revoked"] is not None) for x in listed] == [("presentations", True)]
    # what it had stays readable to it, as documented
    assert len(s.run(SHARE, "snapshots", "--json").json()) == 1


def test_removing_one_key_leaves_the_others_working(setup: Setup, tmp_path: Path) -> None:
    s = setup
    s.repo.ok("key", "remove", s.key_ids[READER][:8])
    gone = s.run(READER, "snapshots")
    assert gone.code == 12 and "wrong password" in gone.err
    assert s.run(WRITER, "snapshot", s.docs).code == 0
    assert len(s.run(READ_WRITE, "snapshots", "--json").json()) == 2
    assert s.run(SHARE, "snapshots").code == 0
    assert len(s.repo.ok("snapshots", "--json").json()) == 3
    roles = sorted(k["role"] for k in s.repo.ok("key", "list", "--json").json())
    assert roles == ["owner", "read-write", "share", "writer"]
    # the last owner key stays
    owner_id = next(k["id"] for k in s.repo.ok("key", "list", "--json").json() if k["current"])
    refused = s.repo("key", "remove", owner_id[:8])
    assert refused.code == 1 and "in use" in refused.err


def test_tampered_key_file_is_rejected_with_a_clear_message(setup: Setup) -> None:
    s = setup
    path = s.repo.repo / "keys" / s.key_ids[READER]
    original = path.read_bytes()
    header, sealed = msgpack.unpackb(original)
    # a role upgrade written into the (authenticated) header
    fields = msgpack.unpackb(header)
    fields["role"] = "owner"
    path.write_bytes(msgpack.packb([msgpack.packb(fields), sealed]))
    upgraded = s.run(READER, "snapshots")
    assert upgraded.code == 12 and "was altered" in upgraded.err
    # a flipped bit in the encrypted material
    flipped = bytearray(sealed)
    flipped[40] ^= 0x01
    path.write_bytes(msgpack.packb([header, bytes(flipped)]))
    corrupt = s.run(READER, "snapshots")
    assert corrupt.code == 12 and "was altered" in corrupt.err
    # a wrong password is told apart from tampering
    wrong = s.repo("snapshots", password="not it")
    assert wrong.code == 12 and "wrong password" in wrong.err and "altered" not in wrong.err
    path.write_bytes(original)
    assert s.run(READER, "snapshots").code == 0


def test_writers_do_not_dedup_against_other_writers(setup: Setup, tmp_path: Path) -> None:
    """A leaked writer key that plants garbage under real blob ids cannot make
    other writers skip uploads: each trusts only its own and the owner's
    blobs, and readers fall back to another copy."""
    s = setup
    other_pw = "second writer"
    s.repo.ok(
        "key",
        "add",
        "--role",
        "writer",
        "--target",
        "documents",
        extra_env={"NEOSTORE_NEW_PASSWORD": other_pw},
    )
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "new.bin").write_bytes(os.urandom(400_000))
    assert s.run(WRITER, "snapshot", fresh).code == 0
    second = s.repo.ok("snapshot", fresh, "--no-cache", "--json", password=other_pw).json()
    assert second["bytes_added"] >= 400_000  # uploaded again, not deduped
    # the owner does not trust a delegated writer's blobs either
    third = s.repo.ok("snapshot", fresh, "--no-cache", "--json").json()
    assert third["bytes_added"] >= 400_000
    # ... but its own: a second owner run adds nothing
    assert s.repo.ok("snapshot", fresh, "--no-cache", "--json").json()["bytes_added"] < 5000
    # the first writer's blobs turn to garbage (as a malicious writer would
    # have uploaded them): the second writer's snapshot still restores
    planted = _packs_of_writer(s, WRITER)
    assert planted
    for name in planted:
        path = _object_path(s, "data", name)
        data = bytearray(path.read_bytes())
        for i in range(0, len(data) // 2, 7):
            data[i] ^= 0xFF
        path.write_bytes(bytes(data))
    out = tmp_path / "out"
    assert s.run(READER, "restore", second["id"], "--to", out).code == 0
    restored = out / fresh.relative_to("/") / "new.bin"
    assert restored.read_bytes() == (fresh / "new.bin").read_bytes()


def _object_path(s: Setup, otype: str, name: str) -> Path:
    from neostore.backend.names import relative_path

    return s.repo.repo / relative_path(otype, name)


def _packs_of_writer(s: Setup, role: str) -> list[str]:
    """Packs whose (public) envelope names the key of ``role`` as writer."""
    from neostore.backend import LocalBackend
    from neostore.format.pack import header_length

    backend = LocalBackend(str(s.repo.repo))
    wanted = bytes.fromhex(s.key_ids[role])
    found = []
    for name, size in backend.list("data"):
        data = backend.load("data", name)
        length = header_length(data[-4:], size, name)
        envelope = msgpack.unpackb(data[-4 - length : -4])
        if envelope[3] == wanted:
            found.append(name)
    return found


def test_a_rebuilt_writer_continues_its_chain(setup: Setup, tmp_path: Path) -> None:
    """A put-only writer cannot read its snapshots: it keeps its chain head
    sealed to itself in the store, so a new machine (no local state)
    continues the chain instead of forking it."""
    s = setup
    s.run(WRITER, "snapshot", s.docs)
    s.run(WRITER, "snapshot", s.docs)
    fresh = {"NEOSTORE_STATE_DIR": str(tmp_path / "new-machine-state")}
    assert s.run(WRITER, "snapshot", s.docs, extra_env=fresh).code == 0
    listed = s.repo.ok("snapshots", "--json", "-t", "documents")
    mine = [x for x in listed.json() if x["writer"] == s.key_ids[WRITER]]
    assert [x["seq"] for x in mine] == [1, 2, 3]
    assert "warning" not in listed.err
    assert len(list((s.repo.repo / "heads" / "documents").iterdir())) == 3
    # the owner, who reads its own snapshots, writes no head objects
    s.repo.ok("snapshot", s.docs, "-t", "documents")
    assert len(list((s.repo.repo / "heads" / "documents").iterdir())) == 3


def _as_writer(s: Setup, role: str = WRITER) -> tuple[object, object]:
    """The library's view of a delegated key (to play a leaked-key attacker)."""
    from neostore.backend import LocalBackend
    from neostore.core.repository import Repository

    backend = LocalBackend(str(s.repo.repo))
    return backend, Repository.open(backend, PASSWORDS[role].encode())


def test_a_leaked_writer_key_cannot_break_other_keys_with_bad_index_files(
    setup: Setup, tmp_path: Path
) -> None:
    """Index files from a leaked writer key with absurd offsets, or with the
    real blob ids of another writer retyped, cost a warning, not the
    repository: every other snapshot still restores."""
    from neostore.core.repository import Repository
    from neostore.format.indexfile import PackRecord, encode_index
    from neostore.format.pack import PackEntry

    s = setup
    made = s.run(READ_WRITE, "snapshot", s.docs, "--json").json()
    backend, attacker = _as_writer(s)
    assert isinstance(attacker, Repository)
    attacker.load_index()
    record = attacker.target("documents")
    domain = attacker.domain(record)
    writer = attacker.writer
    # 1. an entry no pack can hold
    huge = PackRecord(os.urandom(32), 1 << 34, [PackEntry(0, os.urandom(32), 1 << 33, 64)])
    # 2. every blob of every pack, retyped (data <-> tree), pointing at the real bytes
    retyped = []
    for pack_id, size in attacker.index.packs():
        entries = []
        for blob_id in list(attacker.index.blob_ids()):
            for loc in attacker.index.locations(blob_id):
                if loc.pack_id == pack_id:
                    entries.append(PackEntry(1 - loc.btype, blob_id, loc.offset, loc.length))
        retyped.append(PackRecord(pack_id, size, entries))
    for packs in ([huge], retyped):
        name, data = encode_index(
            packs,
            repo_id=attacker.repo_id,
            domain=domain,
            target_id=record.target_id,
            writer=writer,
        )
        backend.save("index", name.hex(), data)  # type: ignore[attr-defined]
    listed = s.run(READER, "snapshots", "--json")
    assert listed.code == 0
    out = tmp_path / "out"
    restored = s.run(READER, "restore", made["id"], "--to", out)
    assert restored.code == 0 and "warning" in restored.err, restored.err
    assert_same_tree(s.docs, out / s.docs.relative_to("/"))
    assert s.repo.ok("snapshot", s.work, "--target", "work").code == 0


def test_a_revocation_cannot_be_undone(setup: Setup) -> None:
    """Hiding the list that revoked a share while another owner machine
    writes a list of the same number does not bring the share back."""
    s = setup
    lists = s.repo.repo / "sharelists" / "documents"
    before = set(lists.iterdir())
    s.repo.ok("share", "revoke", "presentations")
    (revocation,) = set(lists.iterdir()) - before
    hidden = revocation.read_bytes()
    revocation.unlink()
    other_machine = {
        "NEOSTORE_STATE_DIR": str(s.repo.repo.parent / "other-owner"),
        "NEOSTORE_NEW_PASSWORD": "x",
    }
    s.repo.ok(
        "share", "create", "-t", "documents", "--path", f"{s.docs}/private", extra_env=other_machine
    )
    revocation.write_bytes(hidden)
    made = s.run(WRITER, "snapshot", s.docs, "--json")
    assert made.code == 0 and made.json()["shares_published"] == 1  # "private" only
    listed = {x["name"]: x["revoked"] for x in s.repo.ok("share", "list", "--json").json()}
    assert listed["presentations"] is not None and listed["private"] is None
    assert s.run(SHARE, "snapshots", "--json").json() == []


def test_share_holder_notices_a_hidden_snapshot(setup: Setup) -> None:
    s = setup
    s.repo.ok("snapshot", s.docs, "--target", "documents")
    (s.docs / "presentations" / "deck.txt").write_text("quarterly slides v2\n")
    s.repo.ok("snapshot", s.docs, "--target", "documents")
    assert s.run(SHARE, "dump", "latest", "/presentations/deck.txt").out == "quarterly slides v2\n"
    caps = sorted((s.repo.repo / "shares" / "presentations").iterdir(), key=os.path.getmtime)
    caps[-1].unlink()
    listed = s.run(SHARE, "snapshots", "--json")
    assert listed.code == ExitCode.TAMPERED and "rolled back or hidden" in listed.err
    stale = s.run(SHARE, "dump", "latest", "/presentations/deck.txt")
    assert stale.code == ExitCode.TAMPERED and "rolled back or hidden" in stale.err
    assert stale.out == ""


def test_a_corrupt_chain_head_copy_does_not_stop_a_writer(setup: Setup, tmp_path: Path) -> None:
    s = setup
    s.run(WRITER, "snapshot", s.docs)
    s.run(WRITER, "snapshot", s.docs)
    for head in (s.repo.repo / "heads" / "documents").iterdir():
        head.write_bytes(b"garbage")
    fresh = {"NEOSTORE_STATE_DIR": str(tmp_path / "new-machine")}
    made = s.run(WRITER, "snapshot", s.docs, extra_env=fresh)
    assert made.code == 0 and "chain head not recovered" in made.err
    again = s.run(WRITER, "snapshot", s.docs)  # its local state suffices
    assert again.code == 0 and again.err.startswith("snapshot ")  # the summary, nothing more
    assert again.err.count("\n") == 1
