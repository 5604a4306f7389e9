"""A surveys plugin that answers analytics' hookspec when analytics is installed."""

from __future__ import annotations

from crmkit import PluginInfo, hookimpl

PLUGIN_INFO = PluginInfo(name="surveys", description="Feedback surveys")


@hookimpl(optionalhook=True)
def analytics_churn_factors(customer) -> dict[str, float] | None:
    if customer.attributes.get("last_nps") is None:
        return None
    return {"low_nps": 0.8} if customer.attributes["last_nps"] < 7 else {"low_nps": 0.1}


@hookimpl
def register_customer_fields(register):
    register("last_nps", {"type": "integer", "minimum": 0, "maximum": 10})
