"""The ``[plugin.campaigns]`` config table: its JSON Schema and its typed form."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from crmkit import Crm

__all__ = ["CONFIG_SCHEMA", "Settings"]

CONFIG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "currency": {
            "description": "Currency of budgets and revenue when a campaign names none.",
            "type": "string",
            "pattern": "^[A-Z]{3}$",
        },
        "suppression_lists": {
            "description": "Suppression lists every launch honours (default: all lists).",
            "type": "array",
            "items": {"type": "string", "minLength": 1, "maxLength": 60},
            "uniqueItems": True,
        },
        "sample_size": {
            "description": "How many customers `segments preview` shows.",
            "type": "integer",
            "minimum": 0,
            "maximum": 1000,
        },
    },
}


@attrs.frozen
class Settings:
    """The validated ``[plugin.campaigns]`` table with its defaults applied."""

    currency: str = "EUR"
    #: ``None``: every suppression list applies.
    suppression_lists: tuple[str, ...] | None = None
    sample_size: int = 10

    @classmethod
    def from_config(cls, table: Mapping[str, Any]) -> Settings:
        lists = table.get("suppression_lists")
        return cls(
            currency=table.get("currency", "EUR"),
            suppression_lists=tuple(lists) if lists is not None else None,
            sample_size=table.get("sample_size", 10),
        )

    @classmethod
    def of(cls, crm: Crm) -> Settings:
        """The settings of the running deployment."""
        return cls.from_config(crm.plugin_config("campaigns"))
