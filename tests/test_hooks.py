"""The hook contract: what plugins may rely on (docs/hooks.md), on every database backend.

Plugins are registered explicitly through ``crm_factory(plugins={"name": obj})``; nothing
here uses entry-point discovery (tests/test_plugins.py does).
"""

from __future__ import annotations

import inspect
import time
from pathlib import Path

import pytest
from plugins_fixtures import loyalty
from sqlalchemy import func, select

import crmkit
from crmkit import PluginError, Rejected, ValidationError, hookimpl, hookspecs
from crmkit.errors import ConfigError, CrmkitError
from crmkit.models import AuditEntry, Customer, CustomerTag, Interaction, OutboxEvent
from crmkit.plugins import PluginHost

DOCS = Path(__file__).resolve().parent.parent / "docs" / "hooks.md"

IN_TRANSACTION_HOOKS = [
    "before_customer_save", "customer_created", "customer_updated", "interaction_logged",
]


def row_counts(crm) -> dict[str, int]:
    """Rows per kernel table, read through a fresh session (what another process sees)."""
    with crm.session() as session:
        return {
            model.__tablename__: session.scalar(select(func.count()).select_from(model))
            for model in (Customer, CustomerTag, Interaction, AuditEntry, OutboxEvent)
        }


def stored_customer(crm, customer_id: int) -> dict | None:
    with crm.session() as session:
        customer = session.get(Customer, customer_id)
        return None if customer is None else customer.to_dict()


def outbox(crm) -> list[OutboxEvent]:
    with crm.session() as session:
        return list(session.scalars(select(OutboxEvent).order_by(OutboxEvent.id)))


class Saboteur:
    """Writes through ``tx`` in every in-transaction hook, then raises in ``target`` once armed."""

    def __init__(self, target: str, error: Exception) -> None:
        self.target = target
        self.error = error
        self.armed = False

    def _maybe_fail(self, tx, hook: str, customer=None) -> None:
        if not self.armed or hook != self.target:
            return
        # The plugin's own writes, flushed so they really reach the database first.
        tx.emit("saboteur.noted", {"hook": hook})
        tx.audit("saboteur", 0, "note", {"after": {"hook": hook}})
        if customer is not None and customer.id is not None:
            tx.interactions.log(customer, channel="system", kind="note", summary="seen")
        tx.session.flush()
        raise self.error

    @hookimpl
    def before_customer_save(self, tx, values, customer):
        # Fail on the update at the end of the transaction, after the kernel has written.
        if customer is not None:
            self._maybe_fail(tx, "before_customer_save", customer)

    @hookimpl
    def customer_created(self, tx, customer):
        self._maybe_fail(tx, "customer_created", customer)

    @hookimpl
    def customer_updated(self, tx, customer, changes):
        self._maybe_fail(tx, "customer_updated", customer)

    @hookimpl
    def interaction_logged(self, tx, interaction):
        if interaction.summary != "seen":
            self._maybe_fail(tx, "interaction_logged")


