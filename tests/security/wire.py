"""Raw HTTP/1.1 exchanges and checks shared by the attack tests.

`integration.http_helpers.send_raw` suits a request that ends with
`Connection: close`.  The attacks also need to see whether the gateway closes
the connection on its own, whether it sent a second response after the first,
how long it took, and targets that are not Latin-1, so they use `exchange`.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from multidict import CIMultiDict

from integration.http_helpers import RawResponse

# The gateway serves only the Host names in `forwarding.allowed_hosts`, and
# 127.0.0.1 is the name its loopback address goes by.
HOST = "127.0.0.1"
PROBLEM_TYPE_PREFIX = "urn:gateway:problem:"
PROBLEM_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    413: "Payload Too Large",
    414: "URI Too Long",
    415: "Unsupported Media Type",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    502: "Bad Gateway",
    504: "Gateway Timeout",
}


@dataclass
class Exchange:
    """What came back on one connection after the request bytes were sent."""

    data: bytes
    responses: list[RawResponse]
    closed: bool  # the gateway closed the connection before the read timed out
    elapsed: float  # seconds from the first byte sent to the close or timeout

    @property
    def first(self) -> RawResponse:
        assert self.responses, f"no response before the connection ended: {self.data!r}"
        return self.responses[0]


def build_request(
    method: str,
    target: str | bytes,
    headers: list[tuple[str, str]],
    body: bytes = b"",
    *,
    close: bool = True,
) -> bytes:
    """Build a request with a Host header and, unless `close` is false, `Connection: close`.

    A str target is encoded as UTF-8 and sent byte for byte, so it may carry
    characters no HTTP client would put on the wire.  A Content-Length is added
    for a non-empty body unless the headers already frame it.
    """
    names = {name.lower() for name, _ in headers}
    pairs = list(headers)
    if "host" not in names:
        pairs.insert(0, ("Host", HOST))
    if close and "connection" not in names:
        pairs.append(("Connection", "close"))
    if body and not names & {"content-length", "transfer-encoding"}:
        pairs.append(("Content-Length", str(len(body))))

    raw_target = target.encode("utf-8") if isinstance(target, str) else target
    head = method.encode("latin-1") + b" " + raw_target + b" HTTP/1.1\r\n"
    head += b"".join(f"{name}: {value}\r\n".encode("latin-1") for name, value in pairs)
    return head + b"\r\n" + body


async def exchange(port: int, request: bytes, *, timeout: float = 5.0,
                   head: bool = False, first_only: bool = False) -> Exchange:
    """Send `request` to 127.0.0.1:`port` and read until the gateway closes or `timeout`.

    `head` means the request was HEAD, so response bodies are not read.
    `first_only` stops reading once the first response is complete, for
    callers that do not check whether the gateway closes the connection.
    """
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    data = bytearray()
    closed = False
    try:
        writer.write(request)
        await writer.drain()
        async with asyncio.timeout(timeout):
            while chunk := await reader.read(65536):
                data += chunk
                if first_only and _first_response_complete(bytes(data), head=head):
                    break
            else:
                closed = True
    except TimeoutError:
        pass
    except ConnectionResetError:
        closed = True
    finally:
        writer.close()

    elapsed = time.monotonic() - started
    return Exchange(bytes(data), parse_responses(bytes(data), head=head), closed,
                    elapsed)


def parse_responses(data: bytes, *, head: bool = False) -> list[RawResponse]:
    """Split `data` into the HTTP/1.1 responses it contains, in order."""
    responses = []
    while data.startswith(b"HTTP/"):
        head_bytes, separator, rest = data.partition(b"\r\n\r\n")
        if not separator:
            break

        status_line, *header_lines = head_bytes.decode("latin-1").split("\r\n")
        headers: CIMultiDict[str] = CIMultiDict()
        for line in header_lines:
            name, _, value = line.partition(":")
            headers.add(name.strip(), value.strip())

        body, data = _split_body(rest, headers, head=head)
        responses.append(RawResponse(int(status_line.split(" ")[1]), headers, body))
    return responses


def _first_response_complete(data: bytes, *, head: bool) -> bool:
    """Return whether `data` contains the whole first response, by its framing."""
    head_bytes, separator, rest = data.partition(b"\r\n\r\n")
    if not separator:
        return False
    if head:
        return True

    headers = parse_responses(head_bytes + separator)[0].headers
    if headers.get("Transfer-Encoding", "").lower() == "chunked":
        return rest.endswith(b"0\r\n\r\n")
    length = headers.get("Content-Length")
    return length is not None and len(rest) >= int(length)


def _split_body(data: bytes, headers: CIMultiDict[str], *,
                head: bool) -> tuple[bytes, bytes]:
    if head:
        return b"", data
    if headers.get("Transfer-Encoding", "").lower() == "chunked":
        body = bytearray()
        while True:
            size_line, _, data = data.partition(b"\r\n")
            size = int(size_line.split(b";")[0] or b"0", 16)
            if size == 0:
                _, _, data = data.partition(b"\r\n")
                return bytes(body), data
            body += data[:size]
            data = data[size + 2:]
    length = int(headers.get("Content-Length", len(data)))
    return data[:length], data[length:]


def assert_problem(response: RawResponse, status: int) -> None:
    """Assert that `response` is an RFC 9457 problem response with `status`."""
    assert response.status == status, (response.status, response.body)
    assert response.headers.get("Content-Type", "").startswith(
        "application/problem+json"
    )

    title = PROBLEM_TITLES[status]
    document = response.json()
    assert document["status"] == status
    assert document["title"] == title
    assert document["type"] == PROBLEM_TYPE_PREFIX + title.lower().replace(" ", "-")
    assert isinstance(document["detail"], str)
    assert document["detail"].strip()
