"""Percentiles, per-call timing and garbage collector records of bench/timing.py."""

import gc

import pytest
from timing import GCPauses, format_table, percentile, summarize, time_each


@pytest.mark.parametrize(
    ("values", "fraction", "expected"),
    [
        ([5], 0.5, 5),  # one value is every percentile
        ([1, 2, 3, 4], 0.5, 2),  # nearest rank: ceil(0.5 * 4) = 2nd value
        ([4, 3, 2, 1], 0.5, 2),  # order of the input does not matter
        (list(range(1, 101)), 0.99, 99),
        (list(range(1, 101)), 1.0, 100),
        (list(range(1, 101)), 0.0, 1),  # rank is at least 1
    ],
)
def test_percentile_nearest_rank(values, fraction, expected):
    assert percentile(values, fraction) == expected


def test_percentile_rejects_no_values():
    with pytest.raises(ValueError, match="no values"):
        percentile([], 0.5)


def test_percentile_rejects_fraction_outside_range():
    with pytest.raises(ValueError, match="within"):
        percentile([1], 99)


def test_summarize_converts_to_microseconds():
    summary = summarize([1_000] * 98 + [5_000, 9_000])

    assert summary.count == 100
    assert summary.median_us == 1.0
    assert summary.p99_us == 5.0
    assert summary.max_us == 9.0


def test_time_each_returns_one_sample_per_call():
    calls = []
    samples = time_each(lambda a, b: calls.append(a + b), [(1, 2), (3, 4)])

    assert calls == [3, 7]
    assert len(samples) == 2
    assert all(sample >= 0 for sample in samples)


def test_gc_pauses_records_collections_in_block():
    with GCPauses() as pauses:
        gc.collect()
    after_block = len(pauses.seconds)
    gc.collect()

    assert after_block >= 1
    assert len(pauses.seconds) == after_block


def test_format_table_has_header_rule_and_rows():
    lines = format_table(("a", "b"), [(1, "x")]).splitlines()

    assert lines == ["| a | b |", "|---|---|", "| 1 | x |"]