class Recorder:
    """Records every hook call as ``(hook, details)``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    @hookimpl
    def before_customer_save(self, values, customer):
        self.calls.append(("before_customer_save", None if customer is None else customer.id))

    @hookimpl
    def customer_created(self, customer):
        self.calls.append(("customer_created", customer.name))

    @hookimpl
    def customer_updated(self, customer, changes):
        self.calls.append(("customer_updated", dict(changes)))

    @hookimpl
    def interaction_logged(self, interaction):
        self.calls.append(("interaction_logged", interaction.summary))

    @hookimpl
    def handle_event(self, event):
        self.calls.append(("handle_event", event.name))

    def hooks(self) -> list[str]:
        return [hook for hook, _ in self.calls]


def _busy_transaction(crm, existing_id: int) -> None:
    """Create, log and update in one transaction; the armed saboteur fails somewhere in it."""
    with crm.transaction(actor="alice") as tx:
        acme = tx.customers.create(kind="organization", name="Acme GmbH", tags=["key-account"])
        tx.interactions.log(acme, channel="phone", kind="complaint", summary="Unit stopped")
        tx.customers.update(existing_id, name="Existing Ltd", tags=["renamed"])


# -- rollback and attribution ------------------------------------------------------------


@pytest.mark.parametrize("hook", IN_TRANSACTION_HOOKS)
def test_a_plugin_exception_rolls_back_the_whole_transaction_as_plugin_error(crm_factory, hook):
    saboteur, bystander = Saboteur(hook, RuntimeError("disk quota exceeded")), Recorder()
    crm = crm_factory(plugins={"saboteur": saboteur, "bystander": bystander})
    with crm.transaction() as tx:
        existing = tx.customers.create(kind="person", name="Existing")
    before = row_counts(crm)
    saboteur.armed = True
    bystander.calls.clear()

    with pytest.raises(PluginError) as caught:
        _busy_transaction(crm, existing.id)

    error = caught.value
    assert (error.plugin, error.hook) == ("saboteur", hook)
    assert str(error) == (
        f"plugin 'saboteur' failed in hook '{hook}': RuntimeError: disk quota exceeded"
    )
    assert isinstance(error.__cause__, RuntimeError)
    # Kernel rows, the plugin's own rows, audit entries and outbox events: all gone.
    assert row_counts(crm) == before
    assert stored_customer(crm, existing.id)["name"] == "Existing"
    assert "handle_event" not in bystander.hooks(), "a rolled-back event was delivered"

    # The deployment is not poisoned: the next transaction commits.
    saboteur.armed = False
    _busy_transaction(crm, existing.id)
    assert row_counts(crm)["customer"] == before["customer"] + 1


@pytest.mark.parametrize("hook", IN_TRANSACTION_HOOKS)
def test_a_crmkit_error_from_a_plugin_keeps_its_type_and_is_attributed(crm_factory, hook):
    saboteur = Saboteur(hook, Rejected("the credit check failed"))
    crm = crm_factory(plugins={"credit": saboteur, "bystander": Recorder()})
    with crm.transaction() as tx:
        existing = tx.customers.create(kind="person", name="Existing")
    before = row_counts(crm)
    saboteur.armed = True

    with pytest.raises(Rejected) as caught:
        _busy_transaction(crm, existing.id)

    assert type(caught.value) is Rejected
    assert (caught.value.plugin, caught.value.hook) == ("credit", hook)
    assert caught.value.reason == "the credit check failed"
    assert str(caught.value) == (
        f"the credit check failed (raised by plugin 'credit' in hook '{hook}')"
    )
    assert row_counts(crm) == before


@pytest.mark.parametrize("culprit", ["alpha", "beta"])
@pytest.mark.parametrize("same_class", [True, False], ids=["same-class", "different-classes"])
def test_the_error_names_the_plugin_that_raised_not_another(crm_factory, culprit, same_class):
    class Other(Saboteur):
        @hookimpl
        def customer_created(self, tx, customer):
            self._maybe_fail(tx, "customer_created", customer)

    alpha = Saboteur("customer_created", RuntimeError("alpha broke"))
    beta = (Saboteur if same_class else Other)("customer_created", RuntimeError("beta broke"))
    {"alpha": alpha, "beta": beta}[culprit].armed = True
    crm = crm_factory(plugins={"alpha": alpha, "beta": beta})

    with pytest.raises(PluginError) as caught, crm.transaction() as tx:
        tx.customers.create(kind="person", name="Ada")

    assert caught.value.plugin == culprit
    assert caught.value.hook == "customer_created"
    assert f"{culprit} broke" in str(caught.value)
    assert row_counts(crm)["customer"] == 0


def test_a_failure_in_a_hook_called_from_another_plugins_hook_names_the_inner_plugin(
    crm_factory,
):
    class Welcomer:
        @hookimpl
        def customer_created(self, tx, customer):
            tx.interactions.log(customer, channel="email", kind="note", summary="Welcome mail")

    class Fragile:
        @hookimpl
        def interaction_logged(self, interaction):
            raise KeyError("template")

    crm = crm_factory(plugins={"welcomer": Welcomer(), "fragile": Fragile()})
    with pytest.raises(PluginError) as caught, crm.transaction() as tx:
        tx.customers.create(kind="person", name="Ada")
    assert (caught.value.plugin, caught.value.hook) == ("fragile", "interaction_logged")
    assert row_counts(crm)["interaction"] == 0


def test_plugin_writes_commit_with_the_kernels(crm_factory):
    class Annotator:
        @hookimpl
        def customer_created(self, tx, customer):
            tx.audit("annotator", customer.id, "note", {"after": {"checked": True}})
            tx.emit("annotator.checked", {"customer_id": customer.id})

    crm = crm_factory(plugins={"annotator": Annotator()})
    with crm.transaction(actor="bob") as tx:
        ada = tx.customers.create(kind="person", name="Ada")
    with crm.session() as session:
        entries = session.scalars(select(AuditEntry).where(AuditEntry.entity == "annotator"))
        assert [(e.actor, e.entity_id, e.changes) for e in entries] == [
            ("bob", str(ada.id), {"after": {"checked": True}})
        ]
    assert [e.name for e in outbox(crm)] == ["customer.created", "annotator.checked"]


# -- ordering ------------------------------------------------------------------------------


class Ordered:
    def __init__(self, name: str, log: list[str]) -> None:
        self.name, self.log = name, log

    @hookimpl
    def customer_created(self):
        self.log.append(self.name)


def test_independent_plugins_register_alphabetically_and_the_last_registered_runs_first(
    crm_factory,
):
    log: list[str] = []
    plugins = {name: Ordered(name, log) for name in ("zeta", "alpha", "mid")}
    crm = crm_factory(plugins=plugins)

    # Registration order does not depend on the order given (or on plugins.enabled):
    # the kernel first, then plugins by name. pluggy calls the last registered first.
    assert crm.host.names() == ["crmkit", "alpha", "mid", "zeta"]
    with crm.transaction() as tx:
        tx.customers.create(kind="person", name="Ada")
    assert log == ["zeta", "mid", "alpha"]
    assert [p for p, _, _ in crm.host.implementations("customer_created")] == log


def test_tryfirst_and_trylast_are_honoured(crm_factory):
    log: list[str] = []

    class First(Ordered):
        @hookimpl(tryfirst=True)
        def customer_created(self):
            self.log.append(self.name)

    class Last(Ordered):
        @hookimpl(trylast=True)
        def customer_created(self):
            self.log.append(self.name)

    crm = crm_factory(plugins={
        "alpha": First("alpha", log), "mid": Ordered("mid", log), "zeta": Last("zeta", log),
    })
    with crm.transaction() as tx:
        tx.customers.create(kind="person", name="Ada")
    assert log == ["alpha", "mid", "zeta"]


def test_a_plugin_runs_before_the_plugins_it_requires(crm_factory):
    log: list[str] = []

    class Dependent(Ordered):
        PLUGIN_INFO = crmkit.PluginInfo(name="aaa_campaigns", requires=("zzz_sales",))

    crm = crm_factory(plugins={
        "aaa_campaigns": Dependent("aaa_campaigns", log), "zzz_sales": Ordered("zzz_sales", log),
    })
    assert crm.host.names() == ["crmkit", "zzz_sales", "aaa_campaigns"]
    with crm.transaction() as tx:
        tx.customers.create(kind="person", name="Ada")
    assert log == ["aaa_campaigns", "zzz_sales"]


# -- before_customer_save ----------------------------------------------------------------------


class Normaliser:
    """Title-cases names, upper-cases countries, tags VIPs; records what it was given."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, object]] = []

    @hookimpl
    def before_customer_save(self, tx, values, customer):
        self.seen.append((values["name"], None if customer is None else customer.name))
        values["name"] = values["name"].title()
        for address in values["addresses"]:
            address["country"] = address["country"].upper()
        if values["attributes"].get("vip") and "vip" not in values["tags"]:
            values["tags"].append("vip")


