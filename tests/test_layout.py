"""The layout is the architecture. Every module at the top of ``patterns/`` is a page a reader
copies: it stands on anyio, the standard library and ``contract.py`` alone. Above the pages, each
folder is a floor that imports only the floors below it: the lab measures the pages, show draws
what the lab reports, the footgun exhibits stand on the lab, and the door (the command line)
stands on all of them. Nothing imports upward and no two modules import each other in a circle.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from patterns import PATTERNS
from patterns.lab.registry import ADAPTERS, CLUSTER_PATTERNS

PACKAGE = Path(__file__).parent.parent / "patterns"
# The pages beside the registered recipes: the one helper they import, the Dask client the
# cluster recipes share, the accept-loop recipe, and the limit that adapts with its retries.
HELPERS = {"contract", "cluster", "server", "adaptive", "retry"}
# Each floor, and the floors it may import (the pages are floor "", at the bottom).
FLOORS: dict[str, set[str]] = {
    "": set(),
    "lab": {""},
    "show": {"", "lab"},
    "footguns": {"", "lab"},
    "door": {"", "lab", "show", "footguns"},
}
# What each floor may import from outside the package, besides the standard library.
THIRD_PARTY: dict[str, set[str]] = {
    "": {"anyio"},
    "lab": {"anyio"},
    "show": {"anyio", "rich", "matplotlib"},  # matplotlib: the plot extra, imported to draw
    "footguns": {"anyio"},
    "door": {"anyio", "rich"},
}
# Optional packages a module imports inside the functions that need them (its extra's).
OPTIONAL = {
    "cluster": {"distributed"},
    "cluster_window": {"distributed", "cloudpickle"},  # Dask's own pickler, which it brings
    "cluster_limit": {"distributed"},
    "footguns/two_limits": {"httpx2"},  # builds its own client, with a pool of its own size
}
# A page built on a library every install has (a dependency, not an extra).
BUILT_ON = {"retry": {"tenacity"}}
# The http extra, for the lab's modules that serve and call the service over HTTP.
HTTP = {"uvicorn", "httpx2", "httpx", "aiohttp"}
# The longest module; the throttle alone is allowed more (its nesting needs the room).
MAX_LINES, MAX_LINES_THROTTLE = 400, 600


def modules() -> dict[str, Path]:
    """Every module of the package by name relative to it: ``worker_pool``, ``lab/harness``,
    ``show/plots/__init__``."""
    return {str(path.relative_to(PACKAGE).with_suffix("")): path for path in PACKAGE.rglob("*.py")}


def floor(module: str) -> str:
    return module.split("/")[0] if "/" in module else ""


def imports(module: str, path: Path) -> set[str]:
    """The absolute names ``module`` imports, at any depth of its code."""
    package = ["patterns", *module.split("/")[:-1]]
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module_name = ".".join([*base, node.module] if node.module else base)
            names.add(module_name)
            names |= {f"{module_name}.{alias.name}" for alias in node.names}
    return names


def internal(module: str, path: Path) -> set[str]:
    """The package's own modules that ``module`` imports, named as :func:`modules` names them."""
    known = modules()
    found = set()
    for name in imports(module, path):
        parts = name.split(".")
        if parts[0] != "patterns":
            continue
        relative = "/".join(parts[1:])
        if relative in known:
            found.add(relative)
        elif f"{relative}/__init__" in known:
            found.add(f"{relative}/__init__")
    return found - {module}


# Every module at the top is a page to copy: a registered recipe or one of the pages' helpers.
def test_the_top_holds_only_pages() -> None:
    top = {name for name in modules() if "/" not in name} - {"__init__", "__main__"}
    assert top == {*PATTERNS, *ADAPTERS, *CLUSTER_PATTERNS, *HELPERS}


# Every folder is a floor that this test places.
def test_every_folder_is_a_floor() -> None:
    assert {floor(name) for name in modules()} == set(FLOORS)


# Each module imports only its own floor and the floors below it; the package's __init__ and
# __main__ are the entrances, and import lazily whatever they hand over to.
@pytest.mark.parametrize("module", sorted(set(modules()) - {"__init__", "__main__"}))
def test_imports_point_down(module: str) -> None:
    path = modules()[module]
    for name in internal(module, path):
        assert floor(name) in {floor(module), *FLOORS[floor(module)]}, f"{module} imports {name}"
        if floor(module) == "":
            # A page imports only pages, relatively, so that it works copied beside them.
            pages = {"contract", "cluster", "cluster_window", "adaptive"}
            assert name in pages, f"{module} imports {name}"
    allowed = THIRD_PARTY[floor(module)] | OPTIONAL.get(module, set()) | BUILT_ON.get(module, set())
    if module.startswith("lab/http"):
        allowed |= HTTP
    outside = {n.split(".")[0] for n in imports(module, path)} - {"patterns", "__future__"}
    assert outside <= allowed | set(sys.stdlib_module_names), (module, outside - allowed)


# No circle of imports: following imports from any module never comes back to it.
def test_no_cycles() -> None:
    graph = {name: internal(name, path) for name, path in modules().items()}
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, " -> ".join([*path, name])
        if name in done:
            return
        for nxt in sorted(graph[name]):
            visit(nxt, (*path, name))
        done.add(name)

    for name in sorted(graph):
        visit(name, ())


# No module grows past a screenful of screens: 400 lines, the throttle alone 600.
@pytest.mark.parametrize("module", sorted(modules()))
def test_modules_stay_short(module: str) -> None:
    lines = len(modules()[module].read_text().splitlines())
    assert lines <= (MAX_LINES_THROTTLE if module == "throttle" else MAX_LINES), lines


# The door only parses and dispatches: cli.py at most 350 lines, no function over 60.
def test_the_door_is_thin() -> None:
    assert len((PACKAGE / "door" / "cli.py").read_text().splitlines()) <= 350
    for path in (PACKAGE / "door").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                assert length <= 60, f"{path.name}: {node.name} is {length} lines"


# Each recipe's docstring says what it is, when to use it, its failure mode and its cost; the
# accept-loop recipe's too.
@pytest.mark.parametrize("name", [*PATTERNS, "server"])
def test_recipe_docstrings(name: str) -> None:
    doc = ast.get_docstring(ast.parse((PACKAGE / f"{name}.py").read_text())) or ""
    for heading in ("What it is", "When to use it", "Failure mode", "Cost (measured)"):
        assert f"\n{heading}\n" in doc, f"{name} lacks {heading!r}"


# A recipe reaches its helper by a relative import, so that the two files work side by side in
# any package of the reader's; and the helper stays small enough to read (at most 230 lines;
# it holds the package's one argument check, the stand-in for a failure that cannot cross
# processes as itself, and what a limit that adapts must offer a recipe, too).
@pytest.mark.parametrize("name", list(PATTERNS))
def test_recipes_import_their_helper_relatively(name: str) -> None:
    tree = ast.parse((PACKAGE / f"{name}.py").read_text())
    froms = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert [(n.level, n.module) for n in froms if n.level] == [(1, "contract")]
    assert not [n.module for n in froms if (n.module or "").startswith("patterns")]
    assert len((PACKAGE / "contract.py").read_text().splitlines()) <= 230
