"""Write a copy of a config file with some settings replaced.

The demo and the tests run the gateway against upstreams on ports chosen at
run time, with a store of their own.  Relative file paths of the source are
made absolute, so the copy may live in any folder.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from gateway.config.source import load_yaml_document

# Keys whose values are file paths relative to the config file.
_PATH_KEYS = (
    ("store", "sqlite"),
    ("policy", "model"),
    ("policy", "roles"),
    ("authentication", "jwt", "secret_file"),
    ("authentication", "jwt", "public_key_file"),
    ("authentication", "jwt", "private_key_file"),
)
_DEFAULT_PATHS = {
    ("store", "sqlite"): ".gateway/gateway.db",
    ("policy", "model"): "policies/model.conf",
    ("policy", "roles"): "policies/roles.csv",
}


def derive_config(
    source: str | Path,
    target: str | Path,
    changes: dict[tuple[str, ...], Any],
) -> Path:
    """Write `source` to `target` with each key path in `changes` set to its value."""
    source = Path(source).resolve()
    data = copy.deepcopy(load_yaml_document(source).data)

    for key_path in _PATH_KEYS:
        value = _get(data, key_path) or _DEFAULT_PATHS.get(key_path)
        if value is not None:
            _set(data, key_path, str((source.parent / value).resolve()))

    for key_path, value in changes.items():
        _set(data, key_path, str(value) if isinstance(value, Path) else value)

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(data, sort_keys=False))
    return target


def _get(data: dict, key_path: tuple[str, ...]):
    for key in key_path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]

    return data


def _set(data: dict, key_path: tuple[str, ...], value) -> None:
    for key in key_path[:-1]:
        data = data.setdefault(key, {})
    data[key_path[-1]] = value