def test_before_customer_save_mutations_are_kept(crm_factory):
    normaliser = Normaliser()
    crm = crm_factory(plugins={"normaliser": normaliser},
                      config={"customer_fields": {"vip": {"type": "boolean"}}})
    with crm.transaction() as tx:
        ada = tx.customers.create(kind="person", name="ada lovelace",
                                  addresses=[{"country": "gb", "city": "London"}],
                                  attributes={"vip": True})
    stored = stored_customer(crm, ada.id)
    assert stored["name"] == "Ada Lovelace"
    assert stored["addresses"] == [{"country": "GB", "city": "London"}]
    assert stored["tags"] == ["vip"]

    with crm.transaction() as tx:
        tx.customers.update(ada.id, name="ada king")
    assert stored_customer(crm, ada.id)["name"] == "Ada King"
    # On create the hook gets customer=None; on update the stored customer, unchanged yet.
    assert normaliser.seen == [("ada lovelace", None), ("ada king", "Ada Lovelace")]
    with crm.transaction() as tx:
        entry = tx.audit_log.list(entity="customer", entity_id=ada.id, limit=1)[0]
        assert entry.changes == {"before": {"name": "Ada Lovelace"}, "after": {"name": "Ada King"}}


def test_before_customer_save_mutations_are_validated_after_the_hook(crm_factory):
    class Sloppy:
        @hookimpl
        def before_customer_save(self, values):
            values["phone"] = "call me maybe"

    crm = crm_factory(plugins={"sloppy": Sloppy()})
    with pytest.raises(ValidationError) as caught, crm.transaction() as tx:
        tx.customers.create(kind="person", name="Ada", phone="+44 20 7946 0000")
    assert [issue.path for issue in caught.value.issues] == ["phone"]
    assert "'call me maybe' does not match the required pattern" in str(caught.value)
    assert row_counts(crm)["customer"] == 0


