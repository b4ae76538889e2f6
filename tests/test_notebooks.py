"""Every notebook runs headless, top to bottom, on a small workload; a cell that raises fails.

They run in a real Jupyter kernel (nbclient), so top-level ``await`` in Jupyter's own event loop
is exercised as a reader would use it.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


# There are the four notebooks the README promises, committed without outputs.
def test_notebooks_are_committed_clean() -> None:
    assert [path.stem for path in NOTEBOOKS] == [
        "01-tour",
        "02-sweeps",
        "03-footguns",
        "04-parallelism",
    ]
    for path in NOTEBOOKS:
        book = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
        for cell in book.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [], f"{path.name} has outputs committed"
                assert cell.execution_count is None


# Each notebook executes, every cell, without an error.
@pytest.mark.timeout(300)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_notebook_runs(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATTERNS_NOTEBOOK_SMALL", "1")
    # jupyter_core warns about its old config paths unless told to use the new ones.
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    book = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
    client = NotebookClient(
        book, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    images = [
        output
        for cell in book.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if "image/png" in output.get("data", {})
    ]
    assert images, f"{path.name} drew no picture"
