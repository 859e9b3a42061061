"""What every command needs around the library: the global options,
passwords, opening the repository, progress, and turning library errors
into one line and an exit code (with the flag an error is about).

Library modules are imported inside the functions, so that ``--help`` and
commands that fail early load no crypto (tests/test_startup.py).
"""

from __future__ import annotations

import functools
import getpass
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from neostore.commandline import ExitCode, Fail, Translate, guarded

from .say import say

if TYPE_CHECKING:
    from neostore.backend import Backend, BackendOptions
    from neostore.core.repository import Repository
    from neostore.errors import NeostoreError
    from neostore.format.keyfile import KdfParams

    from .progress import BarReporter

#: the command-line flag of each library parameter an error can be about
FLAGS = {
    "repository": "-r/--repo",
    "server_fingerprint": "--server-fingerprint",
    "target": "--target",
    "name": "--name",
    "overwrite": "--overwrite",
    "read_data_subset": "--read-data-subset",
    "max_unused": "--max-unused",
    "grace": "--grace",
    "group_by": "--group-by",
    "keep_within": "--keep-within",
    "kdf": "--kdf",
    "insecure_http": "--insecure-http",
    "listen": "--listen",
    "create_bucket": "--create-bucket",
    "exclude_larger_than": "--exclude-larger-than",
}


@dataclass(frozen=True)
class ServerOptions:
    """How to reach a repository on neostore-server (the global options,
    or ``copy``'s own for its source)."""

    fingerprint: str | None = None
    ca: str | None = None
    #: environment variables with the account: <prefix>_TOKEN etc.
    credentials_env: str = "NEOSTORE_SERVER"
    #: before the usual names of store settings (AWS_*): "NEOSTORE_FROM_" for copy's source
    env_prefix: str = ""
    #: send credentials over plain http:// all the same
    insecure_http: bool = False


def global_server() -> ServerOptions:
    """The global ``--server-fingerprint``/``--server-ca`` of this command."""
    ctx = click.get_current_context(silent=True)
    found = ctx.find_root().obj if ctx is not None else None
    return found if isinstance(found, ServerOptions) else ServerOptions()


def read_password(
    password_file: str | None,
    confirm: bool = False,
    env_var: str = "NEOSTORE_PASSWORD",
    what: str = "password",
    options: str = "NEOSTORE_PASSWORD_FILE or --password-file",
) -> bytes:
    """A password from ``env_var``, a file, or the terminal (twice with ``confirm``)."""
    env = os.environ.get(env_var)
    if env is not None:
        return env.encode()
    command = password_command() if env_var == "NEOSTORE_PASSWORD" else None
    if command and password_file:
        raise Fail("give --password-file or --password-command, not both", ExitCode.USAGE)
    if command:
        return run_password_command(command)
    if password_file:
        try:
            with open(password_file, "rb") as f:
                data = f.read()
        except OSError as e:
            raise Fail(f"cannot read password file {password_file}: {e.strerror}") from e
        return data.rstrip(b"\r\n")
    if not sys.stdin.isatty():
        raise Fail(f"no {what} given: set {env_var}, {options}")
    first = getpass.getpass(f"enter {what} for repository: ")
    if confirm and getpass.getpass(f"enter {what} again: ") != first:
        raise Fail("passwords do not match")
    return first.encode()


#: where the group's --password-command is kept for the command (Click's
#: meta dict, shared by a context and its children)
META_COMMAND = "neostore.password_command"


#: the group's --progress
META_PROGRESS = "neostore.progress"


def _meta(key: str) -> object:
    ctx = click.get_current_context(silent=True)
    return ctx.meta.get(key) if ctx is not None else None


def progress_requested() -> bool:
    """The group's --progress (JSON progress lines, with --json)."""
    return bool(_meta(META_PROGRESS))


def password_command() -> str | None:
    found = _meta(META_COMMAND)
    return found if isinstance(found, str) and found else None


def run_password_command(command: str) -> bytes:
    """The password a command prints (restic's --password-command: a
    keychain, a secret manager): its stdout without the trailing newline.
    Split as a shell would, run without one; its stderr goes to ours."""
    import shlex
    import subprocess

    try:
        done = subprocess.run(shlex.split(command), stdout=subprocess.PIPE, check=False)
    except (OSError, ValueError) as e:
        raise Fail(f"--password-command: cannot run it: {e}") from e
    if done.returncode != 0:
        raise Fail(f"--password-command: exited with status {done.returncode}")
    password = done.stdout.rstrip(b"\r\n")
    if not password:
        raise Fail("--password-command: printed no password")
    return password


def kdf(name: str) -> KdfParams:
    """The key-derivation profile ``--kdf`` names (exit 2 for another)."""
    from neostore.errors import UsageError
    from neostore.format.keyfile import kdf_profile

    try:
        return kdf_profile(name)
    except UsageError as e:
        raise usage(e) from None


def new_password(path: str | None) -> bytes:
    password = read_password(
        path,
        confirm=True,
        env_var="NEOSTORE_NEW_PASSWORD",
        what="new password",
        options="NEOSTORE_NEW_PASSWORD_FILE or --new-password-file",
    )
    warn_if_weak(password)
    return password


def warn_if_weak(password: bytes) -> None:
    """A new key file is guessable offline by whoever gets a copy of it:
    say so when its password is clearly weak (the key file is made anyway)."""
    from neostore.format.keyfile import WEAK_BELOW_BITS, password_bits

    bits = password_bits(password)
    if bits < WEAK_BELOW_BITS:
        print(
            f"warning: weak password (about {bits:.0f} bits; use {WEAK_BELOW_BITS} or more, "
            "e.g. five random words): whoever copies a key file can try passwords offline",
            file=sys.stderr,
        )