def test_before_customer_save_can_veto(crm_factory):
    class Blocklist:
        @hookimpl
        def before_customer_save(self, values, customer):
            if values["email"] and values["email"].endswith("@spam.example"):
                raise Rejected(f"{values['email']} is on the blocklist")

    crm = crm_factory(plugins={"blocklist": Blocklist()})
    with crm.transaction() as tx:
        ada = tx.customers.create(kind="person", name="Ada", email="ada@example.org")
    before = row_counts(crm)

    with pytest.raises(Rejected, match="eve@spam.example is on the blocklist") as caught, \
            crm.transaction() as tx:
        tx.customers.create(kind="person", name="Eve", email="  EVE@spam.example ")
    assert (caught.value.plugin, caught.value.hook) == ("blocklist", "before_customer_save")

    with pytest.raises(Rejected), crm.transaction() as tx:
        tx.customers.update(ada.id, email="ada@spam.example")
    assert row_counts(crm) == before
    assert stored_customer(crm, ada.id)["email"] == "ada@example.org"


# -- customer_updated ------------------------------------------------------------------------


def test_customer_updated_gets_only_the_fields_that_changed(crm_factory):
    recorder = Recorder()
    crm = crm_factory(plugins={"recorder": recorder})
    with crm.transaction() as tx:
        ada = tx.customers.create(kind="person", name="Ada", email="ada@example.org",
                                  tags=["a"])
    recorder.calls.clear()

    with crm.transaction() as tx:
        # The e-mail normalises to the stored value: not a change.
        tx.customers.update(ada.id, name="Ada Lovelace", email=" ADA@example.org",
                            tags=["a", "b"], status="active")

    changes = [details for hook, details in recorder.calls if hook == "customer_updated"]
    assert changes == [{"name": ("Ada", "Ada Lovelace"), "tags": (["a"], ["a", "b"])}]


def test_a_no_op_update_calls_no_hook_and_writes_nothing(crm_factory):
    recorder = Recorder()
    crm = crm_factory(plugins={"recorder": recorder})
    with crm.transaction() as tx:
        ada = tx.customers.create(kind="person", name="Ada", email="ada@example.org")
    before, version = row_counts(crm), stored_customer(crm, ada.id)["version"]
    recorder.calls.clear()

    with crm.transaction() as tx:
        tx.customers.update(ada.id, name=" Ada ", email="ADA@example.org")

    assert "customer_updated" not in recorder.hooks()
    assert "handle_event" not in recorder.hooks()
    assert row_counts(crm) == before  # no audit entry, no outbox event
    assert stored_customer(crm, ada.id)["version"] == version


