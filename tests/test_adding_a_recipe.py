"""Adding a recipe touches the files docs/developing.md names, and no other.

The checklist ("Adding a recipe") names the files a new recipe touches. Here its steps are done
in this process with a throwaway recipe (a real recipe's page under a new name, imported from a
temporary folder) registered by one entry in the registry; then everything that says "every
recipe" must pick it up with no other file changed: the test suite's recipe machinery (pytest
collects as many tests for it as for the recipe it copies), the command line, the benchmarks
and the cost counter.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest

from patterns.lab import costs, registry
from patterns.lab.registry import PATTERNS

ROOT = Path(__file__).parent.parent
#: The recipe the throwaway copies, and the throwaway's name.
MODEL, NAME = "buffered_unordered", "throwaway"
#: The files the checklist must name, in its order.
CHECKLIST = ["patterns/<name>.py", "patterns/lab/registry.py", "tests/test_<name>.py", "README.md"]
#: The test files whose tests are made per recipe from the registry.
MACHINERY = ["test_conformance.py", "test_copies.py", "test_docs.py"]


def checklist() -> list[str]:
    """The file each step of docs/developing.md's "Adding a recipe" opens with."""
    text = (ROOT / "docs" / "developing.md").read_text()
    section = text.split("\n## Adding a recipe\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\d+\. `([^`]+)`", section, flags=re.MULTILINE)


@pytest.fixture
def throwaway(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """Steps 1 and 2: a new recipe's page, and its entry in the registry."""
    assert NAME not in PATTERNS, f"a recipe is registered as {NAME!r}: rename the throwaway"
    page = tmp_path / f"{NAME}.py"
    page.write_text((ROOT / "patterns" / f"{MODEL}.py").read_text().replace(MODEL, NAME))
    spec = importlib.util.spec_from_file_location(f"patterns.{NAME}", page)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    monkeypatch.setitem(PATTERNS, NAME, module)
    return module


def collected(paths: list[Path]) -> list[str]:
    """The test ids pytest collects from ``paths``, in a session of its own in this process.

    The test modules are imported afresh, as a new run would import them, and put back after.
    """

    class Recorder:
        def __init__(self) -> None:
            self.ids: list[str] = []

        def pytest_collection_finish(self, session: pytest.Session) -> None:
            self.ids.extend(item.nodeid for item in session.items)

    recorder = Recorder()
    saved = {name: module for name, module in sys.modules.items() if name.startswith("tests.")}
    for name in saved:
        del sys.modules[name]
    try:
        args = ["--collect-only", "-q", "-p", "no:cacheprovider", *map(str, paths)]
        status = pytest.main(args, plugins=[recorder])
    finally:
        for name in [name for name in sys.modules if name.startswith("tests.")]:
            del sys.modules[name]
        sys.modules.update(saved)
    assert status == pytest.ExitCode.OK
    return recorder.ids


# The checklist names exactly the four files, in order: the page, the registry, its own tests,
# the README; and they are where this repository keeps each of those things.
def test_the_checklist_names_the_four_files() -> None:
    assert checklist() == CHECKLIST
    assert Path(str(registry.__file__)) == ROOT / "patterns" / "lab" / "registry.py"
    for name, pattern in PATTERNS.items():
        assert sys.modules[pattern.__name__].__file__ == str(ROOT / "patterns" / f"{name}.py")
    assert (ROOT / "tests" / "test_throttle.py").exists()  # a recipe with tests of its own
    assert set(costs.chooser_costs((ROOT / "README.md").read_text())) == set(PATTERNS)


# Registered, the throwaway gets every test the recipe it copies gets from the registry: the
# conformance suite on every backend, the copy test, the page tests.
@pytest.mark.usefixtures("throwaway")
def test_the_suite_picks_a_new_recipe_up() -> None:
    ids = collected([ROOT / "tests" / name for name in MACHINERY])

    def per_test(name: str) -> Counter[str]:
        return Counter(i.split("[")[0] for i in ids if re.search(rf"\b{name}\b", i))

    model = per_test(MODEL)
    assert {i.split("::")[0] for i in model} == {f"tests/{name}" for name in MACHINERY}
    assert per_test(NAME) == model


# Registered, the throwaway is a command of its own, a benchmark scenario's implementation,
# and a recipe the cost counter measures and writes into its chooser row (step 4), which it
# refuses to skip.
def test_the_rest_picks_a_new_recipe_up(throwaway: ModuleType) -> None:
    from bench.scenarios import implementations
    from patterns.door.cli import build_parser

    assert build_parser().parse_args([NAME]).pattern == NAME
    assert NAME in {impl.name for impl in implementations()}
    readme = (ROOT / "README.md").read_text()
    row = f"| [`{NAME}`](patterns/{NAME}.py) | you want to try | none | ? |\n"
    chooser = readme.replace(f"| [`{MODEL}`]", row + f"| [`{MODEL}`]", 1)
    counts = dict.fromkeys(PATTERNS, 12_345.0)
    assert costs.chooser_costs(costs.write_chooser(chooser, counts))[NAME] == "12k instr."
    with pytest.raises(ValueError, match=NAME):
        costs.write_chooser(readme, counts)
