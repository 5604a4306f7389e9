"""The ``[plugin.surveys]`` config table: its JSON Schema and its typed form."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs
from crmkit.criteria import parse_duration

if TYPE_CHECKING:
    from crmkit import Crm

__all__ = ["CONFIG_SCHEMA", "Settings"]

_DURATION: dict[str, Any] = {
    "type": "string", "pattern": "^P(?:\\d+W|\\d+D|T\\d+H|\\d+DT\\d+H)$",
    "description": "An ISO 8601 duration: P14D, P2W, PT48H, P1DT12H.",
}

CONFIG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "expires_after": {**_DURATION, "description": "How long an invitation is valid."},
        "remind_after": {**_DURATION,
                         "description": "Remind no sooner than this after the last message."},
        "min_interval": {**_DURATION, "description": "Triggered surveys: do not survey a "
                         "customer again within this period (rules may override it)."},
        "max_reminders": {"type": "integer", "minimum": 0, "maximum": 10},
        "auto_remind": {"type": "boolean", "description": "Let `crmkit worker` send due "
                        "reminders by itself (otherwise run `crmkit surveys remind`)."},
        "min_group_size": {
            "description": "Anonymous surveys: report no group with fewer responses.",
            "type": "integer", "minimum": 1, "maximum": 1000,
        },
        "channel": {"description": "The channel invitations are logged with.",
                    "type": "string", "pattern": "^[a-z][a-z0-9_]{0,59}$"},
        "link": {"description": "The answer link; {token} is replaced with the token.",
                 "type": "string", "pattern": "\\{token\\}", "maxLength": 500},
        "segments": {
            "description": "Named audiences: segment name = criteria document.",
            "type": "object",
            "propertyNames": {"pattern": "^[a-z][a-z0-9_-]{0,59}$"},
            "additionalProperties": {"type": "object"},
        },
    },
}


@attrs.frozen
class Settings:
    """The validated ``[plugin.surveys]`` table with its defaults applied."""

    expires_after: dt.timedelta = dt.timedelta(days=14)
    remind_after: dt.timedelta = dt.timedelta(days=3)
    max_reminders: int = 2
    auto_remind: bool = True
    min_interval: dt.timedelta = dt.timedelta(days=90)
    min_group_size: int = 5
    channel: str = "email"
    link: str = "https://surveys.example.com/s/{token}"
    segments: Mapping[str, Any] = attrs.field(factory=dict)

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> Settings:
        """Settings from a table already validated against :data:`CONFIG_SCHEMA`."""
        default = cls()
        return cls(
            expires_after=parse_duration(section["expires_after"])
            if "expires_after" in section else default.expires_after,
            remind_after=parse_duration(section["remind_after"])
            if "remind_after" in section else default.remind_after,
            min_interval=parse_duration(section["min_interval"])
            if "min_interval" in section else default.min_interval,
            max_reminders=section.get("max_reminders", default.max_reminders),
            auto_remind=section.get("auto_remind", default.auto_remind),
            min_group_size=section.get("min_group_size", default.min_group_size),
            channel=section.get("channel", default.channel),
            link=section.get("link", default.link),
            segments=dict(section.get("segments", {})),
        )

    @classmethod
    def of(cls, crm: Crm) -> Settings:
        """The settings of the running deployment."""
        return cls.from_config(crm.plugin_config("surveys"))
