"""Path templates such as `/api/1/chats/{id}/messages/`.

A template is a list of segments; each is a literal or a whole-segment
parameter.  There are no wildcards, regexes or parameters that share a segment,
so matching cannot backtrack and a parameter never spans a `/`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PARAMETER = re.compile(r"\{([a-z][a-z0-9_]*)\}")
_LITERAL = re.compile(r"[A-Za-z0-9_~\-][A-Za-z0-9._~\-]*")


@dataclass(frozen=True)
class Segment:
    text: str
    is_parameter: bool


@dataclass(frozen=True)
class PathTemplate:
    text: str
    segments: tuple[Segment, ...]

    @property
    def parameters(self) -> tuple[str, ...]:
        return tuple(s.text for s in self.segments if s.is_parameter)

    def expand(self, values: dict[str, str]) -> str:
        """Build a concrete path; values must already be percent-encoded."""
        parts = [values[s.text] if s.is_parameter else s.text for s in self.segments]
        return "/" + "/".join(parts)


def parse_template(text: str) -> PathTemplate:
    """Parse a template, raising ValueError with the reason when it is invalid."""
    if not text.startswith("/"):
        raise ValueError(f"path template {text!r} must start with '/'")

    raw_segments = text[1:].split("/")
    segments: list[Segment] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_segments):
        is_last = index == len(raw_segments) - 1
        segments.append(_parse_segment(text, raw, is_last, seen))

    return PathTemplate(text, tuple(segments))


def _parse_segment(template: str, raw: str, is_last: bool, seen: set[str]) -> Segment:
    if raw == "":
        if is_last:
            return Segment("", is_parameter=False)
        raise ValueError(f"path template {template!r} has an empty segment")

    parameter = _PARAMETER.fullmatch(raw)
    if parameter:
        name = parameter.group(1)
        if name in seen:
            raise ValueError(f"path template {template!r} repeats parameter {name!r}")
        seen.add(name)
        return Segment(name, is_parameter=True)

    if "{" in raw or "}" in raw:
        raise ValueError(
            f"path template {template!r}: segment {raw!r} must be a literal or "
            "one whole parameter such as '{id}'"
        )
    if not _LITERAL.fullmatch(raw):
        raise ValueError(
            f"path template {template!r}: segment {raw!r} may contain only "
            "letters, digits and '-._~', and may not start with '.'"
        )

    return Segment(raw, is_parameter=False)