def backend_options(server: ServerOptions, *, create_bucket: bool = False) -> BackendOptions:
    from neostore.backend import BackendOptions

    retries = os.environ.get("NEOSTORE_HTTP_RETRIES")
    return BackendOptions(
        server_fingerprint=server.fingerprint,
        server_ca=server.ca,
        credentials_env=server.credentials_env,
        insecure_http=server.insecure_http,
        retries=int(retries) if retries and retries.isdigit() else 5,
        env_prefix=server.env_prefix,
        create_bucket=create_bucket,
    )


def open_backend(
    location: str | None, server: ServerOptions | None = None, *, create_bucket: bool = False
) -> Backend:
    from neostore.backend import open_backend as opened

    options = backend_options(server or global_server(), create_bucket=create_bucket)
    return opened(location or "", options)


def open_repository(
    location: str | None,
    password: Callable[[], bytes],
    *,
    server: ServerOptions | None = None,
    meanwhile: Callable[[threading.Event], None] | None = None,
) -> Repository:
    """Open the repository at ``location`` with the password ``password()``
    gives. ``meanwhile(done)`` runs in this thread while the key is derived
    in another (Argon2id runs without the GIL) and must return soon after
    ``done`` is set."""
    backend = open_backend(location, server)
    if not backend.exists_repository():
        from neostore.errors import RepositoryNotFound

        raise RepositoryNotFound(f"{backend.location}: no repository there (run `neostore init`)")
    from neostore.core.repository import Repository

    secret = password()
    if meanwhile is None:
        repository = Repository.open(backend, secret, warn)
    else:
        outcome: list[Repository | BaseException] = []
        done = threading.Event()

        def derive() -> None:
            try:
                outcome.append(Repository.open(backend, secret, warn))
            except BaseException as e:
                outcome.append(e)
            finally:
                done.set()

        worker = threading.Thread(target=derive, name="open-repository", daemon=True)
        worker.start()
        meanwhile(done)
        worker.join()
        if isinstance(outcome[0], BaseException):
            raise outcome[0]
        repository = outcome[0]
    return repository


def open_repo(
    repo: str | None,
    password_file: str | None,
    meanwhile: Callable[[threading.Event], None] | None = None,
) -> Repository:
    """The repository of ``-r/--repo``, opened with ``--password-file`` (etc.)."""
    return open_repository(repo, lambda: read_password(password_file), meanwhile=meanwhile)


#: tampering reported during the running command: it then exits 14
_tampering: list[str] = []


def warn(error: Exception) -> None:
    """A problem the library reported and went on after."""
    from neostore.errors import TamperingDetected

    if isinstance(error, TamperingDetected):
        tampering([str(error)])
    else:
        say("warning", str(error))


def tampering(findings: list[str]) -> None:
    """Report tampering; the command goes on with what is still safe and
    exits 14 when it ends."""
    for finding in findings:
        say("tampering", finding)
    _tampering.extend(findings)


def reporter(
    json_output: bool, verbose: int = 0, quiet: bool = False, echo: bool = True
) -> BarReporter:
    """Progress bars on a terminal (not with --json or --quiet), per-file
    lines with ``-v``, and each problem on stderr as it comes (``echo``;
    a command that prints them afterwards passes False)."""
    from .progress import BarReporter

    show = sys.stderr.isatty() and not json_output and not quiet
    streamed = json_output and progress_requested()
    return BarReporter(
        show=show,
        verbose=0 if quiet else verbose,
        echo=echo,
        json_progress=streamed,
        as_json=json_output,
    )


def describe(error: NeostoreError) -> str:
    """The message, preceded by the flag it is about."""
    flag = FLAGS.get(error.option or "")
    return f"{flag}: {error}" if flag else str(error)


def usage(error: NeostoreError) -> Fail:
    """A malformed option value: exit 2."""
    return Fail(describe(error), ExitCode.USAGE)


def _translate(error: BaseException) -> tuple[str, int] | None:
    from neostore import errors

    if not isinstance(error, errors.NeostoreError):
        return None
    table: list[tuple[type[BaseException], int]] = [
        (errors.TamperingDetected, ExitCode.TAMPERED),
        (errors.RepositoryNotFound, ExitCode.NO_REPOSITORY),
        (errors.RepositoryLocked, ExitCode.LOCKED),
        (errors.WrongPassword, ExitCode.WRONG_PASSWORD),
        (errors.PermissionDenied, ExitCode.PERMISSION),
    ]
    code = next((c for cls, c in table if isinstance(error, cls)), ExitCode.FATAL)
    if isinstance(error, errors.UsageError) and error.option == "repository":
        # a missing or unknown location, wherever it is opened (a command,
        # `ui`): a malformed argument; other refusals keep exit 1
        code = ExitCode.USAGE
    return describe(error), code


translate: Translate = _translate

_guard = guarded("neostore", translate, "interrupted; nothing half-done was recorded")


def command(func: Callable[..., None]) -> Callable[..., None]:
    """Wrap a ``neostore`` command: library errors become one line and an
    exit code; a command that reported tampering and finished exits 14
    (over 1 and 3: what it found matters more than what it could not do)."""

    @functools.wraps(func)
    def run(*args: Any, **kwargs: Any) -> None:
        _tampering.clear()
        try:
            func(*args, **kwargs)
        except click.exceptions.Exit as e:
            if not _tampering or e.exit_code not in (0, ExitCode.FATAL, ExitCode.PARTIAL):
                raise
        if _tampering:
            raise Fail(
                f"tampering detected ({len(_tampering)} finding(s) above)", ExitCode.TAMPERED
            )

    return _guard(run)
