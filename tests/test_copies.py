"""Copy it and it works: each recipe, with contract.py beside it, in a package of the reader's.

Each recipe and the one helper it may import are copied into a fresh package outside the
project; in a fresh process, where `import patterns` is made impossible, the copy must keep the
contract on every backend (tests/copied_recipe.py says which promises), and the server its own
(tests/copied_server.py).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sybil import Sybil
from sybil.parsers.markdown import PythonCodeBlockParser

from patterns import PATTERNS
from patterns.lab.registry import ADAPTERS, CLUSTER_PATTERNS

PACKAGE = Path(__file__).parent.parent / "patterns"
CHECK = Path(__file__).parent / "copied_recipe.py"
CHECK_SERVER = Path(__file__).parent / "copied_server.py"
BACKENDS = ["asyncio", "uvloop", "trio"]
#: Every page a reader copies: the recipes of the contract, the adapters, the cluster's, the
#: server, and the limit that adapts with its retries.
PAGES = [*PATTERNS, *ADAPTERS, *CLUSTER_PATTERNS, "server", "adaptive", "retry"]


@pytest.fixture(scope="module")
def reader_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A reader's project with every recipe copied into its own package, as a reader would."""
    root = tmp_path_factory.mktemp("reader_project")
    app = root / "reader_app"
    app.mkdir()
    (app / "__init__.py").write_text("")
    for name in [*PAGES, "cluster", "contract"]:
        shutil.copy(PACKAGE / f"{name}.py", app / f"{name}.py")
    for check in (CHECK, CHECK_SERVER):
        shutil.copy(check, root / check.name)
    return root


def run_copied(root: Path, script: str, *arguments: str) -> str:
    """Run ``script`` in a fresh interpreter in the reader's project; what it printed."""
    proc = subprocess.run(
        [sys.executable, script, *arguments],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    return proc.stdout.strip()


# A recipe copied with its helper, and nothing else, keeps the contract on every backend.
@pytest.mark.parametrize("name", list(PATTERNS))
def test_copied_recipe_keeps_the_contract(reader_project: Path, name: str) -> None:
    said = run_copied(reader_project, CHECK.name, f"reader_app.{name}", *BACKENDS)
    assert said.splitlines() == [f"reader_app.{name} on {backend}: ok" for backend in BACKENDS]


# The server copied with its helper keeps its promises on every backend: never above the cap,
# busy or a wait when full, nothing accepted after a shutdown, a drain, every socket closed.
@pytest.mark.parametrize("backend", BACKENDS)
def test_copied_server_keeps_its_promises(reader_project: Path, backend: str) -> None:
    said = run_copied(reader_project, CHECK_SERVER.name, "reader_app.server", backend)
    assert said == f"reader_app.server on {backend}: ok"


# A recipe page's opening example runs against the copy, its imports pointed at the reader's
# package as the comment on each line says ("copied: from yourapp import ...").
@pytest.mark.parametrize("name", PAGES)
def test_copied_recipe_runs_its_page_example(reader_project: Path, name: str) -> None:
    first = next(iter(Sybil(parsers=[PythonCodeBlockParser()]).parse(PACKAGE / f"{name}.py")))
    example, changed = re.subn(
        r"^from patterns(\.\w+)? import (.+?)  # copied: from yourapp(\.\w+)? import .+$",
        r"from reader_app\1 import \2",
        str(first.parsed),
        flags=re.MULTILINE,
    )
    imports = len(re.findall(r"^from patterns", str(first.parsed), flags=re.MULTILINE))
    assert changed == imports >= 1, "an import line does not say how to import the copy"
    script = reader_project / f"example_{name}.py"
    script.write_text('import sys\n\nsys.modules["patterns"] = None\n' + example)
    assert run_copied(reader_project, script.name)
