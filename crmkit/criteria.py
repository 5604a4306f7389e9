"""Criteria: one small JSON language for conditions over a customer and its interactions.

Used by workflow guards, automation rules and campaign segments::

    {"all": [
        {"field": "customer.kind", "op": "eq", "value": "organization"},
        {"field": "customer.countries", "op": "contains", "value": "LV"},
        {"field": "customer.created_at", "op": "within", "value": "P90D"},
        {"interactions": {"kind": "purchase", "within": "P365D"}, "op": "gte", "value": 3},
        {"not": {"field": "customer.tags", "op": "contains", "value": "blocked"}}
    ]}

A criteria document is validated against ``schemas/criteria.schema.json`` and then against
the field registry (only registered fields, only the operators their type allows, values of
the right type), within depth and size limits. The result compiles to a SQLAlchemy
expression over ``customer`` for queries, and evaluates in Python against one
:class:`CustomerRecord`; the two always agree.

How they are kept in agreement: every comparison is two-valued (a missing value makes a
comparison false, in SQL through an explicit ``IS NOT NULL``, so ``not`` never meets SQL's
NULL); ordering is only defined on numbers and times, never on strings (collations differ);
``contains`` on text is case-sensitive everywhere (SQLite's ``case_sensitive_like``); "now"
is one value passed to both.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs
from sqlalchemy import (
    ColumnElement,
    and_,
    cast,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement
from sqlalchemy.types import Boolean

from crmkit.db import utcnow
from crmkit.errors import Issue, ValidationError, short_repr
from crmkit.models import Customer, CustomerTag, Interaction
from crmkit.schemas import compile_schema, issues_of, load_kernel_schema

__all__ = [
    "Criteria",
    "CriteriaField",
    "CustomerRecord",
    "FieldRegistry",
    "MAX_DEPTH",
    "MAX_NODES",
    "kernel_fields",
    "parse_duration",
]

MAX_DEPTH = 12
MAX_NODES = 500
TYPES = ("string", "number", "integer", "boolean", "datetime", "string_list")
OPS_BY_TYPE: dict[str, frozenset[str]] = {
    "string": frozenset({"eq", "ne", "in", "contains", "exists"}),
    "number": frozenset({"eq", "ne", "lt", "lte", "gt", "gte", "in", "exists"}),
    "integer": frozenset({"eq", "ne", "lt", "lte", "gt", "gte", "in", "exists"}),
    "boolean": frozenset({"eq", "ne", "exists"}),
    "datetime": frozenset({"lt", "lte", "gt", "gte", "within", "older_than", "exists"}),
    "string_list": frozenset({"contains", "exists"}),
}
_DURATION = re.compile(r"^P(?:(\d+)W|(\d+)D|T(\d+)H|(\d+)DT(\d+)H)$")


def parse_duration(text: str) -> dt.timedelta:
    """An ISO 8601 duration in weeks, days and/or hours: ``P2W``, ``P90D``, ``PT48H``,
    ``P1DT12H``."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration like P90D, P2W, PT48H or P1DT12H")
    weeks, days, hours, days2, hours2 = (int(g) if g else 0 for g in match.groups())
    try:
        return dt.timedelta(weeks=weeks, days=days + days2, hours=hours + hours2)
    except OverflowError:
        raise ValueError(f"{text!r} is longer than {dt.timedelta.max.days:,} days") from None


@attrs.frozen
class CustomerRecord:
    """One customer as Python evaluation sees it: its fields and its interactions.

    ``interactions`` are dicts with ``kind``, ``channel``, ``direction`` and an aware
    ``occurred_at``; ``extra`` carries what plugin fields need (their getters read it).
    """

    customer: Mapping[str, Any]
    interactions: Sequence[Mapping[str, Any]] = ()
    extra: Mapping[str, Any] = attrs.field(factory=dict)

    @classmethod
    def of(cls, customer: Customer, interactions: Iterable[Interaction] = (),
           extra: Mapping[str, Any] | None = None) -> CustomerRecord:
        data = customer.to_dict()
        data["created_at"], data["updated_at"] = customer.created_at, customer.updated_at
        rows = [{"kind": i.kind, "channel": i.channel, "direction": i.direction,
                 "occurred_at": i.occurred_at} for i in interactions]
        return cls(data, rows, extra or {})


