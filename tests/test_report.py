"""The report's pure maths: the peak overlap of spans, and the running count it comes from."""

from __future__ import annotations

import pytest

from patterns.lab.report import in_flight, peak_overlap


# No spans, no overlap: the peak of nothing is 0, and there are no steps.
def test_no_spans() -> None:
    assert peak_overlap([]) == 0
    assert in_flight([]) == []


# Spans that touch (one ends at the instant the next starts) are one at a time, not two.
def test_touching_spans_do_not_overlap() -> None:
    assert peak_overlap([(0.0, 1.0), (1.0, 2.0), (2.0, 3.0)]) == 1
    assert in_flight([(0.0, 1.0), (1.0, 2.0)]) == [(0.0, 1), (1.0, 0), (1.0, 1), (2.0, 0)]


# The peak is the most open at one instant, not the number that overlap some other span.
@pytest.mark.parametrize(
    ("spans", "peak"),
    [
        ([(0.0, 10.0)], 1),
        ([(0.0, 2.0), (1.0, 3.0)], 2),
        ([(0.0, 2.0), (1.0, 3.0), (2.5, 4.0)], 2),  # a chain of pairs, never three
        ([(0.0, 5.0), (1.0, 2.0), (1.5, 3.0), (4.0, 6.0)], 3),
        ([(0.0, 1.0)] * 4, 4),  # identical spans all overlap
        ([(3, 4), (0, 10), (2, 5)], 3),  # any order, ints too
    ],
)
def test_peak_overlap(spans: list[tuple[float, float]], peak: int) -> None:
    assert peak_overlap(spans) == peak


# A span that takes no time never counts as in flight, even alone.
def test_a_span_of_no_time_is_never_in_flight() -> None:
    assert peak_overlap([(1.0, 1.0)]) == 0
    assert peak_overlap([(0.0, 2.0), (1.0, 1.0)]) == 1


# Any iterable of pairs will do, a generator read once included.
def test_a_generator_of_spans() -> None:
    assert peak_overlap((float(i), i + 1.5) for i in range(5)) == 2
