"""Output helpers: aligned tables for people, ``--json`` for scripts."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import click

__all__ = ["echo_json", "echo_record", "echo_table", "json_option"]

F = TypeVar("F", bound=Callable[..., Any])


def json_option(function: F) -> F:
    """The ``--json`` flag every listing and showing command has."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(
        function
    )


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def _cell(value: Any, width: int = 60) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        value = ", ".join(
            json.dumps(v, ensure_ascii=False, default=str) if isinstance(v, dict) else str(v)
            for v in value
        )
    elif isinstance(value, dict):
        value = json.dumps(value, ensure_ascii=False, default=str)
    text = str(value).replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def echo_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], empty: str) -> None:
    """Print ``rows`` as an aligned table of ``columns`` (or ``empty`` when there are none)."""
    if not rows:
        click.echo(empty)
        return
    cells = [[_cell(row.get(col)) for col in columns] for row in rows]
    widths = [max(len(col), *(len(r[i]) for r in cells)) for i, col in enumerate(columns)]
    header = "  ".join(col.upper().ljust(w) for col, w in zip(columns, widths, strict=True))
    click.echo(header.rstrip())
    for r in cells:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


def echo_record(record: Mapping[str, Any]) -> None:
    """Print one record as ``key: value`` lines."""
    width = max(len(k) for k in record) if record else 0
    for key, value in record.items():
        click.echo(f"{key.ljust(width)}  {_cell(value, 200)}")
