"""The OpenAPI document of the gateway's API, and request bodies checked by it.

The document is the one description of the API: the gateway serves it, the
request bodies are validated against its schemas, and the tests check the
responses against it.  Role names come from the running configuration.
"""

from __future__ import annotations

import copy
from functools import cache
from importlib import resources

import jsonschema
import orjson
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from gateway.errors import UnprocessableContent

_BASE = "urn:gateway-api"


@cache
def _template() -> dict:
    text = resources.files("gateway.api").joinpath("openapi.yaml").read_text("utf-8")
    return yaml.safe_load(text)


class ApiDocument:
    def __init__(self, roles: tuple[str, ...], api_prefix: str) -> None:
        document = copy.deepcopy(_template())
        document["components"]["schemas"]["Role"]["enum"] = list(roles)
        document["servers"] = [{"url": api_prefix.rstrip("/")}]
        self.document = document
        self.json = orjson.dumps(document)
        resource = Resource(contents=document, specification=DRAFT202012)
        self._registry = Registry().with_resource(_BASE, resource)
        self._validators: dict[str, jsonschema.Draft202012Validator] = {}

    def check(self, schema_name: str, value, *, field: str = ""):
        """Return `value` when it fits the named schema, else raise a 422 naming the field.

        `field` names `value` itself, for a query parameter.
        """
        validator = self._validators.get(schema_name)
        if validator is None:
            validator = jsonschema.Draft202012Validator(
                {"$ref": f"{_BASE}#/components/schemas/{schema_name}"},
                registry=self._registry,
            )
            self._validators[schema_name] = validator

        error = jsonschema.exceptions.best_match(validator.iter_errors(value))
        if error is not None:
            raise _unprocessable(error, field)
        return value


def _unprocessable(error, prefix: str) -> UnprocessableContent:
    if error.validator == "additionalProperties":
        known = list(error.schema.get("properties", {}))
        unknown = sorted(key for key in error.instance if key not in known)
        return UnprocessableContent(
            f"Unknown field {unknown[0]!r}; the fields are {', '.join(known)}.",
            field=unknown[0],
            allowed=known,
        )

    field = ".".join([prefix] * bool(prefix)
                     + [str(part) for part in error.absolute_path])
    if error.validator == "required":
        missing = error.message.split("'")[1]
        return UnprocessableContent(f"Field {missing!r} is required.", field=missing)
    if error.validator == "enum":
        allowed = error.validator_value
        return UnprocessableContent(
            f"Field {field!r} must be one of {', '.join(allowed)}, "
            f"not {_shortened(repr(error.instance))}.",
            field=field,
            allowed=allowed,
        )
    if not field:
        return UnprocessableContent("The body must be a JSON object.", field="")
    return UnprocessableContent(f"Field {field!r}: {_shortened(error.message)}.",
                                field=field)


def _shortened(text: str, limit: int = 100) -> str:
    # A detail echoes the client's value; a long one would only bloat the log.
    return text if len(text) <= limit else text[:limit] + "..."
