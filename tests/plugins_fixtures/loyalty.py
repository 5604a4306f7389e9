"""A loyalty-programme plugin: a custom field, its own config table, a default and an export."""

from __future__ import annotations

from typing import Any

from crmkit import PluginInfo, hookimpl

PLUGIN_INFO = PluginInfo(
    name="loyalty", version="1.2.0", kernel=">=0.1,<1", description="Loyalty tiers"
)

TIERS = ["bronze", "silver", "gold"]


@hookimpl
def register_customer_fields(register):
    register("loyalty_tier", {"enum": TIERS})
    register("loyalty_points", {"type": "integer", "minimum": 0})


@hookimpl
def register_config_schema(register):
    register({
        "type": "object",
        "additionalProperties": False,
        "properties": {"default_tier": {"enum": TIERS}},
    })


@hookimpl
def before_customer_save(tx, values, customer):
    # Every new customer starts in the configured tier.
    if customer is None:
        default = tx.crm.plugin_config("loyalty").get("default_tier", "bronze")
        values["attributes"].setdefault("loyalty_tier", default)


@hookimpl
def export_customer_data(customer) -> dict[str, Any] | None:
    attributes = customer.attributes or {}
    if "loyalty_tier" not in attributes:
        return None
    return {"tier": attributes["loyalty_tier"], "points": attributes.get("loyalty_points", 0)}
