"""Request body parsing and field validation for the JSON endpoints.

Every failure raises 400 with a ``detail`` message that names the field and what
it accepts, like the real API. Unknown fields are rejected rather than ignored, so
a client that misspells a field learns about it.
"""

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .errors import bad_request

TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean",
    list: "a list",
}


@dataclass(frozen=True)
class Field:
    """Accepted type and constraints of one body field.

    ``default`` is copied into a new record when the field is omitted on create.
    ``item_type`` is the element type when ``value_type`` is ``list``.
    """

    value_type: type
    item_type: type | None = None
    required: bool = False
    nullable: bool = False
    allow_blank: bool = False
    read_only: bool = False
    choices: tuple[str, ...] | None = None
    default: Any = None


Fields = Mapping[str, Field]


async def read_json_object(
    request: web.Request,
    *,
    allow_empty: bool = False,
) -> dict[str, Any]:
    """Parse the request body as a JSON object.

    With ``allow_empty`` an empty body reads as ``{}``, for actions whose body is
    optional.
    """
    text = await request.text()
    if not text.strip():
        if allow_empty:
            return {}

        raise bad_request("Request body is missing: expected a JSON object.")

    try:
        body = json.loads(text)
    except json.JSONDecodeError as error:
        raise bad_request(f"Invalid JSON body: {error}.") from None

    if not isinstance(body, dict):
        raise bad_request(f"Expected a JSON object, got {type(body).__name__}.")

    return body


def is_of_type(value: Any, expected: type) -> bool:
    # bool is a subclass of int in Python, but true and false are not JSON numbers.
    if isinstance(value, bool):
        return expected is bool

    if expected is float:
        return isinstance(value, int | float)

    return isinstance(value, expected)


def check_value(name: str, value: Any, field: Field) -> None:
    if value is None:
        if not field.nullable:
            raise bad_request(f"Field '{name}' must not be null.")

        return

    if not is_of_type(value, field.value_type):
        raise bad_request(f"Field '{name}' must be {TYPE_NAMES[field.value_type]}.")

    if field.item_type is not None:
        for item in value:
            if not is_of_type(item, field.item_type):
                type_name = TYPE_NAMES[field.item_type]
                raise bad_request(f"Every item of field '{name}' must be {type_name}.")

    if isinstance(value, str) and not field.allow_blank and not value.strip():
        raise bad_request(f"Field '{name}' must not be blank.")

    if field.choices is not None and value not in field.choices:
        allowed = ", ".join(field.choices)
        raise bad_request(f"Field '{name}' must be one of: {allowed}. Got {value!r}.")


def validate_fields(
    body: Mapping[str, Any],
    fields: Fields,
    *,
    partial: bool,
) -> dict[str, Any]:
    """Return the body's fields after checking them against ``fields``.

    With ``partial`` (PATCH) required fields may be omitted. Otherwise (create)
    missing required fields are rejected and missing optional ones get a copy of
    their default.
    """
    for name in body:
        if name not in fields:
            raise bad_request(f"Unknown field '{name}'.")

        if fields[name].read_only:
            raise bad_request(f"Field '{name}' is read-only.")

    values: dict[str, Any] = {}
    for name, field in fields.items():
        if field.read_only:
            continue

        if name in body:
            check_value(name, body[name], field)
            values[name] = body[name]
        elif partial:
            continue
        elif field.required:
            raise bad_request(f"Field '{name}' is required.")
        else:
            values[name] = copy.deepcopy(field.default)

    return values


async def read_fields(
    request: web.Request,
    fields: Fields,
    *,
    partial: bool = False,
    allow_empty: bool = False,
) -> dict[str, Any]:
    """Parse the request body and validate it against ``fields``."""
    body = await read_json_object(request, allow_empty=allow_empty)

    return validate_fields(body, fields, partial=partial)
