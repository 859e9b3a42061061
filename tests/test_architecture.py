"""The layers hold: no import cycles in the library (imports inside
functions included), imports point down the layers that docs/design.md
draws, neostore-server shares only leaf modules with the client, and no
module or function grows past the size limits."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: where each importable top-level package lives
PACKAGES = {
    "neostore": ROOT / "neostore",
    "neostore_cli": ROOT / "cli",
    "neostore_server": ROOT / "server",
    "neostore_ui": ROOT / "ui",
}

#: the library's layers, lowest first; a module may import its own package
#: and anything in a lower layer, nothing beside or above it
LAYERS = [
    [
        "neostore.errors",
        "neostore.progress",
        "neostore.runtime",
        "neostore.fsutil",
        "neostore.filelocks",
        "neostore.owners",
        "neostore.hostfs",
        "neostore.commandline",
    ],
    ["neostore.matcher", "neostore.format", "neostore.backend"],
    ["neostore.core"],
    ["neostore.snapshots"],
    ["neostore.browse"],
    ["neostore.shares"],
    ["neostore.backup", "neostore.restorer", "neostore.lifecycle", "neostore.mount"],
    ["neostore.api", "neostore.testing", "neostore"],
]
#: what neostore-server may use of the library and the client (DESIGN §2:
#: leaf modules with no crypto and no repository logic)
SERVER_MAY_IMPORT = {
    "neostore",
    "neostore.errors",
    "neostore.fsutil",
    "neostore.filelocks",
    "neostore.runtime",
    "neostore.backend",
    "neostore.backend.names",
    "neostore.commandline",
}
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60


def _modules() -> dict[str, Path]:
    out = {}
    for top, base in PACKAGES.items():
        for path in base.rglob("*.py"):
            parts = list(path.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join([top, *parts])] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Every module of ours that ``name`` imports, anywhere in its code."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # `from . import x` imports the module x when there is one
            targets = [f"{module}.{a.name}" for a in node.names if f"{module}.{a.name}" in MODULES]
            targets = targets or [module]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return out


def test_the_cycle_finder_finds_cycles() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles() -> None:
    library = {n: {t for t in deps if t.startswith("neostore.")} for n, deps in GRAPH.items()}
    assert _cycles(library) == []
    assert _cycles(GRAPH) == []


def _layer(module: str) -> tuple[int, str]:
    """(layer number, the layer entry that holds it) of a library module."""
    best = None
    for number, entries in enumerate(LAYERS):
        for entry in entries:
            inside = module == entry or module.startswith(entry + ".")
            if inside and (best is None or len(entry) > len(best[1])):
                best = (number, entry)
    assert best is not None, f"{module} is in no layer: add it to LAYERS"
    return best


def test_imports_point_down_the_layers() -> None:
    wrong = []
    for name, deps in GRAPH.items():
        if not name.startswith("neostore.") or name == "neostore":
            continue
        level, home = _layer(name)
        for dep in deps:
            if not dep.startswith("neostore"):
                continue
            dep_level, dep_home = _layer(dep)
            if dep_level > level or (dep_level == level and dep_home != home):
                wrong.append(f"{name} ({home}) imports {dep} ({dep_home})")
    assert wrong == []


def _used_from_outside(package: str) -> set[str]:
    """The modules of ours that ``package`` imports from other packages."""
    return {
        dep
        for name, deps in GRAPH.items()
        if name.startswith(package)
        for dep in deps
        if not dep.startswith(package)
    }


def test_the_server_shares_only_leaf_modules() -> None:
    used = _used_from_outside("neostore_server")
    assert used <= SERVER_MAY_IMPORT, sorted(used - SERVER_MAY_IMPORT)


def test_the_ui_uses_only_the_public_api() -> None:
    """neostore ui is built on ``import neostore`` (its ``__all__``), not on
    the library's modules, the CLI or the server."""
    used = _used_from_outside("neostore_ui")
    assert used <= {"neostore"}, sorted(used - {"neostore"})


def _sources() -> list[Path]:
    return sorted(MODULES.values())


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_modules_and_functions_stay_small(path: Path) -> None:
    text = path.read_text()
    lines = len(text.splitlines())
    assert lines <= MAX_MODULE_LINES, f"{lines} lines"
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert long == []


def test_every_package_is_installed() -> None:
    """pyproject.toml lists packages one by one; one left out is missing
    from a wheel (`pip install .`) while the editable install CI uses
    still finds it (neostore_cli.commands was missing that way)."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    dirs = {name: ROOT / path for name, path in config["package-dir"].items()}
    found = set()
    for top, where in dirs.items():
        for init in where.rglob("__init__.py"):
            if "__pycache__" not in init.parts:
                relative = init.parent.relative_to(where).parts
                found.add(".".join((top, *relative)))
    assert found == listed
