"""The ``[plugin.loyalty]`` config table: its JSON Schema and its typed form."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from crmkit import Crm

__all__ = ["CONFIG_SCHEMA", "DEFAULT_TIERS", "Settings"]

DEFAULT_TIERS = {"bronze": 0, "silver": 500, "gold": 2000}

CONFIG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "points_per_unit": {
            "description": "Points per unit of any currency (1 = one point per euro).",
            "type": "number",
            "minimum": 0,
        },
        "currencies": {
            "description": "Points per unit of specific currencies; 0 excludes one.",
            "type": "object",
            "propertyNames": {"pattern": "^[A-Z]{3}$"},
            "additionalProperties": {"type": "number", "minimum": 0},
        },
        "kinds": {
            "description": "Interaction kinds that earn points.",
            "type": "array",
            "items": {"type": "string"},
            "minItems": 1,
            "uniqueItems": True,
        },
        "tiers": {
            "description": "Tier name = the lifetime points from which it applies.",
            "type": "object",
            "propertyNames": {"pattern": "^[a-z][a-z0-9_]{0,29}$"},
            "additionalProperties": {"type": "integer", "minimum": 0},
            "minProperties": 1,
        },
    },
}


def _decimal(value: float | int) -> Decimal:
    # TOML gives floats; str() keeps the number the operator wrote (1.1, not 1.1000000001).
    return Decimal(str(value))


@attrs.frozen
class Settings:
    """The validated ``[plugin.loyalty]`` table with its defaults applied."""

    points_per_unit: Decimal = Decimal(1)
    currencies: Mapping[str, Decimal] = attrs.field(factory=dict)
    kinds: frozenset[str] = frozenset({"purchase"})
    #: (threshold, tier) pairs, highest threshold first.
    tiers: tuple[tuple[int, str], ...] = tuple(
        sorted(((v, k) for k, v in DEFAULT_TIERS.items()), reverse=True)
    )

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> Settings:
        """Settings from a table already validated against :data:`CONFIG_SCHEMA`."""
        tiers = section.get("tiers", DEFAULT_TIERS)
        return cls(
            points_per_unit=_decimal(section.get("points_per_unit", 1)),
            currencies={code: _decimal(rate)
                        for code, rate in section.get("currencies", {}).items()},
            kinds=frozenset(section.get("kinds", ["purchase"])),
            tiers=tuple(sorted(((v, k) for k, v in tiers.items()), reverse=True)),
        )

    @classmethod
    def of(cls, crm: Crm) -> Settings:
        """The settings of the running deployment."""
        return cls.from_config(crm.plugin_config("loyalty"))

    def rate(self, currency: str | None) -> Decimal:
        """Points per unit of ``currency``."""
        if currency is not None and currency in self.currencies:
            return self.currencies[currency]
        return self.points_per_unit

    def tier(self, points: int) -> str | None:
        """The tier that ``points`` lifetime points reach (``None`` below every tier)."""
        for threshold, name in self.tiers:
            if points >= threshold:
                return name
        return None
