"""Reading import files (CSV with a header row, or a JSON array of objects) and writing
report rows as CSV."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from crmkit.errors import Issue, ValidationError

__all__ = ["read_records", "to_csv"]


def read_records(path: str | Path) -> list[tuple[str, dict[str, Any]]]:
    """``(where, record)`` pairs: ``where`` is ``file:line N`` (CSV) or ``file:record N``."""
    path = Path(path)
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValidationError([Issue(f"{path.name}:line {exc.lineno}", exc.msg)]) from None
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise ValidationError([Issue(path.name, "must be a JSON array of objects")])
        return [(f"{path.name}:record {i}", r) for i, r in enumerate(data, start=1)]
    return list(_csv_rows(path.name, text))


def _csv_rows(name: str, text: str) -> Iterator[tuple[str, dict[str, Any]]]:
    reader = csv.DictReader(io.StringIO(text))
    for row in reader:
        extra = row.pop(None, None)
        if extra:
            raise ValidationError([Issue(f"{name}:line {reader.line_num}",
                                         "more cells than header columns")])
        yield f"{name}:line {reader.line_num}", {
            k.strip(): v.strip() if isinstance(v, str) else v for k, v in row.items() if k}


def to_csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), extrasaction="ignore",
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
