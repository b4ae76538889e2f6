"""Every notebook runs headless, top to bottom, on a small workload; a cell that raises fails.

They run in a real Jupyter kernel (nbclient), so top-level ``await`` in Jupyter's own event loop
is exercised as a reader would use it.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat import NotebookNode

from tests.notebook_lock import notebooks_lock

ROOT = Path(__file__).parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


# There are the five notebooks the README promises, committed without outputs.
def test_notebooks_are_committed_clean() -> None:
    assert [path.stem for path in NOTEBOOKS] == [
        "01-tour",
        "02-sweeps",
        "03-footguns",
        "04-parallelism",
        "05-adaptive",
    ]
    for path in NOTEBOOKS:
        book = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
        for cell in book.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [], f"{path.name} has outputs committed"
                assert cell.execution_count is None


@pytest.fixture(scope="module")
def executed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[Path, NotebookNode | BaseException]:
    """Every notebook selected for test_notebook_runs, executed at once, each in a kernel of its
    own: the executed notebook, or what its execution raised.

    A notebook spends most of its time waiting (on a kernel starting, on simulated calls), so
    side by side they take about as long as the slowest one alone.
    """
    selected = {
        item.callspec.params["path"]
        for item in request.session.items
        if isinstance(item, pytest.Function) and item.function is test_notebook_runs
    }
    wanted = [path for path in NOTEBOOKS if path in selected]

    async def execute(path: Path) -> NotebookNode:
        book = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
        here = str(tmp_path_factory.mktemp(path.stem))
        client = NotebookClient(
            book, timeout=240, kernel_name="python3", resources={"metadata": {"path": here}}
        )
        return await client.async_execute()

    async def execute_all() -> list[NotebookNode | BaseException]:
        return await asyncio.gather(*map(execute, wanted), return_exceptions=True)

    with pytest.MonkeyPatch.context() as monkeypatch, notebooks_lock():
        monkeypatch.setenv("PATTERNS_NOTEBOOK_SMALL", "1")
        # jupyter_core warns about its old config paths unless told to use the new ones.
        monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
        executed = dict(zip(wanted, asyncio.run(execute_all()), strict=True))
        keep_for_the_site(executed)
    return executed


def keep_for_the_site(executed: dict[Path, NotebookNode | BaseException]) -> None:
    """The site (mkdocs.yml) shows these executions as its recorded run, instead of executing
    the notebooks again: kept in build/notebooks/ by the site's own writer."""
    spec = importlib.util.spec_from_file_location("site_hooks", ROOT / "docs/site/hooks.py")
    if spec is None or spec.loader is None:
        return
    site = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = site  # its dataclasses look their module up there
    spec.loader.exec_module(site)
    for path, book in executed.items():
        if not isinstance(book, BaseException):
            kept = ROOT / site.NOTEBOOK_CACHE / path.name
            site.record(kept, book, site.source_hash(path), "tests/test_notebooks.py")


# Each notebook executes, every cell, without an error.
@pytest.mark.timeout(300)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_notebook_runs(path: Path, executed: dict[Path, NotebookNode | BaseException]) -> None:
    book = executed[path]
    if isinstance(book, BaseException):
        raise book
    images = [
        output
        for cell in book.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if "image/png" in output.get("data", {})
    ]
    assert images, f"{path.name} drew no picture"
