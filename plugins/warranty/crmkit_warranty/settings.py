"""The ``[plugin.warranty]`` config table: its JSON Schema and its typed form."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from crmkit import Crm

__all__ = ["CONFIG_SCHEMA", "DEFAULT_DEFECT_CODES", "AlertRule", "Settings"]

#: The defect catalogue used when the config names none.
DEFAULT_DEFECT_CODES: dict[str, str] = {
    "no_power": "Does not power on",
    "display": "Display fault",
    "noise": "Abnormal noise or vibration",
    "leak": "Leaks fluid",
    "firmware": "Firmware or software fault",
    "mechanical": "Broken or worn mechanical part",
    "other": "Other defect",
}

#: The example from the issue: more than 3% of a batch failing within 30 days of purchase.
DEFAULT_ALERTS: list[dict[str, Any]] = [
    {"name": "early-batch-failures", "scope": "batch", "rate_percent": 3.0,
     "within_days": 30, "min_units": 20},
]

CONFIG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "defect_codes": {
            "description": "The defect catalogue: code = description.",
            "type": "object",
            "propertyNames": {"pattern": "^[a-z0-9][a-z0-9_.-]{0,39}$"},
            "additionalProperties": {"type": "string", "minLength": 1, "maxLength": 200},
            "minProperties": 1,
        },
        "triage_business_days": {
            "description": "SLA: a claim is triaged within this many business days.",
            "type": "integer", "minimum": 1, "maximum": 365,
        },
        "resolution_business_days": {
            "description": "SLA: a claim is resolved within this many business days.",
            "type": "integer", "minimum": 1, "maximum": 365,
        },
        "holidays": {
            "description": "Dates (YYYY-MM-DD) that are not business days.",
            "type": "array", "items": {"type": "string", "format": "date",
                                       "pattern": "^\\d{4}-\\d{2}-\\d{2}$"},
            "uniqueItems": True,
        },
        "alerts": {
            "description": "Defect-rate thresholds that raise warranty.defect_threshold_crossed.",
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "scope", "rate_percent"],
                "properties": {
                    "name": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,59}$"},
                    "scope": {"enum": ["batch", "product", "product_line"]},
                    "rate_percent": {"type": "number", "exclusiveMinimum": 0,
                                     "maximum": 100},
                    "within_days": {"type": "integer", "minimum": 1},
                    "min_units": {"type": "integer", "minimum": 1},
                },
            },
        },
    },
}


@attrs.frozen
class AlertRule:
    """``more than rate_percent % of a scope's units claimed within within_days of purchase``."""

    name: str
    scope: str
    rate_percent: float
    within_days: int | None = None
    min_units: int = 1


@attrs.frozen
class Settings:
    """The validated ``[plugin.warranty]`` table with its defaults applied."""

    defect_codes: Mapping[str, str] = attrs.field(factory=lambda: dict(DEFAULT_DEFECT_CODES))
    triage_business_days: int = 2
    resolution_business_days: int = 10
    holidays: frozenset[dt.date] = frozenset()
    alerts: tuple[AlertRule, ...] = ()

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> Settings:
        """Settings from a table already validated against :data:`CONFIG_SCHEMA`."""
        return cls(
            defect_codes=dict(section.get("defect_codes", DEFAULT_DEFECT_CODES)),
            triage_business_days=section.get("triage_business_days", 2),
            resolution_business_days=section.get("resolution_business_days", 10),
            holidays=frozenset(dt.date.fromisoformat(d) for d in section.get("holidays", [])),
            alerts=tuple(AlertRule(**rule) for rule in section.get("alerts", DEFAULT_ALERTS)),
        )

    @classmethod
    def of(cls, crm: Crm) -> Settings:
        """The settings of the running deployment."""
        return cls.from_config(crm.plugin_config("warranty"))
