"""Strict readers for `model.conf` and `roles.csv`.

Casbin's own file adapter splits on commas, keeps quotes as characters, drops
rows of unknown type and loads rows of the wrong length that later break every
decision.  These readers accept a narrow grammar instead and report anything
else with its line number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from gateway.authz.user_admin import USER_RESOURCES
from gateway.errors import ConfigError

SCOPES = ("all", "own")
_NAME = re.compile(r"[a-z][a-z0-9_]*")
_MODEL_TOKEN = re.compile(r'"[^"]*"|\w+(?:\.\w+)*|&&|\|\||==|!=|\S')

# The one model the compiled index implements, compared without whitespace.
SUPPORTED_MODEL = {
    ("request_definition", "r"): "sub, res, act, rel",
    ("policy_definition", "p"): "sub, res, act, scope",
    ("role_definition", "g"): "_, _",
    ("policy_effect", "e"): "some(where (p.eft == allow))",
    ("matchers", "m"): (
        'g(r.sub, p.sub) && r.res == p.res && r.act == p.act'
        ' && (p.scope == "all" || p.scope == r.rel)'
    ),
}


@dataclass(frozen=True)
class PolicyRule:
    """One `p` row: ROLE may do ACTION on RESOURCE within SCOPE.

    SCOPE is "all", "own", or for users and API keys the role of the users
    the row applies to.
    """

    file: str
    line: int
    role: str
    resource: str
    action: str
    scope: str

    @cached_property
    def _location(self) -> str:
        return f"{Path(self.file).name}:{self.line}"

    def location(self) -> str:
        """Return `roles.csv:LINE`; built once, since every decision logs it."""
        return self._location

    def fields(self) -> list[str]:
        return [self.role, self.resource, self.action, self.scope]


@dataclass(frozen=True)
class InheritanceRule:
    """One `g` row: ROLE has every permission of PARENT."""

    file: str
    line: int
    role: str
    parent: str


def read_model(file: Path) -> str:
    """Return the model text after checking that it is the supported model."""
    text = _read_text(file)
    found: dict[tuple[str, str], tuple[str, int]] = {}
    section = None
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("[") and stripped.endswith("]"):
            section = stripped[1:-1].strip()
            continue

        key, equals, value = stripped.partition("=")
        if not equals or section is None:
            raise ConfigError(file, f"expected 'key = value' in a section: {stripped!r}",
                              line=number)
        if (section, key.strip()) in found:
            raise ConfigError(file, f"'{key.strip()}' is repeated in [{section}]",
                              line=number)
        found[(section, key.strip())] = (value.strip(), number)

    for (section, key), expected in SUPPORTED_MODEL.items():
        if (section, key) not in found:
            raise ConfigError(file, f"missing '{key} = ...' in section [{section}]")
        value, number = found.pop((section, key))
        if _tokens(value) != _tokens(expected):
            raise ConfigError(
                file,
                f"[{section}] {key} is not the supported model; the gateway "
                f"compiles only: {key} = {expected}",
                line=number,
            )

    for (section, key), (_, number) in found.items():
        raise ConfigError(file, f"unsupported entry '{key}' in [{section}]",
                          line=number)

    return text


def read_roles(
    file: Path,
    *,
    roles: tuple[str, ...],
    actions: frozenset[tuple[str, str]],
) -> tuple[list[PolicyRule], list[InheritanceRule]]:
    """Parse `roles.csv`, checking every name against the config's vocabulary."""
    text = _read_text(file)
    rules: list[PolicyRule] = []
    inheritance: list[InheritanceRule] = []
    seen: dict[tuple[str, ...], int] = {}
    resources = {resource for resource, _ in actions}

    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue

        fields = _split_row(file, number, stripped)
        key = tuple(fields)
        if key in seen:
            raise ConfigError(file, f"duplicate of line {seen[key]}", line=number)
        seen[key] = number

        def fail(message: str) -> ConfigError:
            return ConfigError(file, message, line=number)

        if fields[0] == "p":
            rules.append(_policy_rule(file, number, fields, roles, resources,
                                      actions, fail))
        elif fields[0] == "g":
            inheritance.append(_inheritance_rule(file, number, fields, roles, fail))
        else:
            raise fail(f"row type must be 'p' or 'g', found {fields[0]!r}")

    _check_inheritance(file, inheritance)
    return rules, inheritance


