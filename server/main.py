"""The ``neostore-server`` command: init, serve, accounts, repositories."""

from __future__ import annotations

import json
import logging
import os
import re
import ssl
import sys
from typing import Annotated, Any

import typer

from neostore.commandline import ExitCode, Fail, guarded, make_app
from neostore.runtime import tune_malloc

from .accounts import AccountError, AccountStore
from .grants import PERMISSIONS, GrantError
from .storage import Storage, StorageError
from .tlscert import fingerprint_file, make_self_signed

app = make_app(
    "neostore-server", "HTTPS object server for neostore (and restic) repositories. Holds no keys."
)
account_app = typer.Typer(help="Manage accounts and their grants.", no_args_is_help=True)
repo_app = typer.Typer(help="Manage repositories.", no_args_is_help=True)
app.add_typer(account_app, name="account")
app.add_typer(repo_app, name="repo")


def _translate(error: BaseException) -> tuple[str, int] | None:
    if isinstance(error, AccountError | GrantError | StorageError):
        return str(error), ExitCode.FATAL
    return None


#: wraps every command: its errors become one line and an exit code
command = guarded("neostore-server", _translate)

DataOpt = Annotated[
    str, typer.Option("--data", envvar="NEOSTORE_SERVER_DATA", help="The server's data directory.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")]


def _tls_paths(data: str) -> tuple[str, str]:
    return os.path.join(data, "tls", "cert.pem"), os.path.join(data, "tls", "key.pem")


def _initialised(data: str) -> AccountStore:
    store = AccountStore(data)
    if not os.path.isfile(store.path):
        raise Fail(f"{data}: not a neostore-server data directory (run `neostore-server init`)")
    return store


def _size(text: str) -> int:
    m = re.fullmatch(r"(\d+)\s*([kmgt]?)(?:i?b)?", text.strip().lower())
    if not m:
        raise Fail(f"invalid size {text!r} (e.g. 512M, 10G)", ExitCode.USAGE)
    unit = m.group(2)
    return int(m.group(1)) * (1024 ** ("kmgt".index(unit) + 1) if unit else 1)


def _emit(as_json: bool, data: Any, text: str) -> None:
    if as_json:
        print(json.dumps(data))
    else:
        print(text)


