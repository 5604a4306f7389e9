"""The ``[plugin.sales]`` config table: its JSON Schema and its typed form.

Stage probabilities and forecast categories live here, not in the workflow definition:
the kernel's workflow schema has no room for them, and integrators who redefine the
pipeline in ``[workflows.sales_pipeline]`` describe their stages here as well.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from crmkit import Crm

__all__ = ["CATEGORIES", "CONFIG_SCHEMA", "ScoreRule", "Settings", "StageInfo"]

#: Forecast categories, from least to most certain.
CATEGORIES = ("pipeline", "best_case", "commit", "closed")

_NAME = {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,59}$"}

CONFIG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "default_currency": {
            "description": "Currency of opportunities that name none (ISO 4217).",
            "type": "string", "pattern": "^[A-Z]{3}$",
        },
        "stages": {
            "description": "Per pipeline state: default probability (0-100) and forecast "
                           "category.",
            "type": "object",
            "propertyNames": _NAME,
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "required": ["probability", "category"],
                "properties": {
                    "probability": {"type": "integer", "minimum": 0, "maximum": 100},
                    "category": {"enum": list(CATEGORIES)},
                },
            },
        },
        "won_stage": {**_NAME, "description": "The final state that means won."},
        "lost_stage": {**_NAME, "description": "The final state that means lost."},
        "lost_reasons": {
            "description": "The reasons a deal may be lost for.",
            "type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 100},
            "minItems": 1, "uniqueItems": True,
        },
        "domains": {
            "description": "Sales domains that opportunity lines belong to.",
            "type": "array", "items": _NAME, "minItems": 1, "uniqueItems": True,
        },
        "lead_sources": {
            "description": "Allowed lead sources (any source when absent).",
            "type": "array", "items": _NAME, "minItems": 1, "uniqueItems": True,
        },
        "scoring": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "sources": {
                    "description": "Points by lead source.",
                    "type": "object", "propertyNames": _NAME,
                    "additionalProperties": {"type": "integer"},
                },
                "fields": {
                    "description": "Points when a lead field is present (or equals value).",
                    "type": "array",
                    "items": {
                        "type": "object", "additionalProperties": False,
                        "required": ["field", "points"],
                        "properties": {
                            "field": {"enum": ["company", "email", "phone", "title",
                                               "country", "campaign", "contact_name"]},
                            "value": {"type": "string"},
                            "points": {"type": "integer"},
                        },
                    },
                },
                "activity_points": {
                    "description": "Points per recent logged activity on the lead.",
                    "type": "integer"},
                "activity_days": {"type": "integer", "minimum": 1, "maximum": 3650},
                "activity_max": {"type": "integer", "minimum": 0},
            },
        },
    },
}

DEFAULT_STAGES: dict[str, tuple[int, str]] = {
    "qualification": (10, "pipeline"),
    "needs_analysis": (25, "pipeline"),
    "proposal": (50, "best_case"),
    "negotiation": (75, "commit"),
    "won": (100, "closed"),
    "lost": (0, "closed"),
}
DEFAULT_LOST_REASONS = ("price", "competitor", "no_budget", "no_decision", "timing", "other")
DEFAULT_DOMAINS = ("products", "services", "advertising")
DEFAULT_SOURCE_POINTS = {"referral": 30, "event": 20, "web": 10, "import": 5}


@attrs.frozen
class StageInfo:
    """What the forecast knows about a pipeline state."""

    probability: int
    category: str


@attrs.frozen
class ScoreRule:
    """Points for a lead field that is present, or equal to ``value``."""

    field: str
    points: int
    value: str | None = None


@attrs.frozen
class Settings:
    """The validated ``[plugin.sales]`` table with its defaults applied."""

    default_currency: str = "EUR"
    stages: Mapping[str, StageInfo] = attrs.field(
        factory=lambda: {k: StageInfo(*v) for k, v in DEFAULT_STAGES.items()})
    won_stage: str = "won"
    lost_stage: str = "lost"
    lost_reasons: tuple[str, ...] = DEFAULT_LOST_REASONS
    domains: tuple[str, ...] = DEFAULT_DOMAINS
    lead_sources: tuple[str, ...] | None = None
    source_points: Mapping[str, int] = attrs.field(factory=lambda: dict(DEFAULT_SOURCE_POINTS))
    field_rules: tuple[ScoreRule, ...] = (
        ScoreRule("company", 10), ScoreRule("phone", 5), ScoreRule("title", 5))
    activity_points: int = 5
    activity_days: int = 30
    activity_max: int = 25

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> Settings:
        """Settings from a table already validated against :data:`CONFIG_SCHEMA`."""
        base = cls()
        stages = dict(base.stages)
        for name, info in section.get("stages", {}).items():
            stages[name] = StageInfo(info["probability"], info["category"])
        scoring = section.get("scoring", {})
        sources = section.get("lead_sources")
        return cls(
            default_currency=section.get("default_currency", base.default_currency),
            stages=stages,
            won_stage=section.get("won_stage", base.won_stage),
            lost_stage=section.get("lost_stage", base.lost_stage),
            lost_reasons=tuple(section.get("lost_reasons", base.lost_reasons)),
            domains=tuple(section.get("domains", base.domains)),
            lead_sources=tuple(sources) if sources else None,
            source_points=scoring.get("sources", base.source_points),
            field_rules=tuple(ScoreRule(r["field"], r["points"], r.get("value"))
                              for r in scoring["fields"]) if "fields" in scoring
            else base.field_rules,
            activity_points=scoring.get("activity_points", base.activity_points),
            activity_days=scoring.get("activity_days", base.activity_days),
            activity_max=scoring.get("activity_max", base.activity_max),
        )

    @classmethod
    def of(cls, crm: Crm) -> Settings:
        """The settings of the running deployment."""
        return cls.from_config(crm.plugin_config("sales"))

    def stage(self, name: str) -> StageInfo:
        """Probability and category of a state; unknown open states count as pipeline, 0%."""
        if name in self.stages:
            return self.stages[name]
        if name == self.won_stage:
            return StageInfo(100, "closed")
        return StageInfo(0, "closed" if name == self.lost_stage else "pipeline")