def _policy_rule(file, number, fields, roles, resources, actions, fail) -> PolicyRule:
    if len(fields) != 5:
        raise fail(f"a 'p' row has 5 fields (p, role, resource, action, scope), "
                   f"found {len(fields)}")

    _, role, resource, action, scope = fields
    if role not in roles:
        raise fail(f"unknown role {role!r}; roles in config.yaml: {', '.join(roles)}")
    if resource not in resources:
        raise fail(f"unknown resource {resource!r}; no route in config.yaml names it")
    if (resource, action) not in actions:
        raise fail(f"unknown action {action!r} on {resource!r}; "
                   "no route in config.yaml names it")
    if resource in USER_RESOURCES:
        if scope != "all" and scope not in roles:
            raise fail(f"the scope of a {resource!r} row is 'all' or the role of the "
                       f"users it applies to ({', '.join(roles)}), found {scope!r}")
    elif scope not in SCOPES:
        raise fail(f"scope must be 'all' or 'own', found {scope!r}")

    return PolicyRule(str(file), number, role, resource, action, scope)


def _inheritance_rule(file, number, fields, roles, fail) -> InheritanceRule:
    if len(fields) != 3:
        raise fail(f"a 'g' row has 3 fields (g, role, inherited role), "
                   f"found {len(fields)}")

    _, role, parent = fields
    for name in (role, parent):
        if name not in roles:
            raise fail(f"unknown role {name!r}; roles in config.yaml: "
                       f"{', '.join(roles)}")
    if role == parent:
        raise fail(f"role {role!r} inherits from itself")

    return InheritanceRule(str(file), number, role, parent)


def _split_row(file: Path, number: int, line: str) -> list[str]:
    for character in "\"'#()[]{}\t":
        if character in line:
            raise ConfigError(file, f"character {character!r} is not allowed in a row",
                              line=number)

    fields = [field.strip() for field in line.split(",")]
    for position, field in enumerate(fields, start=1):
        if not _NAME.fullmatch(field):
            raise ConfigError(
                file,
                f"field {position} is {field!r}; fields are lower-case names "
                "(a-z, 0-9, _) separated by commas",
                line=number,
            )

    return fields


def _check_inheritance(file: Path, inheritance: list[InheritanceRule]) -> None:
    parents: dict[str, list[InheritanceRule]] = {}
    for rule in inheritance:
        parents.setdefault(rule.role, []).append(rule)

    for role in parents:
        _walk_inheritance(file, parents, role, (role,), ())


# Not a nested function: a nested function that calls itself is a reference
# cycle, which only the garbage collector frees (see gateway/reload.py).
def _walk_inheritance(
    file: Path,
    parents: dict[str, list[InheritanceRule]],
    role: str,
    trail: tuple[str, ...],
    lines: tuple[int, ...],
) -> None:
    """Follow `role`'s parents; `lines[i]` is the row from trail[i] to trail[i + 1]."""
    # Casbin's role manager resolves at most ten levels; deeper chains
    # would silently lose permissions.
    if len(trail) > 9:
        raise ConfigError(file, f"inheritance deeper than 9 levels: "
                          f"{' -> '.join(trail)}", line=lines[-1])
    for rule in parents.get(role, []):
        if rule.parent in trail:
            # Name the cycle's last row in the file: the one most likely new.
            start = trail.index(rule.parent)
            rows = sorted(lines[start:] + (rule.line,))
            raise ConfigError(file, f"inheritance cycle: "
                              f"{' -> '.join(trail[start:] + (rule.parent,))} "
                              f"(rows on lines {', '.join(map(str, rows))})",
                              line=rows[-1])
        _walk_inheritance(file, parents, rule.parent, trail + (rule.parent,),
                          lines + (rule.line,))


def _read_text(file: Path) -> str:
    try:
        data = file.read_bytes()
    except OSError as error:
        raise ConfigError(file, f"cannot read file: {error.strerror}") from error

    if data.startswith(b"\xef\xbb\xbf"):
        raise ConfigError(file, "file starts with a byte order mark; save it "
                          "as UTF-8 without BOM", line=1)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ConfigError(file, "file is not valid UTF-8", line=line) from error


def _tokens(text: str) -> list[str]:
    # Spaces between tokens do not matter; a space inside one (`"a ll"`,
    # `re l`, `= =`) changes what Casbin evaluates, so it makes a new token.
    return _MODEL_TOKEN.findall(text)