@attrs.frozen
class CriteriaField:
    """A field criteria may name.

    :param name: dotted, ``<owner>.<field>`` (``customer.status``, ``sales.open_value``).
    :param type: one of ``string``, ``number``, ``integer``, ``boolean``, ``datetime``,
        ``string_list``.
    :param sql: a SQL expression for the value, correlated to the ``customer`` table
        (for ``string_list``: ``None``; give ``sql_contains`` and ``sql_exists``).
    :param get: the value for one :class:`CustomerRecord` (a list for ``string_list``).
    :param sql_contains: for ``string_list``, value → boolean expression "the list holds it".
    :param sql_exists: for ``string_list``, a boolean expression "the list is not empty".
    :param sql_present: "the value is there", when ``sql() IS NOT NULL`` does not say it
        (a cast can turn a missing JSON value into false).
    """

    name: str
    type: str
    get: Callable[[CustomerRecord], Any]
    sql: Callable[[], ColumnElement[Any]] | None = None
    sql_contains: Callable[[Any], ColumnElement[bool]] | None = None
    sql_exists: Callable[[], ColumnElement[bool]] | None = None
    sql_present: Callable[[], ColumnElement[bool]] | None = None
    description: str = ""
    owner: str = "crmkit"

    def __attrs_post_init__(self) -> None:
        if self.type not in TYPES:
            raise ValueError(f"criteria field {self.name!r}: unknown type {self.type!r}")
        if self.type == "string_list" and (self.sql_contains is None or self.sql_exists is None):
            raise ValueError(f"criteria field {self.name!r}: a string_list needs sql_contains "
                             "and sql_exists")
        if self.type != "string_list" and self.sql is None:
            raise ValueError(f"criteria field {self.name!r}: needs sql")


class FieldRegistry:
    """The fields criteria may use: the kernel's, custom customer fields, plugins'."""

    def __init__(self, fields: Iterable[CriteriaField] = ()) -> None:
        self.fields: dict[str, CriteriaField] = {}
        for field in fields:
            self.add(field)

    def add(self, field: CriteriaField) -> None:
        if field.name in self.fields:
            raise ValidationError([Issue(field.name, "criteria field already registered by "
                                         f"{self.fields[field.name].owner}")])
        self.fields[field.name] = field

    def add_custom_fields(self, fragments: Mapping[str, Mapping[str, Any]]) -> None:
        """Expose custom customer fields with a scalar JSON type as ``attributes.<name>``."""
        for name, schema in fragments.items():
            kind = schema.get("type")
            if kind == "string" or "enum" in schema and all(isinstance(v, str)
                                                            for v in schema["enum"]):
                self.add(_attribute_field(name, "string"))
            elif kind in ("number", "integer", "boolean"):
                self.add(_attribute_field(name, kind))

    def compile(self, document: Any, *, context: str = "criteria") -> Criteria:
        """Validate ``document`` and return the compiled :class:`Criteria`."""
        issues = issues_of(_schema(), document, context)
        if issues:
            raise ValidationError(issues[:20])
        checker = _Checker(self, context)
        checker.check(document, context, 1)
        if checker.issues:
            raise ValidationError(checker.issues[:20])
        return Criteria(document, self)


_SCHEMA = None


def _schema() -> Any:
    global _SCHEMA
    if _SCHEMA is None:
        _SCHEMA = compile_schema(load_kernel_schema("criteria"), "criteria.schema.json")
    return _SCHEMA


