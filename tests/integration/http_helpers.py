"""Raw HTTP/1.1 over a socket, for requests that clients would normalize."""

from __future__ import annotations

import asyncio
import json
import socket
from dataclasses import dataclass
from typing import Any

from multidict import CIMultiDict


def free_port() -> int:
    """Return a loopback TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class RawResponse:
    status: int
    headers: CIMultiDict[str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


async def send_raw(port: int, request: bytes, timeout: float = 5.0) -> RawResponse:
    """Send bytes exactly as given to 127.0.0.1:`port` and parse the response.

    HTTP clients normalize paths and headers before sending, but this does not.
    The request should carry `Connection: close`, because the response is read
    until the server closes the connection.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()

    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers: CIMultiDict[str] = CIMultiDict()
    for line in header_lines:
        name, _, value = line.partition(":")
        headers.add(name.strip(), value.strip())

    if headers.get("Transfer-Encoding", "").lower() == "chunked":
        body = _decode_chunked(body)
    return RawResponse(int(status_line.split(" ")[1]), headers, body)


def _decode_chunked(data: bytes) -> bytes:
    decoded = bytearray()
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        decoded += data[:size]
        data = data[size + 2 :]

    return bytes(decoded)


def raw_request(
    method: str, target: str, headers: dict[str, str] | list[tuple[str, str]],
    body: bytes = b"",
) -> bytes:
    """Build an HTTP/1.1 request with `Connection: close` and a Host header."""
    pairs = list(headers.items()) if isinstance(headers, dict) else list(headers)
    names = {name.lower() for name, _ in pairs}
    if "host" not in names:
        pairs.insert(0, ("Host", "gateway.test"))
    if "connection" not in names:
        pairs.append(("Connection", "close"))
    if body and "content-length" not in names:
        pairs.append(("Content-Length", str(len(body))))

    lines = [f"{method} {target} HTTP/1.1"] + [f"{n}: {v}" for n, v in pairs]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
