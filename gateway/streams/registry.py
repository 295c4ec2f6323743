"""Long-lived responses (WebSockets, event streams) that stay authorized while open.

A response that outlives its request must not outlive its permission.  Every
open stream is registered with a way to decide its request again, and it is
ended when its token expires, and when a recheck finds the request no longer
allowed: every `streams.recheck_seconds` (a deactivated user, a revoked key, a
changed role), at once after an ownership change through this process, within
FOLLOW_SECONDS after another process (another worker, a `gateway users`
command) changes the store, and at once after the snapshot is replaced.  A
recheck that fails for any other reason ends the stream too: deny by default.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

from gateway.authn.principal import Principal
from gateway.errors import GatewayError, ServiceUnavailable, TooManyRequests

log = logging.getLogger("gateway.streams")

Closer = Callable[[str], Awaitable[None]]
_CLOSE_SECONDS = 2.0


class LiveStream:
    """One open stream: its principal, how to recheck it and how to end it."""

    def __init__(
        self,
        request_id: str,
        principal: Principal,
        recheck: Callable[[], Awaitable[None]],
        resolvers: frozenset[str],
        client_gone: Callable[[], bool] = lambda: False,
        on_open: Callable[[int], None] | None = None,
    ) -> None:
        self.request_id = request_id
        self.principal = principal
        self.recheck = recheck
        self.resolvers = resolvers
        self.client_gone = client_gone
        self.end_reason: str | None = None
        self._closer: Closer | None = None
        self._on_open = on_open

    async def set_closer(self, closer: Closer, status: int) -> None:
        """Mark the stream open with `status` and name how to end it.

        A stream whose end was already decided ends at once.  Otherwise
        `on_open` gets the status, so the stream is logged when it opens.
        """
        self._closer = closer
        if self.end_reason is not None:
            await closer(self.end_reason)
        elif self._on_open is not None:
            self._on_open(status)

    async def end(self, reason: str) -> None:
        if self.end_reason is not None:
            return

        self.end_reason = reason
        log.info("ending a stream that is no longer allowed",
                 extra={"request_id": self.request_id,
                        "subject": self.principal.user_id, "reason": reason})
        if self._closer is None:
            return

        # A client that stops reading must not hold up the rechecks of every
        # other stream, so the close has a deadline of its own.
        try:
            async with asyncio.timeout(_CLOSE_SECONDS):
                await self._closer(reason)
        except TimeoutError:
            log.warning("a stream's client did not take the close in time",
                        extra={"request_id": self.request_id})


# How often open streams look for changes that other processes made to the store.
FOLLOW_SECONDS = 0.25


class StreamRegistry:
    def __init__(self, recheck_seconds: float, *, max_open: int,
                 max_per_user: int,
                 store_version: Callable[[], int] | None = None) -> None:
        """Keep open streams allowed.

        Every stream is rechecked every `recheck_seconds`.  `store_version`
        returns a number that changes when another process (another worker,
        a `gateway users` command) commits to the users store.  While streams
        are open it is read every FOLLOW_SECONDS, and a change rechecks them
        all.  Changes through this process recheck the streams they concern
        at once, without it.
        """
        self._recheck_seconds = recheck_seconds
        self._store_version = store_version
        self._max_open = max_open
        self._max_per_user = max_per_user
        self._streams: dict[LiveStream, asyncio.TimerHandle | None] = {}
        self._periodic: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()

    @property
    def open_count(self) -> int:
        return len(self._streams)

    @contextmanager
    def watch(self, stream: LiveStream) -> Iterator[LiveStream]:
        """Keep `stream` registered while the block runs, within the limits.

        Streams have a connection pool of their own, of `max_open`
        connections, so they cannot take the one that other requests use.
        """
        if len(self._streams) >= self._max_open:
            raise ServiceUnavailable("Every stream connection is in use; retry later.")
        user_id = stream.principal.user_id
        held = sum(1 for other in self._streams if other.principal.user_id == user_id)
        if held >= self._max_per_user:
            raise TooManyRequests(f"You have reached the limit of {held} open "
                                  f"streams; close one first.")

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

    async def recheck_resolver(self, name: str) -> None:
        """Recheck the streams whose object `name` resolves, before returning."""
        concerned = [stream for stream in self._streams if name in stream.resolvers]
        await asyncio.gather(*(self._recheck(stream) for stream in concerned))

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
        if stream.client_gone():
            # The upstream connection of a stream whose client left would
            # stay open until the upstream next writes.
            await stream.end("client_closed")
            return

        try:
            await stream.recheck()
        except GatewayError as error:
            await stream.end(error.reason)
        except Exception:
            log.exception("stream recheck failed", extra={"request_id": stream.request_id})
            await stream.end("internal_error")

    async def _recheck_periodically(self) -> None:
        loop = asyncio.get_running_loop()
        version = self._read_store_version()
        due = loop.time() + self._recheck_seconds
        while self._streams:
            await asyncio.sleep(min(FOLLOW_SECONDS, max(0.0, due - loop.time())))
            seen, version = version, self._read_store_version()
            if loop.time() >= due or version != seen:
                await self.recheck_all()
                due = loop.time() + self._recheck_seconds

    def _read_store_version(self) -> int | None:
        return self._store_version() if self._store_version is not None else None

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