# -- handle_event: after commit, at least once ------------------------------------------------


def test_handle_event_runs_after_commit_and_sees_the_committed_rows(crm_factory):
    seen: list[tuple[str, str, bool]] = []

    class Mailer:
        @hookimpl
        def handle_event(self, crm, event):
            if event.name != "customer.created":
                return
            # Another session, so only committed rows are visible.
            with crm.session() as session:
                row = session.get(Customer, event.payload["customer_id"])
                seen.append((event.name, event.actor, row is not None and row.name == "Ada"))
            # Handlers write in a transaction of their own.
            with crm.transaction(actor="mailer") as tx:
                tx.interactions.log(event.payload["customer_id"], channel="email",
                                    direction="outbound", kind="marketing",
                                    summary="Welcome mail sent")

    crm = crm_factory(plugins={"mailer": Mailer()})
    with crm.transaction(actor="alice") as tx:
        ada = tx.customers.create(kind="person", name="Ada")
        assert seen == [], "handle_event ran inside the transaction"
    assert seen == [("customer.created", "alice", True)]
    with crm.transaction() as tx:
        assert [i.summary for i in tx.interactions.timeline(ada.id)] == ["Welcome mail sent"]
    assert {(e.name, e.status) for e in outbox(crm)} == {
        ("customer.created", "delivered"), ("interaction.logged", "delivered"),
    }


def test_a_failing_handler_is_retried_and_the_others_are_not_called_again(crm_factory):
    calls: list[tuple[str, int]] = []

    class Steady:
        @hookimpl
        def handle_event(self, event):
            calls.append(("steady", event.attempt))

    class Flaky:
        @hookimpl
        def handle_event(self, event):
            calls.append(("flaky", event.attempt))
            if event.attempt == 1:
                raise ConnectionError("SAP is down")

    crm = crm_factory(
        plugins={"steady": Steady(), "flaky": Flaky()},
        config={"events": {"backoff_seconds": 0.001, "max_backoff_seconds": 0.001}},
    )
    with crm.transaction() as tx:  # the handler's failure does not undo the commit
        ada = tx.customers.create(kind="person", name="Ada")
    assert stored_customer(crm, ada.id) is not None
    assert sorted(calls) == [("flaky", 1), ("steady", 1)]
    [event] = outbox(crm)
    assert (event.status, event.attempts, event.delivered_to) == ("pending", 1, ["steady"])
    assert "plugin 'flaky' failed in hook 'handle_event'" in event.last_error
    assert "SAP is down" in event.last_error

    time.sleep(0.05)
    result = crm.dispatcher.run_once()
    assert result.delivered == 1
    assert sorted(calls) == [("flaky", 1), ("flaky", 2), ("steady", 1)]
    [event] = outbox(crm)
    assert event.status == "delivered"
    assert sorted(event.delivered_to) == ["flaky", "steady"]
    assert event.last_error is None


def test_a_handler_that_keeps_failing_leaves_the_event_dead(crm_factory):
    class Broken:
        @hookimpl
        def handle_event(self, event):
            raise ValueError(f"cannot map {event.name}")

    crm = crm_factory(
        plugins={"broken": Broken()},
        config={"events": {"max_attempts": 2, "backoff_seconds": 0.001,
                           "max_backoff_seconds": 0.001}},
    )
    with crm.transaction() as tx:
        tx.customers.create(kind="person", name="Ada")
    time.sleep(0.05)
    assert crm.dispatcher.run_once().dead == 1
    [event] = outbox(crm)
    assert (event.status, event.attempts, event.delivered_to) == ("dead", 2, [])
    assert "cannot map customer.created" in event.last_error


# -- register_* contributions -----------------------------------------------------------------


