"""Problems and notices on stderr: a line of text, or under ``--json`` a
JSON object per line (``type``, ``message``, and ``path`` or
``exit_code`` when there is one) that other programs can read."""

from __future__ import annotations

import json
import os
import sys

from neostore.commandline import json_requested


def line(
    kind: str, message: str, path: bytes | str | None = None, as_json: bool | None = None
) -> str:
    """What :func:`say` writes, as text or JSON as the command runs
    (``as_json`` None: as the command was given; Click knows that only in
    the command's own thread, so reporters called from others say it)."""
    shown = os.fsdecode(path) if path else None
    if json_requested() if as_json is None else as_json:
        obj: dict[str, object] = {"type": kind, "message": message}
        if shown is not None:
            obj["path"] = shown
        return json.dumps(obj, ensure_ascii=False)
    return f"{kind}: {shown}: {message}" if shown else f"{kind}: {message}"


def say(kind: str, message: str, path: bytes | str | None = None) -> None:
    """``warning``, ``error``, ``tampering`` or ``notice`` on stderr."""
    print(line(kind, message, path), file=sys.stderr)