class _Checker:
    """Resolves fields and checks operators, values, depth and size."""

    def __init__(self, registry: FieldRegistry, context: str) -> None:
        self.registry = registry
        self.issues: list[Issue] = []
        self.nodes = 0

    def fail(self, path: str, message: str, value: Any = None) -> None:
        self.issues.append(Issue(path, message, value))

    def check(self, node: Mapping[str, Any], path: str, depth: int) -> None:
        self.nodes += 1
        if depth > MAX_DEPTH:
            self.fail(path, f"nested deeper than {MAX_DEPTH} levels")
            return
        if self.nodes > MAX_NODES:
            if self.nodes == MAX_NODES + 1:
                self.fail(path, f"more than {MAX_NODES} conditions")
            return
        for key in ("all", "any"):
            if key in node:
                for i, child in enumerate(node[key]):
                    self.check(child, f"{path}.{key}[{i}]", depth + 1)
                return
        if "not" in node:
            self.check(node["not"], f"{path}.not", depth + 1)
            return
        if "interactions" in node:
            self._check_interactions(node, path)
            return
        self._check_compare(node, path)

    def _check_interactions(self, node: Mapping[str, Any], path: str) -> None:
        within = node["interactions"].get("within")
        if within is not None:
            try:
                parse_duration(within)
            except ValueError as exc:
                self.fail(f"{path}.interactions.within", str(exc), within)

    def _check_compare(self, node: Mapping[str, Any], path: str) -> None:
        name, op = node["field"], node["op"]
        field = self.registry.fields.get(name)
        if field is None:
            known = ", ".join(sorted(self.registry.fields))
            self.fail(f"{path}.field", f"unknown field {short_repr(name)}; known: {known}", name)
            return
        if op not in OPS_BY_TYPE[field.type]:
            allowed = ", ".join(sorted(OPS_BY_TYPE[field.type]))
            self.fail(f"{path}.op", f"{op!r} does not apply to {name} ({field.type}); "
                      f"use one of {allowed}", op)
            return
        if op == "exists":
            if "value" in node and not isinstance(node["value"], bool):
                self.fail(f"{path}.value", "exists takes true or false (or no value)")
            return
        if "value" not in node:
            self.fail(f"{path}.value", f"{op!r} needs a value")
            return
        value = node["value"]
        if op == "in":
            if not isinstance(value, list) or not value:
                self.fail(f"{path}.value", "'in' needs a non-empty list", value)
                return
            for i, item in enumerate(value):
                self._check_value(field.name, field.type, item, f"{path}.value[{i}]")
            return
        if isinstance(value, list):
            self.fail(f"{path}.value", f"{op!r} takes one value, not a list", value)
            return
        if op in ("within", "older_than"):
            try:
                if not isinstance(value, str):
                    raise ValueError(f"{short_repr(value)} is not a duration like P90D")
                parse_duration(value)
            except ValueError as exc:
                self.fail(f"{path}.value", str(exc), value)
            return
        element_type = "string" if field.type == "string_list" else field.type
        self._check_value(field.name, element_type, value, f"{path}.value")

    def _check_value(self, name: str, type_: str, value: Any, path: str) -> None:
        ok = {
            "string": isinstance(value, str),
            "boolean": isinstance(value, bool),
            "integer": isinstance(value, int) and not isinstance(value, bool),
            "number": isinstance(value, (int, float)) and not isinstance(value, bool),
            "datetime": isinstance(value, str) and _parse_time(value) is not None,
        }.get(type_, False)
        if not ok:
            wanted = "an ISO 8601 date-time with offset" if type_ == "datetime" else f"a {type_}"
            self.fail(path, f"{name} needs {wanted}, got {short_repr(value)}", value)


class _json_text_in_list(FunctionElement[bool]):
    """``value`` is an element of the JSON array of strings ``column``."""

    type = Boolean()
    inherit_cache = True
    name = "json_text_in_list"


@compiles(_json_text_in_list, "sqlite")
def _json_list_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    column, value = list(element.clauses)
    return (f"EXISTS (SELECT 1 FROM json_each({compiler.process(column, **kw)}) "
            f"WHERE json_each.value = {compiler.process(value, **kw)})")


@compiles(_json_text_in_list, "postgresql")
def _json_list_postgresql(element: Any, compiler: Any, **kw: Any) -> str:
    # The document is bound as one JSONB value: jsonb_build_array() is STABLE, and would be
    # rebuilt for every row scanned.
    column, value = list(element.clauses)
    document = cast(literal(json.dumps([value.value])), postgresql.JSONB)
    return f"({compiler.process(column, **kw)} @> {compiler.process(document, **kw)})"


@compiles(_json_text_in_list, "mysql")
@compiles(_json_text_in_list, "mariadb")
def _json_list_mysql(element: Any, compiler: Any, **kw: Any) -> str:
    column, value = list(element.clauses)
    return (f"JSON_CONTAINS({compiler.process(column, **kw)}, "
            f"JSON_QUOTE({compiler.process(value, **kw)}))")