class Warranty:
    PLUGIN_INFO = crmkit.PluginInfo(name="warranty", kernel=">=0.1")

    @hookimpl
    def register_interaction_kinds(self, register):
        register("warranty_claim", schema={
            "type": "object",
            "required": ["serial_number"],
            "additionalProperties": False,
            "properties": {"serial_number": {"type": "string", "pattern": "^SN-[0-9]+$"}},
        }, description="A claim under warranty")

    @hookimpl
    def register_channels(self, register):
        register("whatsapp", description="A WhatsApp message")

    @hookimpl
    def register_customer_fields(self, register):
        register("warranty_until", {"type": "string", "format": "date"})


def test_registered_customer_fields_validate_attributes(crm_factory):
    crm = crm_factory(plugins={"loyalty": loyalty, "warranty": Warranty()},
                      config={"customer_fields": {"vat_id": {"type": "string", "maxLength": 20}}})
    assert crm.schemas.field_owners["loyalty_tier"] == "loyalty"
    assert crm.schemas.field_owners["warranty_until"] == "warranty"
    with crm.transaction() as tx:
        ada = tx.customers.create(kind="person", name="Ada", attributes={
            "loyalty_tier": "gold", "warranty_until": "2027-01-31", "vat_id": "GB123",
        })
    assert stored_customer(crm, ada.id)["attributes"] == {
        "loyalty_tier": "gold", "warranty_until": "2027-01-31", "vat_id": "GB123",
    }

    with pytest.raises(ValidationError) as caught, crm.transaction() as tx:
        tx.customers.update(ada.id, attributes={"loyalty_tier": "platinum", "shoe_size": 42})
    paths = [issue.path for issue in caught.value.issues]
    assert paths == ["attributes", "attributes.loyalty_tier"]
    assert "unknown field 'shoe_size'" in str(caught.value)
    assert "must be one of 'bronze', 'silver', 'gold', got 'platinum'" in str(caught.value)


def test_a_customer_field_registered_twice_is_refused_naming_both_owners(crm_factory):
    class Copycat:
        @hookimpl
        def register_customer_fields(self, register):
            register("loyalty_tier", {"type": "string"})

    with pytest.raises(CrmkitError) as caught:
        crm_factory(plugins={"loyalty": loyalty, "copycat": Copycat()})
    assert "loyalty_tier" in str(caught.value)
    assert "copycat" in str(caught.value) and "loyalty" in str(caught.value)


def test_a_config_field_that_clashes_with_a_plugin_field_names_the_config_key(crm_factory):
    with pytest.raises(ConfigError) as caught:
        crm_factory(plugins={"loyalty": loyalty},
                    config={"customer_fields": {"loyalty_tier": {"type": "string"}}})
    assert caught.value.key == "customer_fields.loyalty_tier"
    assert "already registered by loyalty" in str(caught.value)


def test_registered_interaction_kinds_and_channels(crm_factory):
    crm = crm_factory(plugins={"warranty": Warranty()})
    assert crm.schemas.kind_owners["warranty_claim"] == "warranty"
    assert crm.schemas.channels["whatsapp"] == "warranty"
    with crm.transaction() as tx:
        ada = tx.customers.create(kind="person", name="Ada")
        claim = tx.interactions.log(ada, channel="whatsapp", kind="warranty_claim",
                                    summary="Kettle leaks", payload={"serial_number": "SN-42"})
    assert claim.payload == {"serial_number": "SN-42"}

    with pytest.raises(ValidationError) as caught, crm.transaction() as tx:
        tx.interactions.log(ada.id, channel="whatsapp", kind="warranty_claim",
                            summary="Kettle leaks", payload={"serial": "42"})
    assert [issue.path for issue in caught.value.issues] == ["payload", "payload"]
    assert "missing required field 'serial_number'" in str(caught.value)
    assert "unknown field 'serial'" in str(caught.value)

    with pytest.raises(ValidationError, match="unknown channel 'pigeon'"), \
            crm.transaction() as tx:
        tx.interactions.log(ada.id, channel="pigeon", kind="note", summary="Coo")

    plain = crm_factory()
    with pytest.raises(ValidationError, match="unknown interaction kind 'warranty_claim'"), \
            plain.transaction() as tx:
        tx.interactions.log(ada.id, channel="phone", kind="warranty_claim", summary="Leak")


