"""What the ``neostore`` and ``neostore-server`` commands share: exit codes,
the error that ends a command with one, the Typer app settings, and the
wrapper that turns errors into one line on stderr and an exit code.

A leaf module (Typer only), for programs' entry points: it is the one
module of the package that writes to stderr, and no library module imports
it. neostore-server uses it without the client's code (DESIGN §2).
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from enum import IntEnum
from typing import Any, NoReturn, TypeVar

import typer


class ExitCode(IntEnum):
    """Exit codes (restic's where one exists); the README's table."""

    OK = 0
    #: any fatal error, integrity failures included
    FATAL = 1
    #: malformed command line
    USAGE = 2
    #: done, but not everything as asked: a snapshot without some source
    #: files it could not read, a restore that renamed or left out entries
    #: whose names the destination cannot hold
    PARTIAL = 3
    NO_REPOSITORY = 10
    LOCKED = 11
    WRONG_PASSWORD = 12
    #: the key in use lacks the role for this command
    PERMISSION = 13
    #: tampering detected (the command did what was still safe first)
    TAMPERED = 14
    INTERRUPTED = 130


class Fail(Exception):
    """End the command with ``message`` on stderr and exit ``code``."""

    def __init__(self, message: str, code: int = ExitCode.FATAL) -> None:
        super().__init__(message)
        self.code = code


def make_app(name: str, help_text: str, **settings: Any) -> typer.Typer:
    """A Typer app with the settings every neostore command uses: errors
    are ours to print (no rich tracebacks), ``-h`` is ``--help``."""
    return typer.Typer(
        name=name,
        help=help_text,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        context_settings={"help_option_names": ["-h", "--help"]},
        **settings,
    )


def json_requested() -> bool:
    """Whether the command running was given ``--json`` (its errors are
    then JSON objects on stderr too)."""
    import click

    ctx = click.get_current_context(silent=True)
    while ctx is not None:
        if ctx.params.get("json_output"):
            return True
        ctx = ctx.parent
    return False


def die(prog: str, message: str, code: int) -> NoReturn:
    if json_requested():
        import json

        error = {"type": "error", "message": message, "exit_code": int(code)}
        print(json.dumps(error, ensure_ascii=False), file=sys.stderr)
    else:
        print(f"{prog}: {message}", file=sys.stderr)
    raise typer.Exit(code)


F = TypeVar("F", bound=Callable[..., None])
#: an error the program knows → (message, exit code); None: not one of its own
Translate = Callable[[BaseException], tuple[str, int] | None]


class guarded:
    """Wrap a command so that every error it raises ends it with one line
    on stderr and an exit code: ``Fail`` as it says, the program's own
    errors through ``translate``, Ctrl-C as 130, a closed stdout quietly,
    other OS errors with the file they concern. Anything else is a bug and
    keeps its traceback."""

    def __init__(self, prog: str, translate: Translate, interrupted: str = "interrupted") -> None:
        self.prog = prog
        self.translate = translate
        self.interrupted = interrupted

    def __call__(self, func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> None:
            try:
                func(*args, **kwargs)
            except KeyboardInterrupt:
                die(self.prog, self.interrupted, ExitCode.INTERRUPTED)
            except Fail as e:
                die(self.prog, str(e), e.code)
            except BrokenPipeError:
                raise typer.Exit(ExitCode.FATAL) from None
            except MemoryError:  # one line: a traceback would need memory too
                die(self.prog, "out of memory", ExitCode.FATAL)
            except Exception as e:
                known = self.translate(e)
                if known is not None:
                    die(self.prog, *known)
                if isinstance(e, OSError):
                    where = f"{os.fsdecode(e.filename)}: " if e.filename else ""
                    die(self.prog, f"{where}{e.strerror or e}", ExitCode.FATAL)
                raise

        return wrapper  # type: ignore[return-value]
