"""What each registered recipe spends per item, counted in CPU instructions, quickly.

A recipe's cost per item is the work its plumbing does for one call: starting it, handing its
result over. Timed by the clock, it moves 10–20% from run to run on a shared machine, and the
full benchmark takes 16 minutes. Counted in instructions by valgrind's callgrind, it repeats
to within 0.2%, in a few minutes for every recipe. So this count is the figure the README's
chooser quotes, and this module writes it there:

    python -m patterns.lab.costs                    # print each recipe's count
    python -m patterns.lab.costs --write README.md  # and put it in the chooser's last column

Each recipe runs zero work (one pass through the event loop, as in the benchmark) at limit 100
on asyncio, at two sizes, each in a fresh interpreter under callgrind; the difference of the two
counts over the difference of the sizes is its cost per item, with the interpreter's start, the
imports and the first calls taken out. The counts depend on the Python and the anyio that ran
them: refresh them when either changes, or when a recipe does.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from patterns.lab.registry import PATTERNS

#: The two sizes whose difference is measured: the first absorbs the warm-up.
SIZES = (1_000, 3_000)
#: The calls in flight, as in the benchmark's overhead scenario.
LIMIT = 100

#: What runs under callgrind: one recipe's ``run`` over zero work, and nothing else imported.
CHILD = """
import importlib, sys
import anyio, anyio.lowlevel

async def zero_work(item):
    await anyio.lowlevel.checkpoint()
    return item

async def main():
    recipe = importlib.import_module(sys.argv[1])
    work, limit = zero_work, int(sys.argv[3])
    if "gate" in sys.argv[4:]:  # the same limit, held by an adaptive limit's gate
        from patterns.adaptive import AIMD
        limit = AIMD(initial=limit, maximum=limit)
    if "retry" in sys.argv[4:]:  # the same work, through retrying (which never retries here)
        from patterns.retry import retrying
        work = retrying(work)
    await recipe.run(work, range(int(sys.argv[2])), limit=limit)

anyio.run(main)
"""

#: What the adaptive limit's gate and the retries add to a recipe, each counted as the worker
#: pool with it less the worker pool without: (module, what is added), by page.
ADDED = {
    "adaptive": ("patterns.worker_pool", "gate"),
    "retry": ("patterns.worker_pool", "retry"),
}
#: Where the README quotes them: "the gate adds 51k instr. per item" and "`retrying` 4.7k".
ADDED_QUOTES = {
    "adaptive": re.compile(r"(the gate adds )(\S*)( instr\. per item)"),
    "retry": re.compile(r"(`retrying` adds )(\S*)( instr\. per item)"),
}

#: A chooser row of a recipe: its name, then its cost in the last cell.
CHOOSER_ROW = re.compile(
    r"^(\| \[`(?P<name>\w+)`\]\(patterns/\w+\.py\) \|.*\|) *(?P<cost>[^|]*?) *(\|)$"
)


def rounded(count: float) -> str:
    """A count as the pages quote it: two significant figures, in thousands ("35k", "9.8k")."""
    thousands = float(f"{count / 1000:.2g}")
    return f"{thousands:g}k" if thousands < 10 else f"{round(thousands)}k"


def quoted(count: float) -> str:
    """A count as the chooser's last cell holds it."""
    return f"{rounded(count)} instr."


def instructions(module: str, items: int, *added: str) -> int:
    """The instructions a fresh interpreter executes to run ``module`` over ``items`` items
    (with ``added``: ``gate``, ``retry``)."""
    proc = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
         sys.executable, "-c", CHILD, module, str(items), str(LIMIT), *added],
        capture_output=True, text=True, check=True,
        # The same hashes in every run: dict and set layouts, and so the count, repeat.
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )  # fmt: skip
    found = re.search(r"Collected : (\d+)", proc.stderr)
    if found is None:
        raise RuntimeError(f"callgrind reported no count for {module}: {proc.stderr[-500:]}")
    return int(found.group(1))