def test_plugin_config_is_validated_against_the_registered_schema(crm_factory):
    crm = crm_factory(plugins={"loyalty": loyalty},
                      config={"plugin": {"loyalty": {"default_tier": "silver"}}})
    assert crm.plugin_config("loyalty") == {"default_tier": "silver"}
    with crm.transaction() as tx:
        ada = tx.customers.create(kind="person", name="Ada")
    assert stored_customer(crm, ada.id)["attributes"] == {"loyalty_tier": "silver"}

    with pytest.raises(ConfigError) as caught:
        crm_factory(plugins={"loyalty": loyalty},
                    config={"plugin": {"loyalty": {"default_tier": "diamond"}}})
    assert caught.value.key == "plugin.loyalty.default_tier"
    assert "plugin.loyalty.default_tier: must be one of 'bronze', 'silver', 'gold'" in str(
        caught.value
    )

    with pytest.raises(ConfigError) as caught:
        crm_factory(plugins={"loyalty": loyalty}, config={"plugin": {"ghost": {"x": 1}}})
    assert caught.value.key == "plugin.ghost"
    assert "configures plugin 'ghost', which is not enabled" in str(caught.value)


def test_invalid_plugin_config_in_a_file_names_the_file_and_key(tmp_path):
    config = tmp_path / "crmkit.toml"
    config.write_text('[plugin.loyalty]\ndefault_tier = "diamond"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        crmkit.Crm.from_config(config, env={}, plugins={"loyalty": loyalty},
                               discover_plugins=False)
    assert caught.value.file == str(config.resolve())
    assert str(caught.value).startswith(f"{config.resolve()}: plugin.loyalty.default_tier: ")


# -- data-subject rights ------------------------------------------------------------------------


def test_export_customer_data_collects_each_plugins_answer(crm_factory):
    class Quiet:
        @hookimpl
        def export_customer_data(self, customer):
            return None

    crm = crm_factory(plugins={"loyalty": loyalty, "quiet": Quiet()})
    with crm.transaction() as tx:
        ada = tx.customers.create(kind="person", name="Ada", attributes={"loyalty_points": 7})
        tx.interactions.log(ada, channel="phone", kind="support", summary="Reset password")
        exported = tx.customers.export_data(ada.id)
    assert sorted(exported) == ["crmkit", "loyalty"]  # None means "nothing stored"
    assert exported["loyalty"] == {"tier": "bronze", "points": 7}
    assert exported["crmkit"]["customer"]["id"] == ada.id
    assert [i["summary"] for i in exported["crmkit"]["interactions"]] == ["Reset password"]


def test_a_failing_export_names_the_plugin(crm_factory):
    class Leaky:
        @hookimpl
        def export_customer_data(self, tx, customer):
            raise LookupError("table leaky_notes is missing")

    crm = crm_factory(plugins={"leaky": Leaky()})
    with pytest.raises(PluginError) as caught, crm.transaction() as tx:
        tx.customers.export_data(tx.customers.create(kind="person", name="Ada"))
    assert (caught.value.plugin, caught.value.hook) == ("leaky", "export_customer_data")
    assert "LookupError: table leaky_notes is missing" in str(caught.value)


def test_erase_customer_data_is_called_for_every_plugin_in_the_transaction(crm_factory):
    erased: list[tuple[str, int]] = []

    class Eraser:
        def __init__(self, name: str) -> None:
            self.name = name

        @hookimpl
        def erase_customer_data(self, tx, customer):
            erased.append((self.name, customer.id))
            tx.audit(self.name, customer.id, "erase", {})

    crm = crm_factory(plugins={"surveys": Eraser("surveys"), "sales": Eraser("sales")})
    with crm.transaction() as tx:
        ada = tx.customers.create(kind="person", name="Ada")
        crm.host.erase_customer_data(tx=tx, customer=ada)
    assert erased == [("surveys", ada.id), ("sales", ada.id)]
    with crm.session() as session:
        assert set(session.scalars(select(AuditEntry.entity).where(AuditEntry.action == "erase"))) \
            == {"surveys", "sales"}


# -- the contract itself: pinned signatures and documented hooks ------------------------------