class _json_objects_have(FunctionElement[bool]):
    """Some object in the JSON array ``column`` has ``key`` equal to the text ``value``."""

    type = Boolean()
    inherit_cache = True
    name = "json_objects_have"


def _key_literal(element: Any) -> str:
    key = element.clauses.clauses[1].value
    if not re.fullmatch(r"[a-z_]+", key):
        raise ValueError(f"bad JSON key {key!r}")
    return str(key)


@compiles(_json_objects_have, "sqlite")
def _objects_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    column, _, value = list(element.clauses)
    key = _key_literal(element)
    return (f"EXISTS (SELECT 1 FROM json_each({compiler.process(column, **kw)}) "
            f"WHERE json_extract(json_each.value, '$.{key}') = {compiler.process(value, **kw)})")


@compiles(_json_objects_have, "postgresql")
def _objects_postgresql(element: Any, compiler: Any, **kw: Any) -> str:
    column, _, value = list(element.clauses)
    key = _key_literal(element)
    document = cast(literal(json.dumps([{key: value.value}])), postgresql.JSONB)
    return f"({compiler.process(column, **kw)} @> {compiler.process(document, **kw)})"


@compiles(_json_objects_have, "mysql")
@compiles(_json_objects_have, "mariadb")
def _objects_mysql(element: Any, compiler: Any, **kw: Any) -> str:
    column, _, value = list(element.clauses)
    key = _key_literal(element)
    return (f"JSON_CONTAINS({compiler.process(column, **kw)}, "
            f"JSON_OBJECT('{key}', {compiler.process(value, **kw)}))")


class _json_nonempty(FunctionElement[bool]):
    type = Boolean()
    inherit_cache = True
    name = "json_nonempty"


@compiles(_json_nonempty, "sqlite")
def _nonempty_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    return f"(json_array_length({compiler.process(list(element.clauses)[0], **kw)}) > 0)"


@compiles(_json_nonempty, "postgresql")
def _nonempty_postgresql(element: Any, compiler: Any, **kw: Any) -> str:
    return f"(jsonb_array_length({compiler.process(list(element.clauses)[0], **kw)}) > 0)"


@compiles(_json_nonempty, "mysql")
@compiles(_json_nonempty, "mariadb")
def _nonempty_mysql(element: Any, compiler: Any, **kw: Any) -> str:
    return f"(JSON_LENGTH({compiler.process(list(element.clauses)[0], **kw)}) > 0)"


def _column_field(name: str, type_: str, column: Any, key: str, description: str
                  ) -> CriteriaField:
    return CriteriaField(name=name, type=type_, sql=lambda: column,
                         get=lambda r: r.customer.get(key), description=description)


def _attribute_field(name: str, type_: str) -> CriteriaField:
    def sql() -> ColumnElement[Any]:
        element: Any = Customer.attributes[name]
        cast_to = {"string": element.as_string, "integer": element.as_integer,
                   "boolean": element.as_boolean}.get(type_, element.as_float)
        value: ColumnElement[Any] = cast_to()
        return value

    def get(record: CustomerRecord) -> Any:
        value = (record.customer.get("attributes") or {}).get(name)
        expected: dict[str, type | tuple[type, ...]] = {
            "string": str, "integer": int, "boolean": bool, "number": (int, float)}
        if isinstance(value, bool) and type_ != "boolean":
            return None
        return value if isinstance(value, expected[type_]) else None

    return CriteriaField(
        name=f"attributes.{name}", type=type_, sql=sql, get=get,
        # Unquoted text is NULL exactly when the key is missing, on every backend; a cast
        # is not (MySQL's boolean cast turns a missing value into false).
        sql_present=lambda: Customer.attributes[name].as_string().is_not(None),
        description=f"custom field {name}",
    )


