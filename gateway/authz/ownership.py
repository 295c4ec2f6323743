"""Who owns an object: read from the upstream through a declared resolver.

An owner field is either one user id (a chat's `assignee`) or a list of them
(a contact's `operators`).  Results may be cached for the resolver's
`cache_seconds`.  A route that changes ownership through the gateway drops
every cached entry of that resolver as soon as the upstream confirms the
change: the upstream may accept one object under several spellings of its id
(`1`, `01`), so dropping one key would leave the others stale.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict

import aiohttp
from yarl import URL

from gateway.config.model import ResolverConfig
from gateway.errors import NotFound, UpstreamError, UpstreamTimeout
from gateway.routing.target import encode_segment
from gateway.store import UserStore

# Marks the resolver's own requests, so an upstream's logs can tell them apart
# from forwarded client requests.
RESOLVER_HEADER = "X-Gateway-Resolver"
_MAX_CACHED_OBJECTS = 50_000


def owners_of(value) -> frozenset[str]:
    """Normalise an owner field (None, one id, or a list of ids) to a set."""
    if value is None:
        return frozenset()
    if isinstance(value, str):
        return frozenset((value,))
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return frozenset(value)
    raise ValueError(f"owner field has unexpected type {type(value).__name__}")


def is_own(owners: frozenset[str], user_id: str, unassigned_visible: bool) -> bool:
    return user_id in owners or (unassigned_visible and not owners)


class OwnershipResolver:
    def __init__(self, session: aiohttp.ClientSession, upstream: URL,
                 timeout: aiohttp.ClientTimeout, store: UserStore) -> None:
        self._session = session
        self._upstream = upstream
        self._timeout = timeout
        # (resolver, object id) -> (expiry, owners, generation of the resolver)
        self._cache: OrderedDict[tuple[str, str], tuple[float, frozenset[str], int]]
        self._cache = OrderedDict()
        # Keeps the generations of the owner caches, shared by all processes.
        self._store = store

    async def owners(self, resolver: ResolverConfig, object_id: str,
                     request_id: str) -> frozenset[str]:
        key = (resolver.name, object_id)
        generation = self._store.owner_generation(resolver.name)
        cached = self._cache.get(key)
        if (
            cached is not None
            and cached[0] > time.monotonic()
            and cached[2] == generation
        ):
            return cached[1]

        owners = await self._fetch(resolver, object_id, request_id)
        # An invalidation during the fetch may make its result stale.
        current = self._store.owner_generation(resolver.name)
        if resolver.cache_seconds > 0 and current == generation:
            expiry = time.monotonic() + resolver.cache_seconds
            self._cache[key] = (expiry, owners, generation)
            self._cache.move_to_end(key)
            if len(self._cache) > _MAX_CACHED_OBJECTS:
                self._cache.popitem(last=False)

        return owners

    def invalidate(self, resolver: ResolverConfig) -> None:
        """Drop every cached owner set of `resolver`, in every gateway process."""
        self._store.bump_owner_generation(resolver.name)

    async def _fetch(self, resolver: ResolverConfig, object_id: str,
                     request_id: str) -> frozenset[str]:
        parameter = resolver.path.parameters[0]
        path = resolver.path.expand({parameter: encode_segment(object_id)})
        url = self._upstream.with_path(path, encoded=True)
        headers = {
            RESOLVER_HEADER: resolver.name,
            "X-Request-ID": request_id,
            "Accept": "application/json",
            "Accept-Encoding": "identity",
        }
        try:
            async with self._session.get(url, headers=headers, allow_redirects=False,
                                         timeout=self._timeout) as response:
                if response.status == 404:
                    raise NotFound("The object does not exist or is not yours.",
                                   reason="object_not_found")
                if response.status != 200:
                    raise UpstreamError(
                        "The upstream could not tell who owns the object.",
                        reason=f"resolver_status_{response.status}",
                    )
                document = await response.json(content_type=None)
        except asyncio.TimeoutError:
            raise UpstreamTimeout("The upstream did not respond in time.",
                                  reason="resolver_timeout") from None
        except (aiohttp.ClientError, ValueError) as error:
            raise UpstreamError("The upstream could not tell who owns the object.",
                                reason="resolver_failed") from error

        try:
            return owners_of(document[resolver.owners_field])
        except (KeyError, TypeError, ValueError):
            raise UpstreamError(
                "The upstream's object has no usable owner field.",
                reason="resolver_bad_owner_field",
            ) from None
