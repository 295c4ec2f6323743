"""RequestBody: a body read within its limits, decided again before its end goes on."""

from __future__ import annotations

import asyncio
from unittest import mock

import pytest
from aiohttp import StreamReader

from gateway.errors import Forbidden
from gateway.forward.body import RequestBody


def stream_of(*chunks: bytes, ended: bool = True) -> StreamReader:
    protocol = mock.Mock(_reading_paused=False)
    stream = StreamReader(protocol, 2**16, loop=asyncio.get_running_loop())
    for chunk in chunks:
        stream.feed_data(chunk)
    if ended:
        stream.feed_eof()
    return stream


class Recheck:
    """An `on_late_end` hook that counts its calls and may reject the request."""

    def __init__(self, reject: bool = False) -> None:
        self.calls = 0
        self.reject = reject

    async def __call__(self) -> None:
        self.calls += 1
        if self.reject:
            raise Forbidden("The request is no longer allowed.", reason="test")


async def test_whole_body_is_decided_again_when_asked():
    recheck = Recheck()
    body = RequestBody(stream_of(b'{"a": 1}'), max_bytes=100, timeout=1,
                       on_late_end=recheck)

    assert await body.read() == b'{"a": 1}'
    assert recheck.calls == 1


async def test_refusal_at_end_keeps_last_chunk_back():
    stream = stream_of(b"first", b"last", ended=False)
    recheck = Recheck(reject=True)
    body = RequestBody(stream, max_bytes=100, timeout=1, on_late_end=recheck)
    handed_on = []

    async def forward() -> None:
        async for chunk in body:
            handed_on.append(chunk)

    task = asyncio.create_task(forward())
    await asyncio.sleep(0)
    stream.feed_eof()
    with pytest.raises(Forbidden):
        await task

    assert b"last" not in b"".join(handed_on), "the end went on before the recheck"
    assert isinstance(body.failure, Forbidden)
    assert recheck.calls == 1


async def test_body_without_hook_is_not_rechecked():
    body = RequestBody(stream_of(b"x", b"y"), max_bytes=100, timeout=1)

    assert [chunk async for chunk in body] == [b"xy"]
