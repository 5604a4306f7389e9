"""An analytics plugin that publishes a hookspec: it asks other plugins for churn factors."""

from __future__ import annotations

from typing import Any

from crmkit import PluginInfo, hookimpl
from crmkit.hookspecs import hookspec


class ChurnSpecs:
    """The hooks analytics publishes for other plugins to answer."""

    @hookspec
    def analytics_churn_factors(self, tx, customer) -> dict[str, float] | None:
        """Return ``{factor: weight}`` that make ``customer`` likely to leave.

        :param tx: the running transaction.
        :param customer: the customer being scored.
        """


PLUGIN_INFO = PluginInfo(name="analytics", hookspecs=ChurnSpecs, description="Churn scores")


@hookimpl
def export_customer_data(tx, customer) -> dict[str, Any]:
    factors: dict[str, float] = {}
    for answer in tx.crm.host.call("analytics_churn_factors", tx=tx, customer=customer):
        factors.update(answer)
    return {"churn_factors": dict(sorted(factors.items()))}
