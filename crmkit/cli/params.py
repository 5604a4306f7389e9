"""Parameter types shared by commands."""

from __future__ import annotations

import json
from typing import Any

import click

__all__ = ["KEY_VALUE", "JSON_OBJECT", "parse_pairs"]


class KeyValue(click.ParamType):  # type: ignore[type-arg]  # generic only in click>=8.2
    """``KEY=VALUE``; the value is read as JSON when it parses (``true``, ``3``,
    ``["a"]``) and as a plain string otherwise."""

    name = "KEY=VALUE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None
                ) -> tuple[str, Any]:
        if isinstance(value, tuple):
            return value
        key, sep, raw = str(value).partition("=")
        if not sep or not key.strip():
            self.fail(f"{value!r} is not KEY=VALUE", param, ctx)
        try:
            parsed: Any = json.loads(raw)
        except ValueError:
            parsed = raw
        return key.strip(), parsed


class JsonObject(click.ParamType):  # type: ignore[type-arg]
    """A JSON object given on the command line."""

    name = "JSON"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None
                ) -> dict[str, Any]:
        if isinstance(value, dict):
            return value
        try:
            parsed = json.loads(value)
        except ValueError as exc:
            self.fail(f"not valid JSON: {exc}", param, ctx)
        if not isinstance(parsed, dict):
            self.fail("must be a JSON object ({...})", param, ctx)
        return parsed


KEY_VALUE = KeyValue()
JSON_OBJECT = JsonObject()


def parse_pairs(pairs: tuple[tuple[str, Any], ...]) -> dict[str, Any]:
    return dict(pairs)
