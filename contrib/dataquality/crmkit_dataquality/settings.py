"""The ``[plugin.dataquality]`` config table: its JSON Schema and its typed form."""

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
        "default_country_code": {
            "description": "Calling code for national numbers (0 30 1234567 → +49 30 ...).",
            "type": "string",
            "pattern": "^[1-9][0-9]{0,2}$",
        },
        "normalize_phones": {"type": "boolean"},
        "normalize_emails": {"type": "boolean"},
        "flag_duplicates": {"type": "boolean"},
    },
}


@attrs.frozen
class Settings:
    """The validated ``[plugin.dataquality]`` table with its defaults applied."""

    default_country_code: str | None = None
    normalize_phones: bool = True
    normalize_emails: bool = True
    flag_duplicates: bool = True

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> Settings:
        """Settings from a table already validated against :data:`CONFIG_SCHEMA`."""
        return cls(**{field.name: section[field.name]
                      for field in attrs.fields(cls) if field.name in section})

    @classmethod
    def of(cls, crm: Crm) -> Settings:
        return cls.from_config(crm.plugin_config("dataquality"))
