"""The layout is the architecture: recipes stand on anyio and contract.py alone; nothing imports
upward, so a recipe can be copied out with contract.py beside it and nothing else."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from patterns import PATTERNS
from patterns.lab.registry import ADAPTERS, CLUSTER_PATTERNS

PACKAGE = Path(__file__).parent.parent / "patterns"
# Each module, and the package modules it may import; lower layers never import higher ones.
ALLOWED = {
    # The one helper a recipe may import: copied beside it, it needs only anyio.
    "contract": set(),
    "core": {"contract"},
    "workload": {"contract"},
    # The other side of the calls: the workload's calls, through a capacity.
    "service": {"contract", "workload"},
    # The same model over real HTTP: a server process serving a Service, and its clients.
    "http": {"contract", "service", "workload"},
    "probe": {"core"},
    "registry": {"core", *PATTERNS, *ADAPTERS, *CLUSTER_PATTERNS},
    # The accept-loop recipe: copied with contract.py, like the pattern recipes.
    "server": {"contract"},
    "threads_vs_async": {"contract", "probe", "server"},
    "harness": {
        "contract",
        "core",
        "http",
        "probe",
        "registry",
        "server",
        "service",
        "workload",
        *ADAPTERS,
    },
    "plots": {"harness", "probe"},
    # Types only from server and threads_vs_async: what their results look like.
    "present": {"harness", "server", "threads_vs_async"},
    # The command line is a door: it parses, and hands over to commands.
    "cli": {
        "commands",
        "contract",
        "harness",
        "http",
        "registry",
        "service",
        "workload",
        "threads_vs_async",
    },
    "commands": {
        "cluster",
        "contract",
        "footguns",
        "harness",
        "http",
        "service",
        "on_cluster",
        "plots",
        "present",
        "registry",
        "server",
        "threads_vs_async",
        "workload",
    },
    # Exhibits show a recipe broken and fixed: they stand on the recipes, like the harness.
    # The exhibits' one instrument is the harness's probe.
    "footguns/__init__": {"probe"},
    # And on the adapters and the workload's sync calls, where the footgun is sync work; on
    # the service model, simulated or over HTTP, where the footgun is what the other side felt.
    **{
        f"footguns/{p.stem}": {
            "core",
            "workload",
            "service",
            "http",
            "probe",
            *PATTERNS,
            *ADAPTERS,
        }
        for p in (PACKAGE / "footguns").glob("*.py")
        if p.stem != "__init__"
    },
    "__main__": {"cli"},
    "__init__": {"core", "registry"},
    # A recipe imports the contract helper, relatively, and nothing else of the package.
    **{name: {"contract"} for name in [*PATTERNS, *ADAPTERS]},
    # The cluster recipes: the contract and their own helper (the Dask client); the limit
    # stands on the window.
    "cluster": set(),
    "cluster_window": {"cluster", "contract"},
    "cluster_limit": {"cluster", "cluster_window", "contract"},
    # Above the harness: the same Report, measured from the spans the calls bring back, on
    # one local cluster for every recipe.
    "on_cluster": {"cluster", "core", "harness", "probe", "registry", "workload"},
}
THIRD_PARTY = {"anyio", "rich"}
# Optional packages a module may import where it needs them.
OPTIONAL = {
    "plots": {"matplotlib"},
    # The cluster extra: imported inside the functions that need it.
    "cluster": {"distributed"},
    "cluster_window": {"distributed", "cloudpickle"},  # Dask's own pickler, which it brings
    "cluster_limit": {"distributed"},
    # The http extra: the server and the clients, imported inside the functions that need them.
    "http": {"uvicorn", "httpx2", "httpx", "aiohttp"},
    # The exhibit of two limits builds its own client, to give it a pool of its own size.
    "footguns/two_limits": {"httpx2"},
}


def imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            # `from .contract import x` in the package is `patterns.contract`.
            module = f"patterns.{node.module}" if node.level == 1 else node.module
            names.add(module)
            if module == "patterns":
                names |= {f"patterns.{alias.name}" for alias in node.names}
    return names


# Every module in the package is placed in a layer.
def test_every_module_has_a_layer() -> None:
    found = {p.stem for p in PACKAGE.glob("*.py")}
    found |= {f"footguns/{p.stem}" for p in (PACKAGE / "footguns").glob("*.py")}
    assert found == set(ALLOWED)


# Each module imports only the layers below it, and only anyio and rich from outside.
@pytest.mark.parametrize("module", sorted(ALLOWED))
def test_imports_point_down(module: str) -> None:
    for name in imports(PACKAGE / f"{module}.py"):
        if module.startswith("footguns/") and name.startswith("patterns.footguns"):
            continue
        top, _, rest = name.partition(".")
        if top == "patterns":
            if rest:
                assert rest.split(".")[0] in ALLOWED[module], f"{module} imports {name}"
        elif module.startswith("footguns/") or module in {"contract", "core", *PATTERNS}:
            allowed = {"anyio", "__future__"} | OPTIONAL.get(module, set())
            assert top in allowed or top in sys.stdlib_module_names, name
        else:
            allowed = THIRD_PARTY | OPTIONAL.get(module, set())
            assert top in allowed or top in sys.stdlib_module_names or top == "__future__", name


# Each recipe's docstring says what it is, when to use it, its failure mode and its cost.
@pytest.mark.parametrize("name", list(PATTERNS))
def test_recipe_docstrings(name: str) -> None:
    doc = PATTERNS[name].__doc__ or ""
    for heading in ("What it is", "When to use it", "Failure mode", "Cost (measured)"):
        assert f"\n{heading}\n" in doc, f"{name} lacks {heading!r}"


# A recipe reaches its helper by a relative import, so that the two files work side by side in
# any package of the reader's; and the helper stays small enough to read (at most 200 lines;
# it holds the package's one argument check, and the stand-in for a failure that cannot cross
# processes as itself, too).
@pytest.mark.parametrize("name", list(PATTERNS))
def test_recipes_import_their_helper_relatively(name: str) -> None:
    tree = ast.parse((PACKAGE / f"{name}.py").read_text())
    froms = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert [(n.level, n.module) for n in froms if n.level] == [(1, "contract")]
    assert not [n.module for n in froms if (n.module or "").startswith("patterns")]
    assert len((PACKAGE / "contract.py").read_text().splitlines()) <= 200
