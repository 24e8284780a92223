"""A response schema is the caller's: check it before any model sees it. A schema that is not a JSON Schema, or
whose `$ref` points nowhere, is refused at once as the caller's error (never retried, never a provider failure
in the breaker); a model given one would only answer unconstrained JSON, again and again.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from typing import Any

from workbench.errors import SchemaError

ROOT = "urn:workbench:response-schema"


class InvalidSchema(SchemaError):
    http_status = 400


def check_schema(schema: Any) -> None:
    """InvalidSchema naming what is wrong (and where) unless `schema` is a valid JSON Schema whose refs resolve."""
    try:
        key = json.dumps(schema, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise InvalidSchema(f"The response schema is not JSON ({exc}). Send a JSON Schema object.") from None
    problem = _problem(key)
    if problem:
        raise InvalidSchema(f"The response schema is not usable: {problem}. Fix the schema (every $ref must point "
                            f"into the schema itself, e.g. #/$defs/Name) and send the request again.")


@functools.lru_cache(maxsize=256)
def _problem(key: str) -> str:
    """What is wrong with the schema (as JSON), or '' when nothing is."""
    from jsonschema import exceptions, validators
    from referencing import Registry, Resource
    from referencing.exceptions import Unresolvable
    from referencing.jsonschema import DRAFT202012

    schema = json.loads(key)
    if not isinstance(schema, (dict, bool)):
        return f"it is a {type(schema).__name__}, not an object"
    cls = validators.validator_for(schema, default=validators.Draft202012Validator)
    try:
        cls.check_schema(schema)
    except exceptions.SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "the top level"
        return f"{exc.message} (at {where})"
    resource = Resource.from_contents(schema, default_specification=DRAFT202012)
    resolver = Registry().with_resource(ROOT, resource).crawl().resolver(base_uri=ROOT)
    for ref in _refs(schema):
        try:
            resolver.lookup(ref)
        except Unresolvable:
            return f"$ref {ref!r} cannot be resolved"
    return ""


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            elif key not in ("const", "enum", "default", "examples"):  # data, not subschemas
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)
