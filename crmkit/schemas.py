"""The JSON Schema registry: the kernel's schemas plus what plugins and config contribute.

Validators are compiled once; errors become :class:`~crmkit.errors.Issue` objects with a
field path, a readable message and the offending value (never a multi-megabyte echo).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from jsonschema.exceptions import ValidationError as JsonSchemaError

from crmkit.errors import Issue, ValidationError, short_repr

__all__ = ["SchemaRegistry", "describe", "load_kernel_schema", "schemas_dir"]

_EMAIL = re.compile(r"^[^@\s\x00-\x1f]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)+$")

FORMAT_CHECKER = jsonschema.FormatChecker()


@FORMAT_CHECKER.checks("email")
def _is_email(value: object) -> bool:
    # jsonschema's own check only looks for an "@"; a CRM needs a deliverable shape.
    return not isinstance(value, str) or bool(_EMAIL.match(value))


def schemas_dir() -> Path:
    """Where the kernel's schemas are: inside the wheel, or ``schemas/`` in a checkout."""
    packaged = resources.files("crmkit") / "schemas"
    if packaged.is_dir():
        return Path(str(packaged))
    checkout = Path(__file__).resolve().parent.parent / "schemas"
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError("crmkit's JSON Schemas are missing from this installation")


@cache
def load_kernel_schema(name: str) -> dict[str, Any]:
    """A kernel schema by file stem, e.g. ``load_kernel_schema("customer")``."""
    with (schemas_dir() / f"{name}.schema.json").open(encoding="utf-8") as fh:
        schema: dict[str, Any] = json.load(fh)
    return schema


def compile_schema(schema: Mapping[str, Any], where: str) -> Draft202012Validator:
    """A validator for ``schema``; a broken schema is a :class:`ValidationError` naming it."""
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        path = "/".join(str(p) for p in exc.absolute_path)
        raise ValidationError(
            [Issue(path, f"invalid JSON Schema: {exc.message}")], context=where
        ) from None
    return Draft202012Validator(schema, format_checker=FORMAT_CHECKER)


def _path(prefix: str, error: JsonSchemaError) -> str:
    parts = [prefix] if prefix else []
    for part in error.absolute_path:
        if isinstance(part, int):
            parts[-1:] = [f"{parts[-1]}[{part}]"] if parts else [f"[{part}]"]
        else:
            parts.append(str(part))
    return ".".join(parts)


def describe(error: JsonSchemaError) -> str:
    """A short message for one schema error, without echoing huge values."""
    v = error.validator
    value: Any = error.instance
    expected: Any = error.validator_value
    schema: Any = error.schema
    if v == "required":
        # jsonschema reports each missing property as its own error ("'kind' is a required
        # property"); name just that one, or every missing one if the wording ever changes.
        missing = [name for name in expected if name not in value]
        mine = [name for name in missing if error.message.startswith(repr(name))]
        return f"missing required field {', '.join(map(repr, mine[:1] or missing))}"
    if v == "additionalProperties":
        extra = sorted(set(value) - set(schema.get("properties", {})))
        return f"unknown field {', '.join(map(repr, extra))}"
    if v == "type":
        types = expected if isinstance(expected, list) else [expected]
        got = f"{type(value).__name__} {short_repr(value)}"
        return f"must be of type {' or '.join(types)}, got {got}"
    if v == "enum":
        return f"must be one of {', '.join(map(repr, expected))}, got {short_repr(value)}"
    if v == "maxLength":
        return f"is too long: {len(value):,} characters, at most {expected:,} allowed"
    if v == "minLength":
        return "must not be empty" if expected == 1 else f"must have at least {expected} characters"
    if v == "pattern":
        return f"{short_repr(value)} does not match the required pattern {expected}"
    if v == "format":
        return f"{short_repr(value)} is not a valid {expected}"
    if v in ("maxItems", "minItems"):
        bound = "at most" if v == "maxItems" else "at least"
        return f"has {len(value)} items, {bound} {expected} allowed"
    if v == "uniqueItems":
        return "must not contain duplicates"
    if v in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        words = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}
        return f"must be {words[v]} {expected}, got {short_repr(value)}"
    message: str = error.message
    if v == "dependentRequired":
        return message
    return message if len(message) <= 200 else message[:197] + "..."


