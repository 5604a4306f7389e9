"""Importing leads from CSV or JSON: validated record by record, all or nothing by default.

Records that duplicate a customer or a lead (same e-mail or name) are skipped, so running
the same import twice captures nothing the second time. With ``on_error="skip"`` good
records are committed and bad ones are returned with their errors (the CLI writes them to
a reject file).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
from crmkit import Conflict, CrmkitError, Issue, ValidationError

from crmkit_sales import leads

if TYPE_CHECKING:
    from crmkit.uow import Transaction

__all__ = ["ImportResult", "import_leads", "read_records"]


@attrs.define
class ImportResult:
    """Lead ids created, records skipped as duplicates, records rejected with errors."""

    created: list[int] = attrs.field(factory=list)
    duplicates: list[dict[str, Any]] = attrs.field(factory=list)
    rejected: list[dict[str, Any]] = attrs.field(factory=list)

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def read_records(path: Path) -> list[dict[str, Any]]:
    """Records of a ``.csv`` (header row; empty cells are absent) or ``.json`` (a list of
    objects) file."""
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
                raise ValidationError([Issue(path.name, "must hold a JSON list of objects")])
            return data
        with path.open(newline="", encoding="utf-8-sig") as handle:
            return [{k: v for k, v in row.items() if k and v not in (None, "")}
                    for row in csv.DictReader(handle)]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, csv.Error) as error:
        raise ValidationError([Issue(path.name, f"cannot read: {error}")]) from None


def import_leads(tx: Transaction, records: list[dict[str, Any]], *, source: str | None = None,
                 on_error: str = "abort") -> ImportResult:
    """Capture every record as a lead; ``source`` fills records that name none.

    ``on_error="abort"`` raises on the first bad record (the caller's transaction then
    rolls back everything); ``"skip"`` keeps going and reports the bad ones.
    """
    result = ImportResult()
    for number, raw in enumerate(records, start=1):
        record = {**({"source": source} if source else {}), **raw}
        try:
            with tx.session.begin_nested():
                lead = leads.capture(tx, record)
        except Conflict as duplicate:
            result.duplicates.append({"record": number, "reason": str(duplicate)})
            continue
        except CrmkitError as error:
            if on_error != "skip":
                if isinstance(error, ValidationError):
                    raise ValidationError(error.issues, context=f"record {number}") from None
                raise
            result.rejected.append({"record": number, "data": raw, "error": str(error)})
            continue
        result.created.append(lead.id)
    return result
