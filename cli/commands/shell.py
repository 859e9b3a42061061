"""``completion``: the shell completion script, and ``--version``."""

from __future__ import annotations

from typing import Annotated

import click
import typer

SHELLS = ["bash", "zsh", "fish", "powershell"]
#: the variable the scripts set when they ask neostore for completions
COMPLETE_VAR = "_NEOSTORE_COMPLETE"


def completion(
    shell: Annotated[str, typer.Argument(click_type=click.Choice(SHELLS), help="Your shell.")],
) -> None:
    """Print the completion script for SHELL.

    bash: neostore completion bash > ~/.local/share/bash-completion/completions/neostore
    zsh: neostore completion zsh > "${fpath[1]}/_neostore"
    fish: neostore completion fish > ~/.config/fish/completions/neostore.fish
    powershell: neostore completion powershell >> $PROFILE"""
    from typer._completion_shared import get_completion_script

    print(get_completion_script(prog_name="neostore", complete_var=COMPLETE_VAR, shell=shell))


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("neostore")
    except PackageNotFoundError:  # run from a source tree that is not installed
        return "unknown"


def print_version(value: bool) -> None:
    """``--version``: print and stop (an eager option's callback)."""
    if value:
        print(f"neostore {version()}")
        raise typer.Exit(0)