def issues_of(validator: Draft202012Validator, instance: Any, prefix: str = "") -> list[Issue]:
    """Every problem with ``instance``, ordered by field path."""
    found = [
        Issue(_path(prefix, error), describe(error), _short_value(error.instance))
        for error in validator.iter_errors(instance)
    ]
    return sorted(found, key=lambda issue: issue.path)


def _short_value(value: Any) -> Any:
    if isinstance(value, str) and len(value) > 200:
        return value[:200] + "..."
    if isinstance(value, (dict, list)):
        return short_repr(value, 200)
    return value


class SchemaRegistry:
    """Kernel schemas, custom customer fields and interaction-kind payload schemas."""

    def __init__(self) -> None:
        self.customer = compile_schema(load_kernel_schema("customer"), "customer.schema.json")
        self.interaction = compile_schema(
            load_kernel_schema("interaction"), "interaction.schema.json"
        )
        self.customer_fields: dict[str, dict[str, Any]] = {}
        self.field_owners: dict[str, str] = {}
        self.kinds: dict[str, Draft202012Validator | None] = {}
        self.kind_owners: dict[str, str] = {}
        self.channels: dict[str, str] = {}
        self._attributes: Draft202012Validator | None = None

    # -- contributions --------------------------------------------------------------------

    def add_customer_field(self, name: str, schema: Mapping[str, Any], owner: str) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,59}", name):
            raise ValidationError(
                [Issue(name, "a custom field name must be lower_snake_case")],
                context=f"custom field from {owner}",
            )
        if name in self.customer_fields:
            raise ValidationError(
                [Issue(name, f"already registered by {self.field_owners[name]}")],
                context=f"custom field from {owner}",
            )
        compile_schema(schema, f"custom field {name!r} from {owner}")
        self.customer_fields[name] = dict(schema)
        self.field_owners[name] = owner
        self._attributes = None

    def add_kind(self, name: str, schema: Mapping[str, Any] | None, owner: str) -> None:
        if name in self.kinds:
            raise ValidationError(
                [Issue(name, f"interaction kind already registered by {self.kind_owners[name]}")],
                context=f"interaction kind from {owner}",
            )
        self.kinds[name] = (
            compile_schema(schema, f"payload schema of kind {name!r} from {owner}")
            if schema is not None
            else None
        )
        self.kind_owners[name] = owner

    def add_channel(self, name: str, owner: str) -> None:
        self.channels.setdefault(name, owner)

    # -- validation -------------------------------------------------------------------

    @property
    def attributes(self) -> Draft202012Validator:
        if self._attributes is None:
            self._attributes = Draft202012Validator(
                {
                    "type": "object",
                    "properties": self.customer_fields,
                    "additionalProperties": False,
                },
                format_checker=FORMAT_CHECKER,
            )
        return self._attributes

    def check_customer(self, values: Mapping[str, Any], context: str = "customer") -> None:
        issues = issues_of(self.customer, values)
        attributes = values.get("attributes")
        if isinstance(attributes, dict):
            issues += issues_of(self.attributes, attributes, "attributes")
        if issues:
            raise ValidationError(issues, context=context)

    def check_interaction(self, values: Mapping[str, Any], context: str = "interaction") -> None:
        issues = issues_of(self.interaction, values)
        channel, kind = values.get("channel"), values.get("kind")
        unknown_channel = isinstance(channel, str) and channel not in self.channels
        if unknown_channel and not _has(issues, "channel"):
            issues.append(Issue("channel", f"unknown channel {short_repr(channel)}; known: "
                                f"{', '.join(sorted(self.channels))}", channel))
        if isinstance(kind, str) and not _has(issues, "kind"):
            if kind not in self.kinds:
                issues.append(Issue("kind", f"unknown interaction kind {short_repr(kind)}; "
                                    f"known: {', '.join(sorted(self.kinds))}", kind))
            elif (validator := self.kinds[kind]) is not None:
                issues += issues_of(validator, values.get("payload", {}), "payload")
        if issues:
            raise ValidationError(sorted(issues, key=lambda i: i.path), context=context)

    def check(self, validator: Draft202012Validator, instance: Any, context: str) -> None:
        issues = issues_of(validator, instance)
        if issues:
            raise ValidationError(issues, context=context)


def _has(issues: Iterable[Issue], path: str) -> bool:
    return any(issue.path == path for issue in issues)
