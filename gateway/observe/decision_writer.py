"""Decision lines written straight to a stream, outside `logging`.

A decision line is written for every request, and `logging` costs about as
much per record as the rest of the decision (a LogRecord with every field as
an attribute, a lock and a flush per line).  The writer formats the same JSON
object as `JSONFormatter`, buffers the lines and writes them at most
`flush_seconds` apart, or sooner when many are waiting.
"""

from __future__ import annotations

import asyncio
import time
from typing import BinaryIO

import orjson

_MAX_BUFFERED_LINES = 256
_FIXED_FIELDS = b'"level":"INFO","logger":"gateway.decision","message":"decision"'


class DecisionWriter:
    def __init__(self, stream: BinaryIO, *, flush_seconds: float = 0.2) -> None:
        self._stream = stream
        self._flush_seconds = flush_seconds
        self._lines: list[bytes] = []
        self._second = -1
        self._second_text = ""
        self._flusher: asyncio.Task | None = None

    def write(self, fields: dict) -> None:
        # The fixed keys go first, as JSONFormatter writes them; splicing them
        # in front of the serialized fields saves copying the fields' dict.
        timestamp = self._timestamp(time.time()).encode()
        serialized = orjson.dumps(fields, default=str)
        separator = b"," if fields else b""
        self._lines.append(b'{"time":"%s",%s%s%s' % (timestamp, _FIXED_FIELDS,
                                                      separator, serialized[1:]))
        if len(self._lines) >= _MAX_BUFFERED_LINES:
            self.flush()

    def flush(self) -> None:
        if not self._lines:
            return

        data = b"\n".join(self._lines) + b"\n"
        self._lines.clear()
        self._stream.write(data)
        self._stream.flush()

    def start(self) -> None:
        """Flush every `flush_seconds` on the running loop until `stop`."""
        self._flusher = asyncio.get_running_loop().create_task(self._flush_often())

    async def stop(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
        self.flush()

    async def _flush_often(self) -> None:
        while True:
            await asyncio.sleep(self._flush_seconds)
            self.flush()

    def _timestamp(self, now: float) -> str:
        second = int(now)
        if second != self._second:
            self._second = second
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._second_text}.{int((now - second) * 1000):03d}Z"