def kernel_fields() -> list[CriteriaField]:
    """The fields of the kernel's customer record."""
    c = Customer
    fields = [
        _column_field("customer.id", "integer", c.id, "id", "The customer's id"),
        _column_field("customer.kind", "string", c.kind, "kind", "person or organization"),
        _column_field("customer.name", "string", c.name, "name", "Display name"),
        _column_field("customer.status", "string", c.status, "status", "Lifecycle status"),
        _column_field("customer.email", "string", c.email, "email", "Primary e-mail"),
        _column_field("customer.phone", "string", c.phone, "phone", "Primary phone"),
        _column_field("customer.owner", "string", c.owner, "owner", "Responsible colleague"),
        _column_field("customer.created_at", "datetime", c.created_at, "created_at", "Created"),
        _column_field("customer.updated_at", "datetime", c.updated_at, "updated_at",
                      "Last changed"),
        CriteriaField(
            name="customer.tags", type="string_list",
            get=lambda r: list(r.customer.get("tags") or []),
            sql_contains=lambda v: exists(select(CustomerTag.customer_id).where(
                CustomerTag.customer_id == Customer.id, CustomerTag.tag == v)),
            sql_exists=lambda: exists(select(CustomerTag.customer_id).where(
                CustomerTag.customer_id == Customer.id)),
            description="Tags",
        ),
        CriteriaField(
            name="customer.roles", type="string_list",
            get=lambda r: list(r.customer.get("roles") or []),
            sql_contains=lambda v: _json_text_in_list(Customer.roles, literal(v)),
            sql_exists=lambda: _json_nonempty(Customer.roles),
            description="Relationship roles: customer, prospect, partner, supplier",
        ),
        CriteriaField(
            name="customer.countries", type="string_list",
            get=lambda r: [a.get("country") for a in r.customer.get("addresses") or []
                           if a.get("country")],
            sql_contains=lambda v: _json_objects_have(Customer.addresses, literal("country"),
                                                      literal(v)),
            sql_exists=lambda: _json_nonempty(Customer.addresses),
            description="Countries of the customer's addresses (ISO 3166 alpha-2)",
        ),
    ]
    return fields


def _parse_time(value: str) -> dt.datetime | None:
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


_PY_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: bool(a == b), "ne": lambda a, b: bool(a != b),
    "lt": lambda a, b: bool(a < b), "lte": lambda a, b: bool(a <= b),
    "gt": lambda a, b: bool(a > b), "gte": lambda a, b: bool(a >= b),
}


def _sql_op(op: str, left: Any, right: Any) -> ColumnElement[bool]:
    ops: dict[str, Callable[[Any, Any], ColumnElement[bool]]] = {
        "eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "lt": lambda a, b: a < b,
        "lte": lambda a, b: a <= b, "gt": lambda a, b: a > b, "gte": lambda a, b: a >= b,
    }
    return ops[op](left, right)


_COUNT_OPS: dict[str, Callable[[Any, int], Any]] = {
    "eq": lambda n, v: n == v, "ne": lambda n, v: n != v, "lt": lambda n, v: n < v,
    "lte": lambda n, v: n <= v, "gt": lambda n, v: n > v, "gte": lambda n, v: n >= v,
}


def _counts(node: Mapping[str, Any]) -> bool:
    """Whether ``node`` counts interactions anywhere inside."""
    if "interactions" in node:
        return True
    children = node.get("all") or node.get("any") or ([node["not"]] if "not" in node else [])
    return any(_counts(child) for child in children)


def _matching(spec: Mapping[str, Any], now: dt.datetime) -> list[ColumnElement[bool]]:
    """The conditions ``spec`` puts on one interaction."""
    i = Interaction.__table__.c
    conditions: list[ColumnElement[bool]] = []
    for key, column in (("kind", i.kind), ("channel", i.channel)):
        if key in spec:
            conditions.append(column.in_(spec[key] if isinstance(spec[key], list)
                                         else [spec[key]]))
    if "direction" in spec:
        conditions.append(i.direction == spec["direction"])
    if "within" in spec:
        conditions.append(i.occurred_at >= now - parse_duration(spec["within"]))
    return conditions


def _at_least(spec: Mapping[str, Any], n: int, now: dt.datetime) -> ColumnElement[bool]:
    """The customer has ``n`` or more matching interactions: EXISTS of the ``n``-th one."""
    if n <= 0:
        return true()
    i = Interaction.__table__.c
    query = select(literal(1)).where(i.customer_id == Customer.id, *_matching(spec, now))
    return exists(query.offset(n - 1) if n > 1 else query)


