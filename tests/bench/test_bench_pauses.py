"""Latency and gap statistics of bench/pauses.py on hand-made request streams."""

import pytest
from pauses import Exchange, largest_gap, overlapping, read_exchanges, window_stats


def exchange(due, done, status=200, sent=None):
    return Exchange(due, due if sent is None else sent, done, status)


def test_overlapping_keeps_requests_open_in_window():
    stream = [
        exchange(0.0, 0.5),  # done before the window
        exchange(0.5, 1.5),  # due before, done inside
        exchange(1.2, 1.3),  # inside
        exchange(1.9, 2.5),  # due inside, done after
        exchange(2.1, 2.2),  # due after the window
    ]

    chosen = overlapping(stream, 1.0, 2.0)

    assert [item.due for item in chosen] == [0.5, 1.2, 1.9]


def test_largest_gap_between_arrivals():
    stream = [exchange(0.0, 1.1), exchange(0.0, 1.2), exchange(0.0, 1.8)]

    assert largest_gap(stream, 1.0, 2.0) == pytest.approx(0.6)


def test_largest_gap_counts_window_edges():
    stream = [exchange(0.0, 1.05)]

    assert largest_gap(stream, 1.0, 2.0) == pytest.approx(0.95)


def test_largest_gap_of_window_without_responses():
    assert largest_gap([exchange(0.0, 5.0)], 1.0, 2.0) == pytest.approx(1.0)


def test_window_stats_latency_from_due_time():
    stream = [
        exchange(1.0, 1.002, sent=1.001),
        exchange(1.1, 1.150, sent=1.130),
        exchange(1.2, 1.201, status=503),
    ]

    stats = window_stats(stream, 1.0, 1.3, 200)

    assert stats.requests == 3
    assert stats.failed == 1
    assert stats.max_ms == pytest.approx(50.0)
    assert stats.median_ms == pytest.approx(2.0)
    assert stats.max_send_delay_ms == pytest.approx(30.0)


def test_window_stats_rejects_empty_window():
    with pytest.raises(ValueError, match="no request"):
        window_stats([exchange(0.0, 0.1)], 1.0, 2.0, 200)


def test_read_exchanges_from_json_rows():
    (item,) = read_exchanges([[1.0, 1.5, 2.0, 200.0]])

    assert item == Exchange(1.0, 1.5, 2.0, 200)
    assert item.latency == 1.0
    assert item.send_delay == 0.5
