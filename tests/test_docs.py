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
from patterns.lab.costs import chooser_costs, quoted
from patterns.lab.registry import ADAPTERS, CLUSTER_PATTERNS

ROOT = Path(__file__).parent.parent
README = ROOT / "README.md"
DOCS = [README, *sorted((ROOT / "docs").glob("*.md"))]


def page_of(name: str) -> Path:
    """A registered recipe's page: its module's file, wherever the module was imported from."""
    recipe = {**PATTERNS, **ADAPTERS, **CLUSTER_PATTERNS}[name]
    return Path(str(sys.modules[recipe.__name__].__file__))


# A recipe joins these tests by registering: every registered recipe's page is read; and the
# pages with no registry entry: the accept-loop recipe, which serves calls rather than makes
# them, and the limit that adapts and its retries, which any recipe takes.
RECIPES = [
    *(page_of(name) for name in [*PATTERNS, *ADAPTERS, *CLUSTER_PATTERNS]),
    *(ROOT / "patterns" / f"{name}.py" for name in ("server", "adaptive", "retry")),
]
PAGES = [*DOCS, *RECIPES]
PYTHON = Sybil(parsers=[PythonCodeBlockParser()])


def page_id(path: Path) -> str:
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.name


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


def cost_figure(path: Path) -> str:
    """The figure a recipe page's "Cost (measured)" section opens with."""
    return path.read_text().split("\nCost (measured)\n", 1)[1].split()[0]


# An adapter's hand-off cost is quoted in the README's chooser and on its page: the same.
@pytest.mark.parametrize("name", list(ADAPTERS))
def test_adapter_cost_agrees(name: str) -> None:
    cost = cost_figure(page_of(name))
    (chooser,) = re.findall(rf"^\| \[`{name}`\].*\| ([\d.–]+) ms \|$", README.read_text(), re.M)
    assert chooser == cost, f"README says {chooser} ms, {name}.py {cost}"


# A recipe's cost per item lives in one generated place, the last cell of its chooser row
# (`python -m patterns.lab.costs --write README.md` writes it); its page opens its Cost
# section with the same figure.
@pytest.mark.parametrize("name", list(PATTERNS))
def test_cost_per_item_is_quoted_from_the_chooser(name: str) -> None:
    chooser = chooser_costs(README.read_text())
    assert name in chooser, f"the README's chooser has no row for {name}"
    figure = chooser[name].removesuffix(" instr.")
    assert chooser[name] == quoted(1000 * float(figure.removesuffix("k"))), chooser[name]
    page = cost_figure(page_of(name))
    assert page == figure, f"{name}.py says {page}, the README's chooser {chooser[name]}"


#: Where a count of the recipes would go stale as soon as one is added.
COUNTED = [
    README,
    ROOT / "pyproject.toml",
    ROOT / "docs" / "developing.md",
    ROOT / "docs" / "contract.md",
    ROOT / "docs" / "benchmarks.md",
    ROOT / "notebooks" / "01-tour.ipynb",
    ROOT / "patterns" / "__init__.py",
]


def hand_counts(text: str) -> list[str]:
    """Counts of recipes written in prose ("four patterns", "6 recipes"), outside code blocks;
    a source named by its title ("the article on the four patterns") is not a count."""
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    number = r"\b(?:two|three|four|five|six|seven|eight|nine|ten|\d+)"
    kinds = r"(?:classic |bounded |interchangeable )?(?:ways|patterns|recipes)\b"
    return re.findall(rf"(?<!article on the ){number} {kinds}", prose, flags=re.I)


# The finder finds a count in prose, and not one in a code block or an article's title.
def test_hand_counts_are_found() -> None:
    text = "Four ways, the 5 bounded patterns.\n```\nall 5 bounded patterns\n```\n"
    assert hand_counts(text + "(the article on the four patterns)") == [
        "Four ways",
        "5 bounded patterns",
    ]


# No page counts the recipes by hand: a count is stale the day a recipe is added.
@pytest.mark.parametrize("path", COUNTED, ids=page_id)
def test_no_count_of_recipes_by_hand(path: Path) -> None:
    assert hand_counts(path.read_text()) == []


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
