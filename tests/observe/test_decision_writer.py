"""DecisionWriter: the decision lines of `gateway serve`, written outside logging."""

from __future__ import annotations

import asyncio
import io
import json
import logging

from gateway.observe.decision_log import DecisionRecord
from gateway.observe.decision_writer import DecisionWriter

FIELDS = {"request_id": "r-1", "subject": "u-op-1", "decision": "deny", "status": 403}


def lines(stream: io.BytesIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_writer_line_matches_log_format():
    stream = io.BytesIO()
    writer = DecisionWriter(stream)

    writer.write(FIELDS)
    writer.flush()

    [line] = lines(stream)
    assert line["logger"] == "gateway.decision"
    assert line["message"] == "decision"
    assert line["level"] == "INFO"
    assert line["time"].endswith("Z")
    assert {key: line[key] for key in FIELDS} == FIELDS


def test_writer_buffers_until_flush():
    stream = io.BytesIO()
    writer = DecisionWriter(stream)

    writer.write(FIELDS)

    assert stream.getvalue() == b"", "a line waits for the next flush"


def test_writer_flushes_when_many_wait():
    stream = io.BytesIO()
    writer = DecisionWriter(stream)

    for number in range(256):
        writer.write(FIELDS | {"request_id": f"r-{number}"})

    assert len(lines(stream)) == 256


async def test_writer_flushes_on_its_period():
    stream = io.BytesIO()
    writer = DecisionWriter(stream, flush_seconds=0.05)
    writer.start()

    writer.write(FIELDS)
    await asyncio.sleep(0.2)
    await writer.stop()

    assert len(lines(stream)) == 1


def test_writer_keeps_values_json_cannot_name():
    stream = io.BytesIO()
    writer = DecisionWriter(stream)

    writer.write({"path": b"/raw"})
    writer.flush()

    assert lines(stream)[0]["path"] == "b'/raw'", "unknown types are written as str()"


def test_masked_fields_hidden_in_decision_line(caplog):
    caplog.set_level(logging.INFO, logger="gateway.decision")
    record = DecisionRecord("r-1", "GET", "/api/1/chats/1/", subject="u-op-1",
                            role="chat_operator")

    record.emit(frozenset({"subject", "path"}))

    [logged] = [entry for entry in caplog.records if entry.name == "gateway.decision"]
    assert logged.subject == "***"
    assert logged.path == "***"
    assert logged.role == "chat_operator", "fields not named stay as they are"
