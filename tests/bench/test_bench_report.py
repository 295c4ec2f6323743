"""Ratios, added latency, scaling and CPU shares of bench/report.py."""

import pytest
from loaders import LoadResult
from report import (
    GATEWAY,
    PASS_THROUGH,
    UPSTREAM_DIRECT,
    Measurement,
    gateway_scaling_pairs,
    gateway_workers_name,
    print_rate_goal,
    print_spread_warnings,
    round_added_p50,
    round_ratios,
    summaries,
)

TWO_WORKERS = gateway_workers_name(2)


def run(target, round_number, rate, p50=1.0, scenario="mix", upstream=1.0,
        processes=(), shared_run=None):
    seconds = 2.0
    load = LoadResult(
        requests=round(rate * seconds),
        seconds=seconds,
        p50_ms=p50,
        p99_ms=p50 * 2,
        unexpected_status=0,
        failed=0,
        first_error=None,
    )
    return Measurement(
        target=target,
        scenario=scenario,
        round=round_number,
        shared_run=shared_run,
        load=load,
        target_cpu_seconds=sum(processes) or 1.0,
        upstream_cpu_seconds=upstream,
        loader_cpu_seconds=0.1,
        other_cpu_seconds=0.0,
        process_cpu_seconds=tuple(processes),
    )


def test_round_ratios_pair_each_round():
    measurements = [
        run(PASS_THROUGH, 1, 1000),
        run(GATEWAY, 1, 600),
        run(PASS_THROUGH, 2, 800),
        run(GATEWAY, 2, 600),
    ]

    assert round_ratios(measurements, "mix") == pytest.approx([0.6, 0.75])


def test_round_ratios_skip_round_without_baseline():
    measurements = [run(GATEWAY, 1, 600), run(PASS_THROUGH, 2, 1000),
                    run(GATEWAY, 2, 500)]

    assert round_ratios(measurements, "mix") == pytest.approx([0.5])


def test_round_ratios_keep_scenarios_apart():
    measurements = [
        run(PASS_THROUGH, 1, 1000),
        run(GATEWAY, 1, 600),
        run(PASS_THROUGH, 1, 100, scenario="other"),
        run(GATEWAY, 1, 90, scenario="other"),
    ]

    assert round_ratios(measurements, "other") == pytest.approx([0.9])


def test_scaling_compares_workers_with_one():
    measurements = [run(GATEWAY, 1, 500), run(TWO_WORKERS, 1, 600)]

    assert gateway_scaling_pairs(measurements) == [TWO_WORKERS]
    assert round_ratios(measurements, "mix", TWO_WORKERS, GATEWAY) == [1.2]


def test_added_p50_subtracts_baseline_of_same_round():
    measurements = [
        run(PASS_THROUGH, 1, 300, p50=0.70),
        run(GATEWAY, 1, 300, p50=0.95),
        run(PASS_THROUGH, 2, 300, p50=0.80),
        run(GATEWAY, 2, 300, p50=0.90),
    ]

    assert round_added_p50(measurements, "mix") == pytest.approx([0.25, 0.10])


def test_added_p50_pairs_within_shared_run():
    measurements = [
        run(PASS_THROUGH, 1, 300, p50=0.70, shared_run=1),
        run(UPSTREAM_DIRECT, 1, 300, p50=0.40, shared_run=1),
        run(PASS_THROUGH, 1, 300, p50=0.90, shared_run=2),
        run(GATEWAY, 1, 300, p50=1.00, shared_run=2),
    ]

    added = round_added_p50(measurements, "mix", GATEWAY)
    direct = round_added_p50(measurements, "mix", UPSTREAM_DIRECT)

    assert added == pytest.approx([0.10])
    assert direct == pytest.approx([-0.30])


def test_summaries_keep_order_of_measurement():
    measurements = [
        run(UPSTREAM_DIRECT, 1, 2000, upstream=None),
        run(PASS_THROUGH, 1, 1000),
        run(GATEWAY, 1, 600),
    ]

    rows = summaries(measurements, ["mix"])

    assert [row.target for row in rows] == [UPSTREAM_DIRECT, PASS_THROUGH, GATEWAY]
    assert [row.rate_ratio for row in rows] == pytest.approx([2.0, 1.0, 0.6])


def test_summary_of_upstream_has_no_api_cpu():
    measurements = [run(UPSTREAM_DIRECT, 1, 2000, upstream=None),
                    run(PASS_THROUGH, 1, 1000)]

    direct, passthrough = summaries(measurements, ["mix"])

    assert direct.upstream_cpu_us is None
    assert passthrough.upstream_cpu_us == pytest.approx(500.0)


def test_summary_splits_cpu_by_process():
    measurements = [
        run(TWO_WORKERS, 1, 500, processes=(0.0, 0.6, 0.4)),
        run(TWO_WORKERS, 2, 500, processes=(0.0, 0.5, 0.5)),
    ]

    (row,) = summaries(measurements, ["mix"])

    assert row.process_cpu_shares == pytest.approx((0.0, 0.55, 0.45))


def test_spread_warning_names_target(capsys):
    measurements = [
        run(PASS_THROUGH, 1, 1000),
        run(PASS_THROUGH, 2, 1010),
        run(GATEWAY, 1, 400),
        run(GATEWAY, 2, 600),
    ]

    print_spread_warnings(measurements, ["mix"])
    errors = capsys.readouterr().err

    assert f"{GATEWAY}, mix: req/s ranged over 40%" in errors
    assert PASS_THROUGH not in errors


def test_rate_goal_reports_missed(capsys):
    measurements = [run(PASS_THROUGH, 1, 1000), run(GATEWAY, 1, 540)]

    print_rate_goal(measurements, "mix")
    output = capsys.readouterr().out

    assert "keeps 54% of the pass-through's req/s, mix" in output
    assert "goal at least 90%: MISSED" in output
