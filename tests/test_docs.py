"""The code a reader copies runs: every recipe page's examples and every README code block.

Sybil finds the ```python blocks in the README and in the recipes' module docstrings; the
blocks of one page run in order in one namespace, as a reader pasting them into one file
would. They are linted as that one file too (examples are code, not exempt from the rules).
The README's shell blocks are checked as far as they can be without running them: every
``python -m patterns`` command parses, and every extra installed exists.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from sybil import Sybil
from sybil.document import PythonDocument
from sybil.parsers.markdown import CodeBlockParser, PythonCodeBlockParser

from patterns import PATTERNS
from patterns.door.cli import build_parser
from patterns.lab.registry import ADAPTERS, CLUSTER_PATTERNS

ROOT = Path(__file__).parent.parent
README = ROOT / "README.md"
DOCS = [README, *sorted((ROOT / "docs").glob("*.md"))]
RECIPES = [ROOT / "patterns" / f"{name}.py" for name in [*PATTERNS, *ADAPTERS, *CLUSTER_PATTERNS]]
PAGES = [*DOCS, *RECIPES]
PYTHON = Sybil(parsers=[PythonCodeBlockParser()])


def page_id(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def python_blocks(path: Path) -> list[str]:
    return [str(example.parsed) for example in PYTHON.parse(path)]


# Every block of the page runs, top to bottom, without an error, and prints what it did.
@pytest.mark.parametrize("path", [p for p in PAGES if python_blocks(p)], ids=page_id)
def test_examples_run(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    document = PYTHON.parse(path)
    if isinstance(document, PythonDocument):
        # Not in the recipe module's namespace, as Sybil would: a reader's copy has only
        # what its blocks import.
        document.pop_evaluator(document.import_document)
    # Run as a script is run: a page whose example starts worker processes guards its
    # anyio.run with `if __name__ == "__main__":`, as a script must.
    document.namespace["__name__"] = "__main__"
    for example in document:
        example.evaluate()
    assert capsys.readouterr().out.strip(), f"{page_id(path)}'s examples printed nothing"


# A recipe page opens with its shortest complete use: a main() run by anyio.run, near the top.
@pytest.mark.parametrize("path", RECIPES, ids=page_id)
def test_recipe_page_opens_with_a_short_complete_example(path: Path) -> None:
    first = next(iter(PYTHON.parse(path)))
    assert first.line <= 8, f"the first example starts at line {first.line}"
    code = str(first.parsed)
    assert "async def main() -> None:" in code
    assert code.rstrip().endswith("anyio.run(main)")
    lines = [line for line in code.splitlines() if line.strip()]
    assert len(lines) <= 20, f"{len(lines)} non-blank lines: not the shortest use"


# Each recipe page says how it differs from the textbook version of its pattern.
@pytest.mark.parametrize("path", RECIPES, ids=page_id)
def test_recipe_page_compares_itself_with_the_textbook_version(path: Path) -> None:
    doc = path.read_text()
    assert "\nBeside the textbook version\n" in doc


# The blocks of a page, as one file, pass the project's own lint and format rules.
@pytest.mark.parametrize("path", [p for p in PAGES if python_blocks(p)], ids=page_id)
def test_examples_pass_lint(path: Path) -> None:
    ruff = [sys.executable, "-m", "ruff"]
    # One file made of the page's blocks: imports come block by block, so not all at the top.
    source = "\n\n".join(python_blocks(path))
    name = f"{path.stem}_examples.py"
    check = subprocess.run(
        [*ruff, "check", "--extend-ignore", "E402", "--stdin-filename", name, "-"],
        input=source,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    for block in python_blocks(path):
        fmt = subprocess.run(
            [*ruff, "format", "--diff", "--stdin-filename", name, "-"],
            input=block,
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        assert fmt.returncode == 0, fmt.stdout + fmt.stderr


def shell_lines() -> list[str]:
    lines: list[str] = []

    def collect(example: object) -> None:
        lines.extend(str(example.parsed).splitlines())  # type: ignore[attr-defined]

    shell = Sybil(parsers=[CodeBlockParser(language="sh", evaluator=collect)])
    for page in DOCS:
        for example in shell.parse(page):
            example.evaluate()
    return lines


def commands(pattern: str) -> list[list[str]]:
    """The arguments after ``pattern`` in each shell command of the README."""
    found = []
    for line in shell_lines():
        for part in line.split("&&"):
            words = shlex.split(part, comments=True)
            cut = len(pattern.split())
            for i in range(len(words) - cut + 1):
                if words[i : i + cut] == pattern.split():
                    found.append(words[i + cut :])
    return found


# Every `python -m patterns ...` the README and docs show is accepted by the command line.
def test_readme_commands_parse() -> None:
    found = commands("-m patterns")
    assert len(found) >= 7
    parser = build_parser()
    for argv in found:
        args, extra = parser.parse_known_args(argv)  # an unknown command exits 2
        assert args.command, argv
        assert not extra, argv


# Every page README links to exists, and so does every page a docs page links to.
@pytest.mark.parametrize("path", DOCS, ids=page_id)
def test_links_resolve(path: Path) -> None:
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", path.read_text()):
        if "://" not in target:
            assert (path.parent / target).exists(), f"{page_id(path)} links to {target}"


# The README stays a front page: what it is, the two commands, the chooser, one example.
def test_readme_is_a_front_page() -> None:
    assert len(README.read_bytes()) < 16_000


# Every extra the README and docs install is declared in pyproject.toml.
def test_readme_extras_exist() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    wanted = {
        match
        for line in shell_lines()
        for match in re.findall(r"pip install -e '\.\[(\w+)\]'", line)
    }
    assert wanted >= {"test", "bench", "notebook"}
    assert wanted <= set(extras)


def _rounded(value: float) -> str:
    """A cost as the pages quote it: two significant figures ("2.2", "17", "57")."""
    return f"{value:.2g}" if value < 10 else f"{round(value)}"


# An adapter's hand-off cost is quoted in the README's chooser and on its page: the same.
@pytest.mark.parametrize("name", list(ADAPTERS))
def test_adapter_cost_agrees(name: str) -> None:
    page = (ROOT / "patterns" / f"{name}.py").read_text()
    cost = page.split("\nCost (measured)\n", 1)[1].split()[0]
    (chooser,) = re.findall(rf"^\| \[`{name}`\].*\| ([\d.–]+) ms \|$", README.read_text(), re.M)
    assert chooser == cost, f"README says {chooser} ms, {name}.py {cost}"


# A pattern's cost per item is quoted in three places: all three say what the table measured.
@pytest.mark.parametrize("name", list(PATTERNS))
def test_cost_per_item_agrees_everywhere(name: str) -> None:
    bench = (ROOT / "docs" / "benchmarks.md").read_text()
    (measured,) = re.findall(rf"^{name} +pattern +([\d.]+)", bench, flags=re.MULTILINE)
    quoted = _rounded(float(measured))
    (chooser,) = re.findall(rf"^\| \[`{name}`\].*\| ([\d.]+) µs \|$", README.read_text(), re.M)
    assert chooser == quoted, f"README says {chooser} µs, the benchmark table {measured}"
    page = (ROOT / "patterns" / f"{name}.py").read_text()
    cost = page.split("\nCost (measured)\n", 1)[1].split()[0]
    assert cost == quoted, f"{name}.py says {cost} µs, the benchmark table {measured}"


# The cluster's throughput is quoted on the limit's recipe page and measured in
# docs/cluster.md's table: the page says what the table says.
def test_cluster_figures_agree() -> None:
    page = (ROOT / "patterns" / "cluster_limit.py").read_text()
    quoted = re.search(
        r"it moved (\d+) calls a second where\s+the window\s+alone\s+moved (\d+)", page
    )
    assert quoted is not None
    table = (ROOT / "docs" / "cluster.md").read_text()
    for name, rate in zip(("cluster_limit", "cluster_window"), quoted.groups(), strict=True):
        assert re.search(rf"^\| `{name}`[^|]*\| {rate} \|", table, re.M), name