@app.command()
@command
def init(
    data: DataOpt,
    hostname: Annotated[
        list[str] | None,
        typer.Option(
            "--hostname", help="Another name or address for the certificate (repeatable)."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a data directory, a self-signed TLS certificate and an admin account."""
    store = AccountStore(data)
    if os.path.exists(store.path):
        raise Fail(f"{data}: already initialised")
    os.makedirs(os.path.join(data, "tls"), mode=0o700, exist_ok=True)
    os.makedirs(os.path.join(data, "repos"), mode=0o700, exist_ok=True)
    os.chmod(data, 0o700)
    cert, key = _tls_paths(data)
    fingerprint = (
        fingerprint_file(cert)
        if os.path.exists(cert)
        else make_self_signed(cert, key, hostname or [])
    )
    token = store.add("admin")
    store.grant("admin", "*", "repo", ",".join(PERMISSIONS))
    _emit(
        as_json,
        {"admin_token": token, "fingerprint": fingerprint, "certificate": os.path.abspath(cert)},
        f"initialised {data}\n"
        f"admin token (shown once): {token}\n"
        f"certificate: {os.path.abspath(cert)}\n"
        f"fingerprint: {fingerprint}",
    )


MaxObjectSizeOpt = Annotated[
    str, typer.Option("--max-object-size", help="Largest accepted object.")
]
IdleTimeoutOpt = Annotated[
    float,
    typer.Option("--idle-timeout", help="Seconds an upload may stall before it is dropped."),
]
HeaderTimeoutOpt = Annotated[
    float,
    typer.Option(
        "--header-timeout", help="Seconds a connection has to finish TLS and send a request head."
    ),
]
ConnectionsOpt = Annotated[
    int,
    typer.Option("--max-connections-per-address", help="Open connections per client address."),
]
RequestsOpt = Annotated[
    int, typer.Option("--max-requests-per-account", help="Requests in progress per account.")
]


@app.command()
@command
def serve(
    data: DataOpt,
    listen: Annotated[
        str, typer.Option("--listen", help="HOST:PORT to listen on.")
    ] = "0.0.0.0:8443",
    tls_cert: Annotated[str | None, typer.Option("--tls-cert", help="PEM certificate.")] = None,
    tls_key: Annotated[str | None, typer.Option("--tls-key", help="PEM private key.")] = None,
    insecure_http: Annotated[
        bool, typer.Option("--insecure-http", help="Serve plain HTTP (only behind a TLS proxy).")
    ] = False,
    max_object_size: MaxObjectSizeOpt = "512M",
    idle_timeout: IdleTimeoutOpt = 120.0,
    header_timeout: HeaderTimeoutOpt = 20.0,
    max_connections_per_address: ConnectionsOpt = 64,
    max_requests_per_account: RequestsOpt = 64,
    access_log: Annotated[
        str, typer.Option("--access-log", help="File for the JSON access log ('-' = stderr).")
    ] = "-",
) -> None:
    """Serve the repositories in DATA over HTTPS until SIGTERM or SIGINT."""
    from .accounting import Limits
    from .app import ACCOUNTING, JsonAccessLogger, Settings, make_app
    from .listener import serve_forever

    _initialised(data)
    host, _, port_text = listen.rpartition(":")
    if not host or not port_text.isdigit():
        raise Fail(f"invalid --listen {listen!r}: expected HOST:PORT", ExitCode.USAGE)
    host = host.strip("[]")
    if min(header_timeout, idle_timeout) <= 0:
        raise Fail("--header-timeout and --idle-timeout must be positive", ExitCode.USAGE)
    if min(max_connections_per_address, max_requests_per_account) < 1:
        raise Fail("connection and request limits must be at least 1", ExitCode.USAGE)
    context, fingerprint = _tls(data, tls_cert, tls_key, insecure_http)
    logger = _access_logger(access_log)
    settings = Settings(
        os.path.abspath(data),
        _size(max_object_size),
        idle_timeout,
        header_timeout,
        Limits(max_connections_per_address, max_requests_per_account),
    )
    _sweep(data)
    _announce(host, port_text, fingerprint)
    _fast_event_loop()
    # uploads and reads pass through buffers of 0.25-8 MiB: from the heap,
    # not a fresh mmap each (page faults); ~20 % less CPU per upload (design.md)
    tune_malloc(mmap_threshold=16 << 20, trim_threshold=64 << 20)
    application = make_app(settings)
    serve_forever(
        application,
        application[ACCOUNTING],
        (host, int(port_text)),
        ssl_context=context,
        header_timeout=header_timeout,
        access_log=logger,
        access_log_class=JsonAccessLogger,
    )
    print("neostore-server: stopped", file=sys.stderr, flush=True)


def _sweep(data: str) -> None:
    swept, swept_bytes = Storage(data).sweep_temporaries()
    if swept:
        print(
            f"neostore-server: removed {swept} stale upload temporaries ({swept_bytes} bytes)",
            file=sys.stderr,
        )


def _announce(host: str, port: str, fingerprint: str | None) -> None:
    shown = f"{'https' if fingerprint else 'http'}://"
    shown += f"{host if ':' not in host else f'[{host}]'}:{port}"
    print(
        f"neostore-server: listening on {shown}"
        + (f" (certificate {fingerprint})" if fingerprint else " (plain HTTP)"),
        file=sys.stderr,
        flush=True,
    )


def _tls(
    data: str, tls_cert: str | None, tls_key: str | None, insecure_http: bool
) -> tuple[ssl.SSLContext | None, str | None]:
    """The TLS context (None: plain HTTP) and the certificate's fingerprint."""
    if insecure_http:
        if tls_cert or tls_key:
            raise Fail(
                "--insecure-http cannot be combined with --tls-cert/--tls-key", ExitCode.USAGE
            )
        return None, None
    if bool(tls_cert) != bool(tls_key):
        raise Fail("--tls-cert and --tls-key go together", ExitCode.USAGE)
    cert, key = (tls_cert, tls_key) if tls_cert and tls_key else _tls_paths(data)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as e:
        raise Fail(f"cannot load TLS certificate {cert}: {e}") from e
    return context, fingerprint_file(cert)


def _access_logger(access_log: str) -> logging.Logger:
    """The JSON access log ('-': stderr); aiohttp's own is turned off."""
    logger = logging.getLogger("neostore_server.access")
    logger.propagate = False
    handler: logging.Handler = (
        logging.StreamHandler(sys.stderr) if access_log == "-" else logging.FileHandler(access_log)
    )
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logging.basicConfig(
        level=logging.INFO, format="neostore-server: %(message)s", stream=sys.stderr
    )
    logging.getLogger("aiohttp.access").disabled = True
    return logger


def _fast_event_loop() -> None:
    """uvloop where it is installed (not on Windows): its TLS and socket
    handling took 7-30 % less server CPU for uploads and range reads
    (docs/design.md)."""
    try:
        import uvloop
    except ImportError:
        return
    import asyncio

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


@app.command()
@command
def fingerprint(data: DataOpt) -> None:
    """Print the fingerprint of the server's own certificate."""
    _initialised(data)
    print(fingerprint_file(_tls_paths(data)[0]))


# -- accounts ------------------------------------------------------------------


@account_app.command("add")
@command
def account_add(name: str, data: DataOpt, as_json: JsonOpt = False) -> None:
    """Create an account (no grants yet) and print its token, once."""
    token = _initialised(data).add(name)
    _emit(
        as_json,
        {"name": name, "token": token},
        f"account {name} created\ntoken (shown once): {token}",
    )


@account_app.command("grant")
@command
def account_grant(
    name: str,
    data: DataOpt,
    repo: Annotated[str, typer.Option("--repo", help="Repository name, or * for every one.")],
    perms: Annotated[
        str, typer.Option("--perms", help="Comma-separated: read,append,delete,admin.")
    ],
    scope: Annotated[
        str, typer.Option("--scope", help="repo, target:NAME or share:NAME.")
    ] = "repo",
    as_json: JsonOpt = False,
) -> None:
    """Give an account permissions on a repository (added to what it has)."""
    grant = _initialised(data).grant(name, repo, scope, perms)
    _emit(
        as_json, {"name": name, **grant}, f"{name}: {','.join(grant['perms'])} on {repo} ({scope})"
    )


@account_app.command("revoke")
@command
def account_revoke(
    name: str,
    data: DataOpt,
    repo: Annotated[str, typer.Option("--repo", help="Repository name, or *.")],
    scope: Annotated[str | None, typer.Option("--scope", help="Only this scope.")] = None,
    perms: Annotated[str | None, typer.Option("--perms", help="Only these permissions.")] = None,
) -> None:
    """Take permissions away (all of them on REPO unless --perms is given)."""
    if not _initialised(data).revoke(name, repo, scope, perms):
        raise Fail(f"account {name} has no grant on {repo}" + (f" ({scope})" if scope else ""))
    print(f"{name}: revoked on {repo}")


@account_app.command("list")
@command
def account_list(data: DataOpt, as_json: JsonOpt = False) -> None:
    """List accounts and their grants (never tokens)."""
    accounts = _initialised(data).list()
    lines = []
    for a in accounts:
        grants = "; ".join(f"{g['repo']} {g['scope']} {','.join(g['perms'])}" for g in a["grants"])
        lines.append(f"{a['name']}\t{grants or '(no grants)'}")
    _emit(as_json, accounts, "\n".join(lines))


@account_app.command("remove")
@command
def account_remove(name: str, data: DataOpt) -> None:
    """Delete an account; its token stops working at once."""
    _initialised(data).remove(name)
    print(f"account {name} removed")


# -- repositories ------------------------------------------------------------------


@repo_app.command("list")
@command
def repo_list(data: DataOpt, as_json: JsonOpt = False) -> None:
    """List repositories with their format and quota."""
    _initialised(data)
    storage = Storage(data)
    rows = [{"name": r, **(storage.meta(r) or {})} for r in storage.repos()]
    _emit(
        as_json,
        rows,
        "\n".join(f"{r['name']}\t{r.get('format')}\tquota={r.get('quota')}" for r in rows),
    )


@repo_app.command("quota")
@command
def repo_quota(
    name: str,
    data: DataOpt,
    max_size: Annotated[
        str, typer.Option("--max-size", help="e.g. 50G; 'none' removes the quota.")
    ],
) -> None:
    """Limit how many bytes a repository may hold (uploads past it get 507)."""
    _initialised(data)
    limit = None if max_size.lower() == "none" else _size(max_size)
    Storage(data).set_quota(name, limit)
    print(f"{name}: quota {'removed' if limit is None else f'{limit} bytes'}")


def run() -> None:
    app()


if __name__ == "__main__":
    run()