def _threshold(spec: Mapping[str, Any], op: str, value: int, now: dt.datetime
               ) -> ColumnElement[bool]:
    """``count op value`` as EXISTS / NOT EXISTS of the row that decides it: a count stops
    reading at that row instead of counting every matching interaction."""
    if op in ("gte", "gt"):
        return _at_least(spec, value + (op == "gt"), now)
    if op in ("lte", "lt"):
        return not_(_at_least(spec, value + (op == "lte"), now))
    exactly = and_(_at_least(spec, value, now), not_(_at_least(spec, value + 1, now)))
    return exactly if op == "eq" else not_(exactly)


class _CriteriaClause(ColumnElement[bool]):
    """Criteria as SQL chosen at compile time, per database (benchmarks/criteria.py).

    PostgreSQL groups a join when the criteria counts interactions (its parallel scan and
    hash aggregate beat per-customer probes); elsewhere each count is an EXISTS of the row
    that decides it. Both forms are two-valued, so ``not`` stays safe.
    """

    type = Boolean()
    inherit_cache = False  # the document and "now" are not part of a cache key

    def __init__(self, criteria: Criteria, now: dt.datetime) -> None:
        self.criteria = criteria
        self.now = now


@compiles(_CriteriaClause)
def _criteria_default(element: _CriteriaClause, compiler: Any, **kw: Any) -> str:
    sql = element.criteria._sql(element.criteria.document, element.now)
    return str(compiler.process(sql, **kw))


@compiles(_CriteriaClause, "postgresql")
def _criteria_postgresql(element: _CriteriaClause, compiler: Any, **kw: Any) -> str:
    criteria = element.criteria
    sql = (criteria._aggregate_sql(element.now) if _counts(criteria.document)
           else criteria._sql(criteria.document, element.now))
    return str(compiler.process(sql, **kw))


