"""What moved keeps working where it was: the modules that went into the lab, show and door
folders answer to their old import paths (with a DeprecationWarning naming the new one), and the
harness's old spelling of a transport still runs, warning at the caller's own line."""

from __future__ import annotations

import importlib
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import patterns
from patterns.lab.harness import measure
from patterns.lab.workload import Workload

TINY = Workload(items=3, low=0.001, high=0.001)


def fresh(old: str) -> None:
    """Forget the old name, so that the next import goes through the finder again."""
    sys.modules.pop(f"patterns.{old}", None)


# An old path gives the very module that moved (patching one patches the other), and warns.
@pytest.mark.parametrize("old", sorted(set(patterns.MOVED) - patterns.QUIET))
def test_an_old_path_is_the_moved_module(old: str) -> None:
    fresh(old)
    with pytest.warns(DeprecationWarning, match=f"patterns.{old} has moved: import "):
        found = importlib.import_module(f"patterns.{old}")
    assert found is importlib.import_module(patterns.MOVED[old])


# The old path leaves the module as it was: its own spec (so importlib.reload and
# importlib.resources still find where it lives).
def test_an_old_path_leaves_the_modules_spec_alone() -> None:
    fresh("harness")
    with pytest.warns(DeprecationWarning, match="patterns.harness has moved"):
        importlib.import_module("patterns.harness")
    moved = importlib.import_module("patterns.lab.harness")
    assert moved.__spec__ is not None
    assert moved.__spec__.name == "patterns.lab.harness"
    assert importlib.reload(moved) is moved


# Reloading the package installs its finder once, not once more each time.
def test_reloading_the_package_keeps_one_finder() -> None:
    importlib.reload(patterns)
    importlib.reload(patterns)
    assert sum(type(f).__qualname__ == "_Moved" for f in sys.meta_path) == 1


# An install made before the move runs `patterns.cli:main`: it works, and says nothing;
# `python -m patterns.cli` runs the command line too.
def test_the_old_entry_point_runs_quietly() -> None:
    proc = subprocess.run(
        [sys.executable, "-W", "error", "-m", "patterns.cli", "list"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=Path(__file__).parent.parent,
    )
    assert (proc.returncode, proc.stderr) == (0, "")
    assert "worker_pool" in proc.stdout


# The harness's old name of the simulated transport runs, and its warning points at the line
# that used it (not at the event loop the sync form started), so default filters show it.
def test_the_old_transport_name_warns_at_the_callers_line() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = measure("worker_pool", TINY, transport="sleep")  # type: ignore[arg-type]
    assert report.transport == "simulated"
    (warning,) = [w for w in caught if issubclass(w.category, DeprecationWarning)]
    assert 'transport "sleep" is deprecated' in str(warning.message)
    assert warning.filename == __file__


# A misspelt keyword to a sync form is that form's TypeError, raised before any loop starts.
@pytest.mark.parametrize("form", ["measure", "compare"])
def test_a_misspelt_keyword_is_named_by_the_sync_form(
    form: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from patterns.lab import harness

    monkeypatch.setattr(harness, "run_on", lambda *a: pytest.fail("a loop started"))
    call = getattr(harness, form)
    args = ("worker_pool", TINY) if form == "measure" else (TINY,)
    with pytest.raises(TypeError, match=rf"^{form}\(\) got an unexpected keyword argument 'limt'"):
        call(*args, limt=3)
