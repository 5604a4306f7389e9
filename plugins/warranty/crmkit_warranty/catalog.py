"""Products: the catalogue of what is sold and its warranty terms; add, list, import."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from crmkit.db import utcnow
from crmkit.errors import Issue, NotFound, ValidationError
from crmkit.schemas import compile_schema, issues_of
from sqlalchemy import select
from sqlalchemy.orm import Session

from crmkit_warranty.models import WarrantyProduct

__all__ = ["PRODUCT_SCHEMA", "add_product", "get_product", "import_products", "list_products"]

PRODUCT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["sku", "name", "product_line", "warranty_months"],
    "properties": {
        "sku": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,59}$"},
        "name": {"type": "string", "minLength": 1, "maxLength": 200},
        "product_line": {"type": "string", "minLength": 1, "maxLength": 100},
        "warranty_months": {"type": "integer", "minimum": 0, "maximum": 600},
        "extended_months": {"type": ["integer", "null"], "minimum": 1, "maximum": 600},
    },
}
_VALIDATOR = compile_schema(PRODUCT_SCHEMA, "warranty product")


def check_product(record: Mapping[str, Any], context: str = "product") -> dict[str, Any]:
    """``record`` validated against :data:`PRODUCT_SCHEMA`; :class:`ValidationError` if not."""
    issues = issues_of(_VALIDATOR, dict(record))
    if issues:
        raise ValidationError(issues, context=context)
    return dict(record)


def get_product(session: Session, sku: str) -> WarrantyProduct:
    """The product with ``sku``; :class:`NotFound` naming it otherwise."""
    product = session.scalars(select(WarrantyProduct).where(WarrantyProduct.sku == sku)).first()
    if product is None:
        raise NotFound(f"no product with SKU {sku!r}")
    return product


def _upsert(session: Session, record: dict[str, Any]) -> tuple[WarrantyProduct, str]:
    product = session.scalars(
        select(WarrantyProduct).where(WarrantyProduct.sku == record["sku"])).first()
    if product is None:
        product = WarrantyProduct(**{"extended_months": None, **record})
        session.add(product)
        return product, "created"
    before = product.to_dict()
    for key, value in record.items():
        setattr(product, key, value)
    if product.to_dict() == before:
        return product, "unchanged"
    product.updated_at = utcnow()
    return product, "updated"


def add_product(tx: Any, **record: Any) -> WarrantyProduct:
    """Add a product, or update its terms when the SKU exists (idempotent)."""
    record = {k: v for k, v in record.items() if v is not None}
    check_product(record, context=f"product {record.get('sku', '?')}")
    product, action = _upsert(tx.session, record)
    tx.session.flush()
    if action != "unchanged":
        tx.audit("warranty_product", product.id, action, {"after": product.to_dict()})
    return product


def import_products(tx: Any, records: Iterable[tuple[str, Mapping[str, Any]]]
                    ) -> dict[str, int]:
    """Import ``(where, record)`` pairs, all or nothing: every record is checked before
    anything is written, and every problem names its line. Re-running changes nothing."""
    checked: list[dict[str, Any]] = []
    issues: list[Issue] = []
    seen: dict[str, str] = {}
    for where, raw in records:
        record = {k: v for k, v in raw.items() if v not in (None, "")}
        for key in ("warranty_months", "extended_months"):
            if isinstance(record.get(key), str) and record[key].strip().isdigit():
                record[key] = int(record[key])
        problems = issues_of(_VALIDATOR, record)
        issues += [Issue(f"{where}: {i.path}" if i.path else where, i.message, i.value)
                   for i in problems]
        sku = record.get("sku")
        if isinstance(sku, str):
            if sku in seen:
                issues.append(Issue(f"{where}: sku", f"duplicate of {seen[sku]}", sku))
            seen[sku] = where
        checked.append(record)
    if issues:
        raise ValidationError(issues, context="product import (nothing imported)")
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    for record in checked:
        product, action = _upsert(tx.session, record)
        counts[action] += 1
        tx.session.flush()
        if action != "unchanged":
            tx.audit("warranty_product", product.id, action, {"after": product.to_dict()})
    return counts


def list_products(session: Session) -> list[WarrantyProduct]:
    return list(session.scalars(select(WarrantyProduct).order_by(WarrantyProduct.sku)))
