"""The route table: a segment trie built from the configured path templates.

Matching walks one segment at a time, trying a literal child before a
parameter child, so its cost is bounded by the depth of the templates and
never depends on regex backtracking.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.config.model import RouteConfig
from gateway.errors import MethodNotAllowed, NotFound


class RouteConflict(ValueError):
    """Two routes claim the same method and path, or name a segment differently."""

    def __init__(self, message: str, route: RouteConfig) -> None:
        super().__init__(message)
        self.route = route


@dataclass(frozen=True, slots=True)
class RouteMatch:
    route: RouteConfig
    params: dict[str, str]


@dataclass
class _Node:
    literals: dict[str, _Node] = field(default_factory=dict)
    parameter_name: str | None = None
    parameter: _Node | None = None
    routes: dict[str, RouteConfig] = field(default_factory=dict)


class RouteTable:
    def __init__(self, routes: tuple[RouteConfig, ...]) -> None:
        self._root = _Node()
        for route in routes:
            self._add(route)

    def _add(self, route: RouteConfig) -> None:
        node = self._root
        for segment in route.path.segments:
            if not segment.is_parameter:
                node = node.literals.setdefault(segment.text, _Node())
                continue
            if node.parameter is None:
                node.parameter_name = segment.text
                node.parameter = _Node()
            elif node.parameter_name != segment.text:
                raise RouteConflict(
                    f"route {route.path.text!r} names parameter "
                    f"{{{segment.text}}} where another route names "
                    f"{{{node.parameter_name}}}",
                    route,
                )
            node = node.parameter

        for method in route.methods:
            if method in node.routes:
                other = node.routes[method]
                raise RouteConflict(
                    f"{method} {route.path.text!r} is already routed by "
                    f"{other.path.text!r} (routes[{other.index}])",
                    route,
                )
            node.routes[method] = route

    def match(self, method: str, segments: tuple[str, ...]) -> RouteMatch:
        """Find the route for a decoded path, or raise NotFound / MethodNotAllowed."""
        params: dict[str, str] = {}
        node = _walk(self._root, segments, 0, params)
        if node is None:
            raise NotFound("No route matches this path.", reason="no_route")

        route = node.routes.get("GET" if method == "HEAD" else method)
        if route is None:
            allowed = sorted(node.routes)
            if "GET" in node.routes:
                allowed.append("HEAD")
            raise MethodNotAllowed(f"Method {method} is not allowed on this path.",
                                   allowed=allowed)

        return RouteMatch(route, params)


def _walk(node: _Node, segments: tuple[str, ...], index: int, params: dict):
    if index == len(segments):
        return node if node.routes else None

    segment = segments[index]
    child = node.literals.get(segment)
    if child is not None:
        found = _walk(child, segments, index + 1, params)
        if found is not None:
            return found

    if node.parameter is not None and segment != "":
        found = _walk(node.parameter, segments, index + 1, params)
        if found is not None:
            params[node.parameter_name] = segment
            return found

    return None
