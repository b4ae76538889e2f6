"""The cost counter's arithmetic and its writing, without valgrind: the counts are stood in for."""

from __future__ import annotations

from pathlib import Path

import pytest

from patterns.lab import costs

README = """| pattern | use it if… | its failure mode | plumbing per item¹ |
|---|---|---|---|
| [`worker_pool`](patterns/worker_pool.py) | a stream | hangs | 1k instr. |
| [`semaphore`](patterns/semaphore.py) | a task each | nothing | ? |
| [`threads`](patterns/threads.py): `in_threads(fn)` | blocking | stalls | 0.24–0.41 ms |
"""


# A count reads with two significant figures, in thousands, as the pages quote it.
@pytest.mark.parametrize(
    ("count", "quoted"),
    [(9_812.0, "9.8k"), (29_765.0, "30k"), (35_318.0, "35k"), (187_715.0, "190k")],
)
def test_rounded(count: float, quoted: str) -> None:
    assert costs.rounded(count) == quoted


# The cost per item is the difference of the two sizes' counts over the difference of the
# sizes: what every run spends whatever its size (start-up, imports) drops out.
def test_per_item_is_the_difference(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(costs, "instructions", lambda module, n: 500_000_000 + 35_000 * n)
    assert costs.per_item("patterns.worker_pool") == 35_000


# Writing the chooser changes only the last cell of each counted recipe's row, and reading it
# back gives what was written; the adapters' rows are left alone.
def test_write_chooser_fills_the_last_cells() -> None:
    written = costs.write_chooser(README, {"worker_pool": 35_318.0, "semaphore": 173_478.0})
    assert costs.chooser_costs(written) == {"worker_pool": "35k instr.", "semaphore": "170k instr."}
    assert written.replace("35k", "1k").replace("170k instr.", "?") == README


# A recipe counted with no row in the chooser is an error naming it, not a silent gap.
def test_write_chooser_refuses_a_missing_row() -> None:
    with pytest.raises(ValueError, match="no chooser row for buffered_ordered"):
        costs.write_chooser(README, {"worker_pool": 1.0, "buffered_ordered": 1.0})


# A new row may leave its last cell empty, written either way ("| |" or "|  |"): it is filled.
@pytest.mark.parametrize("empty", ["| |", "|  |", "||"])
def test_write_chooser_fills_an_empty_cell(empty: str) -> None:
    row = f"| [`chunked`](patterns/chunked.py) | a throwaway | none {empty}\n"
    written = costs.write_chooser(README + row, {"chunked": 29_765.0})
    assert written.endswith(
        "| [`chunked`](patterns/chunked.py) | a throwaway | none | 30k instr. |\n"
    )


# --write refuses a README without every recipe's row, or one it cannot read, before counting
# (minutes of valgrind), in one line that names the option.
@pytest.mark.parametrize(("readme", "says"), [("x\n", "no chooser row for"), (None, "cannot read")])
def test_write_is_checked_before_counting(
    readme: str | None, says: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    target = tmp_path / "README.md"
    if readme is not None:
        target.write_text(readme)
    monkeypatch.setattr(costs, "measure", lambda: pytest.fail("counted before checking"))
    with pytest.raises(SystemExit) as exit_:
        costs.main(["--write", str(target)])
    assert exit_.value.code == 2
    assert f"error: --write: {says}" in capsys.readouterr().err
