"""Long-lived responses (WebSockets, event streams) that stay authorized while open.

A response that outlives its request must not outlive its permission.  Every
open stream is registered with a way to decide its request again, and it is
ended when its token expires, and when a recheck finds the request no longer
allowed: every `streams.recheck_seconds` (a deactivated user, a revoked key, a
changed role), at once after an ownership change through the gateway, and at
once after the snapshot is replaced.  A recheck that fails for any other
reason ends the stream too: deny by default.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

from gateway.authn.principal import Principal
from gateway.errors import GatewayError

log = logging.getLogger("gateway.streams")

Closer = Callable[[str], Awaitable[None]]


class LiveStream:
    """One open stream: its principal, how to recheck it and how to end it."""

    def __init__(
        self,
        request_id: str,
        principal: Principal,
        recheck: Callable[[], Awaitable[None]],
        resolvers: frozenset[str],
    ) -> None:
        self.request_id = request_id
        self.principal = principal
        self.recheck = recheck
        self.resolvers = resolvers
        self.end_reason: str | None = None
        self._closer: Closer | None = None

    async def set_closer(self, closer: Closer) -> None:
        """Name how to end the stream; end it now if that was already decided."""
        self._closer = closer
        if self.end_reason is not None:
            await closer(self.end_reason)

    async def end(self, reason: str) -> None:
        if self.end_reason is not None:
            return

        self.end_reason = reason
        log.info("ending a stream that is no longer allowed",
                 extra={"request_id": self.request_id,
                        "subject": self.principal.user_id, "reason": reason})
        if self._closer is not None:
            await self._closer(reason)


class StreamRegistry:
    def __init__(self, recheck_seconds: float) -> None:
        self._recheck_seconds = recheck_seconds
        self._streams: dict[LiveStream, asyncio.TimerHandle | None] = {}
        self._periodic: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()

    @property
    def open_count(self) -> int:
        return len(self._streams)

    @contextmanager
    def watch(self, stream: LiveStream) -> Iterator[LiveStream]:
        """Keep `stream` registered while the block runs."""
        self._streams[stream] = self._expiry_timer(stream)
        if self._periodic is None or self._periodic.done():
            self._periodic = asyncio.create_task(self._recheck_periodically())
        try:
            yield stream
        finally:
            timer = self._streams.pop(stream, None)
            if timer is not None:
                timer.cancel()

    async def recheck_all(self) -> None:
        await asyncio.gather(*(self._recheck(stream) for stream in list(self._streams)))

    def recheck_resolver(self, name: str) -> None:
        """Recheck, in the background, the streams whose object `name` resolves."""
        concerned = [stream for stream in self._streams if name in stream.resolvers]
        if concerned:
            self._spawn(asyncio.gather(*(self._recheck(s) for s in concerned)))

    async def close(self) -> None:
        """End every stream, for a gateway that stops."""
        if self._periodic is not None:
            self._periodic.cancel()
        await asyncio.gather(
            *(stream.end("gateway_stopping") for stream in list(self._streams))
        )

    async def _recheck(self, stream: LiveStream) -> None:
        if stream.end_reason is not None:
            return

        try:
            await stream.recheck()
        except GatewayError as error:
            await stream.end(error.reason)
        except Exception:
            log.exception("stream recheck failed", extra={"request_id": stream.request_id})
            await stream.end("internal_error")

    async def _recheck_periodically(self) -> None:
        while self._streams:
            await asyncio.sleep(self._recheck_seconds)
            await self.recheck_all()

    def _expiry_timer(self, stream: LiveStream) -> asyncio.TimerHandle | None:
        expires_at = stream.principal.expires_at
        if expires_at is None:
            return None

        delay = max(0.0, expires_at - time.time())
        return asyncio.get_running_loop().call_later(
            delay, lambda: self._spawn(stream.end("token_expired"))
        )

    def _spawn(self, work: Awaitable) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