def per_item(module: str, *added: str) -> float:
    """The instructions ``module``'s plumbing spends per item: two sizes, the difference."""
    small, large = (instructions(module, n, *added) for n in SIZES)
    return (large - small) / (SIZES[1] - SIZES[0])


def measure_added() -> dict[str, float]:
    """What each of :data:`ADDED` costs per item, over the recipe without it."""
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        bare = {module: pool.submit(per_item, module) for module, _ in ADDED.values()}
        counts = {name: pool.submit(per_item, *how) for name, how in ADDED.items()}
        return {name: counts[name].result() - bare[ADDED[name][0]].result() for name in ADDED}


def measure() -> dict[str, float]:
    """Every registered recipe's instructions per item, measured a few at a time."""
    if shutil.which("valgrind") is None:
        raise SystemExit("costs: needs valgrind on the PATH (apt install valgrind)")
    modules = {name: pattern.__name__ for name, pattern in PATTERNS.items()}
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        counts = pool.map(per_item, modules.values())
        return dict(zip(modules, counts, strict=True))


def write_chooser(text: str, counts: dict[str, float]) -> str:
    """``text`` (the README) with each counted recipe's chooser row ending in its count.

    A recipe counted without a chooser row is an error, not a silent gap; rows of what was not
    counted (the adapters, whose cost is a hand-off) are left as they are.
    """
    seen = set()
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        row = CHOOSER_ROW.match(line.rstrip("\n"))
        if row and row["name"] in counts:
            seen.add(row["name"])
            lines[i] = f"{row[1]} {quoted(counts[row['name']])} {row[4]}\n"
    missing = sorted(set(counts) - seen)
    if missing:
        raise ValueError(f"no chooser row for {', '.join(missing)}: add one to the README")
    return "".join(lines)


def write_added(text: str, counts: dict[str, float]) -> str:
    """``text`` (the README) with each of :data:`ADDED` quoted where it says so."""
    for name, count in counts.items():
        text, found = ADDED_QUOTES[name].subn(rf"\g<1>{rounded(count)}\g<3>", text)
        if not found:
            raise ValueError(
                f"the README does not quote what {name} adds: {ADDED_QUOTES[name].pattern}"
            )
    return text


def added_costs(text: str) -> dict[str, str]:
    """What the README quotes for each of :data:`ADDED` ("51k"), by page."""
    return {
        name: found[2]
        for name, quote in ADDED_QUOTES.items()
        if (found := quote.search(text)) is not None
    }


def chooser_costs(text: str) -> dict[str, str]:
    """The last cell of each recipe's chooser row in ``text``, by recipe name."""
    rows = (CHOOSER_ROW.match(line) for line in text.splitlines())
    return {row["name"]: row["cost"] for row in rows if row}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m patterns.lab.costs", description=__doc__)
    parser.add_argument("--write", metavar="README", type=Path, help="update the chooser there")
    args = parser.parse_args(argv)
    if args.write:  # a missing row or an unreadable file now, not after minutes of counting
        try:
            write_chooser(args.write.read_text(), dict.fromkeys(PATTERNS, 0.0))
            write_added(args.write.read_text(), dict.fromkeys(ADDED, 0.0))
        except OSError as exc:
            parser.error(f"--write: cannot read {args.write}: {exc.strerror or exc}")
        except ValueError as exc:
            parser.error(f"--write: {exc}")
    counts = measure()
    for name, count in counts.items():
        print(f"{name:<20} {count:>10,.0f} instructions per item ({rounded(count)})")
    added = measure_added()
    for name, count in added.items():
        print(f"+ {name:<18} {count:>+10,.0f} instructions per item ({rounded(count)})")
    if args.write:
        text = write_chooser(args.write.read_text(), counts)
        args.write.write_text(write_added(text, added))


if __name__ == "__main__":
    main()
