"""Attribution of py-spy samples to the gateway in bench/profile_summary.py."""

from profile_summary import (
    count_own_samples,
    count_samples,
    function_of,
    is_framework,
    owner_of,
)

OWN = "/repo/gateway/"
SITE = "/repo/.venv/lib/python3.11/site-packages/"
STDLIB = "/usr/local/lib/python3.11/"
LOOP = f"Runner.run ({STDLIB}asyncio/runners.py:118)"
HANDLER = f"RequestHandler._handle_request ({SITE}aiohttp/web_protocol.py:577)"
PIPELINE = f"Gateway._handle ({OWN}pipeline.py:117)"
STORE = f"SQLiteUserStore._get_user ({OWN}store/sqlite.py:82)"
CLIENT = f"ClientSession._request ({SITE}aiohttp/client.py:700)"
RANDOM = f"SystemRandom.randbytes ({STDLIB}random.py:50)"


def test_function_of_shortens_library_paths():
    assert function_of(CLIENT) == "ClientSession._request (aiohttp/client.py)"
    assert function_of(RANDOM) == "SystemRandom.randbytes (random.py)"


def test_function_of_keeps_short_names():
    assert function_of("Gateway.handle (pipeline.py:57)") == (
        "Gateway.handle (pipeline.py)"
    )


def test_is_framework_by_top_package():
    assert is_framework(f"{SITE}aiohttp/client.py")
    assert is_framework(f"{STDLIB}asyncio/runners.py")
    assert not is_framework(f"{STDLIB}random.py")
    assert not is_framework(f"{SITE}prometheus_client/values.py")
    assert not is_framework(f"{OWN}pipeline.py")


def test_owner_is_innermost_own_frame():
    frames = [LOOP, HANDLER, PIPELINE, STORE]

    assert owner_of(frames, OWN) == "SQLiteUserStore._get_user (store/sqlite.py)"


def test_owner_takes_library_called_by_own_code():
    frames = [LOOP, HANDLER, PIPELINE, RANDOM]

    assert owner_of(frames, OWN) == "Gateway._handle (pipeline.py)"


def test_framework_called_by_own_code_is_not_owned():
    frames = [LOOP, HANDLER, PIPELINE, CLIENT, RANDOM]

    assert owner_of(frames, OWN) is None


def test_event_loop_sample_is_not_owned():
    assert owner_of([LOOP], OWN) is None


def test_counts_from_folded_file(tmp_path):
    folded = tmp_path / "profile.folded"
    folded.write_text(
        f"{LOOP};{HANDLER};{PIPELINE};{STORE} 3\n"
        f"{LOOP};{HANDLER};{PIPELINE};{CLIENT} 5\n"
        f"{LOOP} 2\n"
        "not a stack line\n"
    )

    inclusive, innermost, total = count_samples(str(folded))
    own = count_own_samples(str(folded), OWN)

    assert total == 10
    assert inclusive["Gateway._handle (/repo/gateway/pipeline.py)"] == 8
    assert innermost["ClientSession._request (aiohttp/client.py)"] == 5
    assert own == {"SQLiteUserStore._get_user (store/sqlite.py)": 3}