class Criteria:
    """A validated criteria document, ready to query or to evaluate."""

    def __init__(self, document: Mapping[str, Any], registry: FieldRegistry) -> None:
        self.document = document
        self.registry = registry

    # -- SQL ------------------------------------------------------------------------------

    def to_sql(self, now: dt.datetime | None = None) -> ColumnElement[bool]:
        """A boolean expression over ``customer`` (use in ``select(Customer).where(...)``).

        The SQL is chosen when the statement compiles, for its database: see
        :class:`_CriteriaClause`.
        """
        return _CriteriaClause(self, now or utcnow())

    def _sql(self, node: Mapping[str, Any], now: dt.datetime) -> ColumnElement[bool]:
        if "all" in node:
            return and_(true(), *(self._sql(child, now) for child in node["all"]))
        if "any" in node:
            return or_(false(), *(self._sql(child, now) for child in node["any"]))
        if "not" in node:
            return not_(self._sql(node["not"], now))
        if "interactions" in node:
            return _threshold(node["interactions"], node["op"], node["value"], now)
        return self._compare_sql(node, now)

    def _aggregate_sql(self, now: dt.datetime) -> ColumnElement[bool]:
        """PostgreSQL: one join of customer and interaction, grouped, with each count a
        ``count(...) FILTER (WHERE ...)`` in HAVING: one pass over ``interaction`` where
        correlated counts would probe it once per customer. An outer ``customer.id = X``
        (a rule or guard checking one customer) is pushed into it by the planner."""
        customer, interaction = Customer.__table__, Interaction.__table__
        top = list(self.document["all"]) if "all" in self.document else [self.document]
        plain = [node for node in top if not _counts(node)]
        counted = [node for node in top if _counts(node)]
        # An inner join when some top-level count rules out zero; otherwise a customer with
        # no interactions must still be there, counting 0.
        inner = any("interactions" in node and not _COUNT_OPS[node["op"]](0, node["value"])
                    for node in counted)
        joined = (customer.join if inner else customer.outerjoin)(
            interaction, interaction.c.customer_id == customer.c.id)
        query = (select(customer.c.id).select_from(joined)
                 .where(*(self._sql(node, now) for node in plain))
                 .group_by(customer.c.id)
                 .having(*(self._having(node, now) for node in counted))
                 .correlate(None))
        return Customer.id.in_(query)

    def _having(self, node: Mapping[str, Any], now: dt.datetime) -> ColumnElement[bool]:
        if "all" in node:
            return and_(true(), *(self._having(child, now) for child in node["all"]))
        if "any" in node:
            return or_(false(), *(self._having(child, now) for child in node["any"]))
        if "not" in node:
            return not_(self._having(node["not"], now))
        if "interactions" in node:
            conditions = _matching(node["interactions"], now)
            count: Any = func.count(Interaction.__table__.c.id)
            if conditions:
                count = count.filter(*conditions)
            compared: ColumnElement[bool] = _COUNT_OPS[node["op"]](count, node["value"])
            return compared
        return self._sql(node, now)

    def _compare_sql(self, node: Mapping[str, Any], now: dt.datetime) -> ColumnElement[bool]:
        field = self.registry.fields[node["field"]]
        op, value = node["op"], node.get("value", True)
        if field.type == "string_list":
            assert field.sql_contains is not None and field.sql_exists is not None
            if op == "exists":
                return field.sql_exists() if value else not_(field.sql_exists())
            return field.sql_contains(value)
        assert field.sql is not None
        column = field.sql()
        present = field.sql_present() if field.sql_present else column.is_not(None)
        if op == "exists":
            return present if value else not_(present)
        if op == "in":
            return and_(present, column.in_(value))
        if op == "contains":
            return and_(present, column.contains(value, autoescape=True))
        if op == "within":
            return and_(present, column >= now - parse_duration(value))
        if op == "older_than":
            return and_(present, column < now - parse_duration(value))
        if field.type == "datetime":
            value = _parse_time(value)
        return and_(present, _sql_op(op, column, value))

    # -- Python ---------------------------------------------------------------------------

    def evaluate(self, record: CustomerRecord, now: dt.datetime | None = None) -> bool:
        """Whether ``record`` matches."""
        return self._eval(self.document, record, now or utcnow())

    def _eval(self, node: Mapping[str, Any], record: CustomerRecord, now: dt.datetime) -> bool:
        if "all" in node:
            return all(self._eval(child, record, now) for child in node["all"])
        if "any" in node:
            return any(self._eval(child, record, now) for child in node["any"])
        if "not" in node:
            return not self._eval(node["not"], record, now)
        if "interactions" in node:
            return _PY_OPS[node["op"]](self._count(node["interactions"], record, now),
                                       node["value"])
        return self._compare(node, record, now)

    @staticmethod
    def _count(spec: Mapping[str, Any], record: CustomerRecord, now: dt.datetime) -> int:
        def wanted(key: str) -> list[Any] | None:
            if key not in spec:
                return None
            return spec[key] if isinstance(spec[key], list) else [spec[key]]

        kinds, channels = wanted("kind"), wanted("channel")
        since = now - parse_duration(spec["within"]) if "within" in spec else None
        return sum(
            1 for i in record.interactions
            if (kinds is None or i["kind"] in kinds)
            and (channels is None or i["channel"] in channels)
            and ("direction" not in spec or i["direction"] == spec["direction"])
            and (since is None or i["occurred_at"] >= since)
        )

    def _compare(self, node: Mapping[str, Any], record: CustomerRecord, now: dt.datetime
                 ) -> bool:
        field = self.registry.fields[node["field"]]
        op, value = node["op"], node.get("value", True)
        actual = field.get(record)
        if field.type == "string_list":
            items = list(actual or [])
            return bool(bool(items) == value) if op == "exists" else bool(value in items)
        if op == "exists":
            return bool((actual is not None) == value)
        if actual is None:
            return False
        if op == "in":
            return any(_same(actual, v) for v in value)
        if op == "contains":
            return bool(value in actual)
        if op == "within":
            return bool(actual >= now - parse_duration(value))
        if op == "older_than":
            return bool(actual < now - parse_duration(value))
        if field.type == "datetime":
            value = _parse_time(value)
        if op in ("eq", "ne"):
            return _same(actual, value) == (op == "eq")
        return bool(_PY_OPS[op](actual, value))


def _same(a: Any, b: Any) -> bool:
    # SQL compares 1 and 1.0 as equal but never a boolean with a number.
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return bool(a == b)
