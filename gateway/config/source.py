"""YAML loading that remembers where each value came from.

PyYAML drops line numbers once a document is built and keeps the last of two
equal keys without a word.  This module composes the node tree first, so every
key path maps to its line and a repeated key is an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from gateway.errors import ConfigError

KeyPath = tuple[str | int, ...]


def format_key_path(path: KeyPath) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


class SourceDocument:
    """A parsed YAML mapping plus the line of every key path in it."""

    def __init__(self, file: Path, data: dict[str, Any], lines: dict[KeyPath, int]):
        self.file = file
        self.data = data
        self._lines = lines

    def line_of(self, path: KeyPath) -> int | None:
        """Return the line of `path`, or of its nearest parent that has one."""
        path = tuple(path)
        while path:
            if path in self._lines:
                return self._lines[path]
            path = path[:-1]

        return self._lines.get((), None)

    def error(self, path: KeyPath, message: str) -> ConfigError:
        return ConfigError(
            self.file,
            message,
            line=self.line_of(path),
            key=format_key_path(path) or None,
        )


# libyaml's loader when PyYAML was built with it: several times faster on a
# config of thousands of routes, and the same safe constructor.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml_document(file: Path) -> SourceDocument:
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(file, f"cannot read file: {error.strerror}") from error
    except UnicodeDecodeError as error:
        raise ConfigError(file, "file is not valid UTF-8") from error

    try:
        # One parse gives both the node tree (for line numbers) and the data.
        loader = _Loader(text)
        try:
            root = loader.get_single_node()
            data = loader.construct_document(root) if root is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as error:
        line = error.problem_mark.line + 1 if error.problem_mark else None
        raise ConfigError(file, f"invalid YAML: {error.problem}", line=line) from error

    if not isinstance(data, dict) or root is None:
        raise ConfigError(file, "the top level must be a mapping", line=1)

    lines: dict[KeyPath, int] = {(): 1}
    _record_lines(file, root, (), lines)
    return SourceDocument(file, data, lines)


def _record_lines(file: Path, node: yaml.Node, path: KeyPath, lines: dict) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            if key in seen:
                raise ConfigError(
                    file,
                    f"duplicate key {key!r}",
                    line=key_node.start_mark.line + 1,
                    key=format_key_path(path + (key,)),
                )
            seen.add(key)
            lines[path + (key,)] = key_node.start_mark.line + 1
            _record_lines(file, value_node, path + (key,), lines)

    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[path + (index,)] = item.start_mark.line + 1
            _record_lines(file, item, path + (index,), lines)
