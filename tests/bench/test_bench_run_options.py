"""Command-line checks of bench/run.py that need no server."""

import pytest
from run import paced_scenario_name, parse_arguments


def test_targets_default_to_all():
    assert parse_arguments([]).targets is None


def test_targets_keep_round_order():
    options = parse_arguments(["--targets", "gateway, pass-through,upstream"])

    assert options.targets == ("upstream", "pass-through", "gateway")


def test_targets_need_pass_through(capsys):
    with pytest.raises(SystemExit) as stopped:
        parse_arguments(["--targets", "gateway"])

    assert stopped.value.code == 2
    assert "must contain pass-through" in capsys.readouterr().err


def test_targets_reject_unknown_name(capsys):
    with pytest.raises(SystemExit) as stopped:
        parse_arguments(["--targets", "pass-through,haproxy"])

    assert stopped.value.code == 2
    assert "unknown target 'haproxy'" in capsys.readouterr().err


def test_profile_needs_one_worker_gateway(capsys):
    with pytest.raises(SystemExit):
        parse_arguments(
            ["--targets", "pass-through,gateway-workers", "--profile-gateway", "x"]
        )

    assert "needs the target gateway" in capsys.readouterr().err


def test_profile_with_all_targets():
    options = parse_arguments(["--profile-gateway", "x"])

    assert options.targets is None


def test_gateway_workers_at_least_two():
    with pytest.raises(SystemExit):
        parse_arguments(["--gateway-workers", "1"])


def test_paced_scenario_name_has_rate():
    assert paced_scenario_name(300.0) == "mix at 300 req/s"