#: Every hook and its arguments, in order. Arguments are only ever added at the end: if this
#: test fails, you broke every plugin that uses the hook. Add new hooks here (and to docs).
PINNED_SIGNATURES: dict[str, list[str]] = {
    "register_customer_fields": ["register"],
    "register_interaction_kinds": ["register"],
    "register_channels": ["register"],
    "register_config_schema": ["register"],
    "register_commands": ["register"],
    "register_migrations": ["register"],
    "register_workflows": ["register"],
    "register_actions": ["register"],
    "register_criteria_fields": ["register"],
    "before_customer_save": ["tx", "values", "customer"],
    "customer_created": ["tx", "customer"],
    "customer_updated": ["tx", "customer", "changes"],
    "interaction_logged": ["tx", "interaction"],
    "before_transition": ["tx", "instance", "transition", "data"],
    "workflow_transitioned": ["tx", "instance", "step"],
    "handle_event": ["crm", "event"],
    "run_periodic": ["crm", "now"],
    "export_customer_data": ["tx", "customer"],
    "erase_customer_data": ["tx", "customer"],
}


def defined_hooks() -> dict[str, object]:
    marker = f"{hookspecs.PROJECT_NAME}_spec"
    return {name: obj for name, obj in vars(hookspecs).items() if hasattr(obj, marker)}


@pytest.mark.parametrize("name", sorted(set(defined_hooks()) | set(PINNED_SIGNATURES)))
def test_hook_signature_is_pinned(name):
    hooks = defined_hooks()
    assert name in hooks, f"hook {name!r} was removed or renamed: that breaks every plugin"
    assert name in PINNED_SIGNATURES, f"new hook {name!r}: pin its signature in this table"
    spec = hooks[name]
    params = inspect.signature(spec).parameters
    assert list(params) == PINNED_SIGNATURES[name]
    assert all(p.kind is p.POSITIONAL_OR_KEYWORD and p.default is p.empty
               for p in params.values())
    options = getattr(spec, f"{hookspecs.PROJECT_NAME}_spec")
    assert not options.get("firstresult") and not options.get("historic")
    assert spec.__doc__ and all(f":param {arg}:" in spec.__doc__ for arg in params), (
        f"hook {name!r} needs a :param: line for every argument"
    )


@pytest.mark.parametrize("name", [*IN_TRANSACTION_HOOKS, "before_transition",
                                  "workflow_transitioned"])
def test_the_typed_facade_matches_the_hookspec(name):
    facade = inspect.signature(getattr(PluginHost, name)).parameters
    assert [p for p in facade if p != "self"] == PINNED_SIGNATURES[name]
    assert all(facade[p].kind is inspect.Parameter.KEYWORD_ONLY for p in facade if p != "self")


def documented_hooks() -> dict[str, str]:
    """Each ``## <name>`` section of docs/hooks.md with its text (code blocks included).

    ``##`` headings are reserved for hooks: any other ``##`` heading shows up here as a
    "hook" that does not exist. Family and chapter headings use ``#``, subsections ``###``.
    """
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    fenced = False
    for line in DOCS.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("# "):
            current = None
            continue
        elif not fenced and line.startswith("## "):
            current = sections.setdefault(line[3:].strip().strip("`"), [])
            continue
        if current is not None:
            current.append(line)
    return {name: "\n".join(lines) for name, lines in sections.items()}


@pytest.mark.parametrize("name", sorted(defined_hooks()))
def test_every_hook_is_documented(name):
    docs = documented_hooks()
    assert name in docs, f"docs/hooks.md has no '## {name}' section"
    signature = f"{name}({', '.join(PINNED_SIGNATURES.get(name, []))})"
    assert f"Signature: `{signature}`" in docs[name], (
        f"the '## {name}' section does not show 'Signature: `{signature}`'"
    )
    assert "```python" in docs[name], f"the '## {name}' section has no example"


def test_the_docs_document_no_hook_that_does_not_exist():
    extra = sorted(set(documented_hooks()) - set(defined_hooks()))
    assert extra == [], f"docs/hooks.md documents hooks crmkit does not define: {extra}"
