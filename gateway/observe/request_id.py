"""Request ids: unique within a deployment, cheap enough for every request.

An id is a random prefix drawn when the process starts (again in a forked
child) followed by a counter, 24 hex digits in all like a token_hex(12).
Drawing 12 random bytes from the kernel for each request cost more than the
rest of the id's uses.  The ids need to be unique, not secret: nothing is
authorized by one.
"""

from __future__ import annotations

import itertools
import os
import secrets

_COUNTER_LIMIT = 16**12


def _reseed() -> None:
    global _prefix, _counter
    _prefix = secrets.token_hex(6)
    _counter = itertools.count()


_prefix = ""
_counter = itertools.count()
_reseed()
os.register_at_fork(after_in_child=_reseed)


def new_request_id() -> str:
    number = next(_counter)
    if number >= _COUNTER_LIMIT:
        _reseed()
        number = next(_counter)
    return f"{_prefix}{number:012x}"
