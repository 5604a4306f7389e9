"""The ``webhook`` action against a real HTTP server on 127.0.0.1.

:class:`Receiver` records every request and answers as the test tells it: a status (500,
429 or 503 with ``Retry-After``, a redirect), a delay beyond the client's timeout, or 200
by default. Its serving loop is bounded in requests and in time and stops by itself; a
closed port stands in for a receiver that is down. Nothing outside 127.0.0.1 is contacted.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import attrs
import pytest
from sqlalchemy import select, update

from crmkit import Crm, Event
from crmkit.db import utcnow
from crmkit.events import DispatchResult
from crmkit.models import CustomerTag, OutboxEvent, RuleExecution
from crmkit.rules import ActionContext
from crmkit.webhooks import MAX_RETRY_AFTER, retry_after_seconds, send_webhook

SECRET_ENV = "CRMKIT_TEST_HOOK_SECRET"
SECRET = "s3cr3t-ünï"
#: Longest a test's server runs, and most requests it answers, before it stops by itself.
SERVER_SECONDS = 30.0
SERVER_REQUESTS = 50
#: Longest a delayed answer waits (the client gives up long before).
MAX_DELAY = 2.0


# -- the receiver ---------------------------------------------------------------------------


@attrs.frozen
class Answer:
    status: int = 200
    headers: Mapping[str, str] = attrs.field(factory=dict)
    delay: float = 0.0


@attrs.frozen
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    #: Every header line as received, duplicates included.
    raw_headers: tuple[tuple[str, str], ...] = ()

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """A local HTTP server that records requests and answers from a script."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.script: list[Answer] = []
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(min(length, 1_000_000))
                with receiver.lock:
                    receiver.requests.append(Request(
                        "POST", self.path, dict(self.headers.items()), body, time.time(),
                        tuple(self.headers.items())))
                    answer = receiver.script.pop(0) if receiver.script else Answer()
                if answer.delay:
                    receiver.stopping.wait(min(answer.delay, MAX_DELAY))
                try:
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass  # the client gave up (a timeout test)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.timeout = 0.05  # handle_request() returns this often when idle
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self._serve, name="webhook-receiver", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        deadline = time.monotonic() + SERVER_SECONDS
        while (not self.stopping.is_set() and time.monotonic() < deadline
               and len(self.requests) < SERVER_REQUESTS):
            self.server.handle_request()

    def url(self, path: str = "/hooks/crm") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answer(self, *answers: Answer) -> None:
        with self.lock:
            self.script.extend(answers)

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(5)
        self.server.server_close()
        assert not self.thread.is_alive()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens: connections are refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)


# -- the receiver side, as docs/workflows.md shows it ----------------------------------------


def verify(secret: bytes, headers: Any, body: bytes, tolerance: int = 300) -> bool:
    timestamp = headers["X-Crmkit-Timestamp"]
    if abs(time.time() - int(timestamp)) > tolerance:
        return False
    expected = "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body,
                                    hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers["X-Crmkit-Signature"])


# -- helpers --------------------------------------------------------------------------------

FAST = {"backoff_seconds": 0.01, "max_backoff_seconds": 0.02, "max_attempts": 3}
SLOW = {"backoff_seconds": 60, "max_backoff_seconds": 600, "max_attempts": 3}


def hook(url: str, name: str = "hook", on: str = "customer.created", **with_: Any
         ) -> dict[str, Any]:
    return {"name": name, "on": on, "do": "webhook",
            "with": {"url": url, "secret_env": SECRET_ENV, "timeout_seconds": 0.5, **with_}}


def deployment(crm_factory: Any, *rules: dict[str, Any], events: Mapping[str, Any] = FAST
               ) -> Crm:
    return crm_factory(config={"rules": list(rules), "events": dict(events)})


def create(crm: Crm, name: str = "Acme") -> int:
    with crm.transaction(actor="alice") as tx:
        return int(tx.customers.create(kind="organization", name=name).id)


def events(crm: Crm, name: str = "customer.created") -> list[OutboxEvent]:
    with crm.session() as session:
        return list(session.scalars(select(OutboxEvent).where(OutboxEvent.name == name)
                                    .order_by(OutboxEvent.id)))


def the_event(crm: Crm, name: str = "customer.created") -> OutboxEvent:
    [row] = events(crm, name)
    return row


def seconds_until(moment: dt.datetime) -> float:
    return (moment - utcnow()).total_seconds()


def make_due(crm: Crm) -> None:
    with crm.session() as session, session.begin():
        session.execute(update(OutboxEvent).where(OutboxEvent.status == "pending")
                        .values(next_attempt_at=utcnow() - dt.timedelta(seconds=1)))


# -- what is sent ---------------------------------------------------------------------------


def test_the_event_is_posted_as_signed_json(crm_factory: Any, receiver: Receiver) -> None:
    crm = deployment(crm_factory, hook(receiver.url(), headers={"X-Team": "quality"}))
    before = time.time()
    customer_id = create(crm)
    row = the_event(crm)
    assert (row.status, row.delivered_to, row.last_error) == ("delivered", ["rule:hook"], None)
    [request] = receiver.requests
    assert (request.method, request.path) == ("POST", "/hooks/crm")
    assert request.json() == {
        "id": row.id, "name": "customer.created", "payload": row.payload, "actor": "alice",
        "created_at": row.created_at.isoformat(), "rule": "hook",
    }
    assert request.json()["payload"]["customer_id"] == customer_id
    headers = request.headers
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Crmkit-Event"] == "customer.created"
    assert headers["Idempotency-Key"] == f"{row.id}:hook"
    assert headers["X-Team"] == "quality"
    assert headers["User-Agent"].startswith("crmkit-webhook/")
    assert int(before) <= int(headers["X-Crmkit-Timestamp"]) <= time.time()
    assert headers["X-Crmkit-Signature"].startswith("sha256=")

    secret = SECRET.encode("utf-8")
    assert verify(secret, headers, request.body)
    assert not verify(b"wrong secret", headers, request.body)
    assert not verify(secret, headers, request.body.replace(b"Acme", b"Evil"))
    moved = str(int(headers["X-Crmkit-Timestamp"]) - 1)  # a replay with another timestamp
    assert not verify(secret, {**headers, "X-Crmkit-Timestamp": moved}, request.body)
    stale = str(int(time.time()) - 301)
    resigned = "sha256=" + hmac.new(secret, stale.encode() + b"." + request.body,
                                    hashlib.sha256).hexdigest()
    assert not verify(secret, {"X-Crmkit-Timestamp": stale, "X-Crmkit-Signature": resigned},
                      request.body)  # right signature, too old


def test_events_naming_no_customer_are_posted(crm_factory: Any, receiver: Receiver) -> None:
    crm = deployment(crm_factory, hook(receiver.url("/any"), on="custom.*"), {
        **hook(receiver.url("/orgs"), name="orgs-only", on="custom.*"),
        "where": {"field": "customer.kind", "op": "eq", "value": "organization"}})
    with crm.transaction(actor="cron") as tx:
        tx.emit("custom.nightly", {"run": 7, "note": "ünïcode"})
    row = the_event(crm, "custom.nightly")
    assert (row.status, row.delivered_to) == ("delivered", ["rule:hook", "rule:orgs-only"])
    [request] = receiver.requests
    assert request.path == "/any"
    assert request.json()["payload"] == {"run": 7, "note": "ünïcode"}
    assert request.json()["actor"] == "cron"
    assert verify(SECRET.encode(), request.headers, request.body)


def test_configured_headers_cannot_replace_crmkits(crm_factory: Any, receiver: Receiver
                                                    ) -> None:
    """Start-up refuses such a rule; the action itself also keeps its own headers."""
    crm = deployment(crm_factory, hook(receiver.url()), events={"dispatch": "worker"})
    create(crm)
    row = the_event(crm)
    rule = crm.rules.get("hook")
    forged = {**rule.params, "headers": {"x-crmkit-signature": "sha256=forged",
                                         "idempotency-key": "1:other", "X-Extra": "yes"}}
    event = Event(id=row.id, name=row.name, payload=dict(row.payload), actor=row.actor,
                  created_at=row.created_at)
    send_webhook(ActionContext(crm, event, rule, forged, None))
    [request] = receiver.requests
    assert request.headers["Idempotency-Key"] == f"{row.id}:hook"
    assert request.headers["X-Extra"] == "yes"
    assert verify(SECRET.encode(), request.headers, request.body)
    names = [name.lower() for name, _ in request.raw_headers]
    assert names.count("x-crmkit-signature") == names.count("idempotency-key") == 1


# -- failures, retries, dead letters ---------------------------------------------------------


def test_a_failing_receiver_is_retried_with_backoff_then_dead_then_revived(
    crm_factory: Any, receiver: Receiver
) -> None:
    crm = crm_factory(config={"events": SLOW, "rules": [
        {"name": "tag", "on": "customer.created", "do": "tag_customer", "with": {"tag": "new"}},
        hook(receiver.url()),
    ]})
    receiver.answer(Answer(500), Answer(500), Answer(500))
    customer_id = create(crm)
    for attempt in (1, 2, 3):
        row = the_event(crm)
        assert row.attempts == attempt
        assert row.last_error == f"rule:hook: POST {receiver.url()} answered 500"
        assert row.delivered_to == ["rule:tag"]  # the tag rule is not run again
        if attempt < 3:
            assert row.status == "pending"
            wait = seconds_until(row.next_attempt_at)
            assert 60 * 2 ** (attempt - 1) / 2 - 5 <= wait <= 60 * 2 ** (attempt - 1)
            assert crm.dispatcher.run_once().claimed == 0  # not due yet: nothing is sent
            assert len(receiver.requests) == attempt
            make_due(crm)
            expected = DispatchResult(retrying=1) if attempt == 1 else DispatchResult(dead=1)
            assert crm.dispatcher.run_once(ids=[row.id]) == expected
    assert the_event(crm).status == "dead"
    assert len(receiver.requests) == 3

    # The receiver is fixed; the operator revives the dead event, and it is delivered.
    assert crm.dispatcher.retry(all_dead=True) == 1
    assert crm.dispatcher.run_once() == DispatchResult(delivered=1)
    row = the_event(crm)
    assert (row.status, row.last_error, row.delivered_to) == (
        "delivered", None, ["rule:tag", "rule:hook"])
    assert len(receiver.requests) == 4
    # Every attempt carried the same event and idempotency key, each signed.
    assert {r.headers["Idempotency-Key"] for r in receiver.requests} == {f"{row.id}:hook"}
    assert len({r.body for r in receiver.requests}) == 1
    assert all(verify(SECRET.encode(), r.headers, r.body) for r in receiver.requests)
    with crm.session() as session:
        assert list(session.scalars(select(CustomerTag.tag).where(
            CustomerTag.customer_id == customer_id))) == ["new"]
        assert list(session.scalars(select(RuleExecution.rule))) == ["tag"]


def test_a_receiver_slower_than_the_timeout_is_retried(crm_factory: Any, receiver: Receiver
                                                        ) -> None:
    crm = deployment(crm_factory, hook(receiver.url(), timeout_seconds=0.3))
    receiver.answer(Answer(200, delay=MAX_DELAY))
    started = time.monotonic()
    create(crm)
    assert time.monotonic() - started < MAX_DELAY - 0.5  # the client gave up, not the server
    row = the_event(crm)
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.last_error is not None
    assert row.last_error.startswith(f"rule:hook: POST {receiver.url()} failed: ReadTimeout")
    make_due(crm)
    assert crm.dispatcher.run_once(ids=[row.id]) == DispatchResult(delivered=1)
    assert len(receiver.requests) == 2


def test_a_refused_connection_is_retried(crm_factory: Any, closed_port: int) -> None:
    url = f"http://127.0.0.1:{closed_port}/hooks/crm?token=secret"
    crm = deployment(crm_factory, hook(url), events=SLOW)
    create(crm)
    row = the_event(crm)
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.last_error is not None
    assert row.last_error.startswith(
        f"rule:hook: POST http://127.0.0.1:{closed_port}/hooks/crm failed: ConnectError")
    assert "token=secret" not in row.last_error  # the query string is not shown
    assert seconds_until(row.next_attempt_at) > 25


def test_a_redirect_is_not_followed(crm_factory: Any, receiver: Receiver) -> None:
    crm = deployment(crm_factory, hook(receiver.url()), events=SLOW)
    receiver.answer(Answer(302, {"Location": receiver.url("/elsewhere")}))
    create(crm)
    row = the_event(crm)
    assert (row.status, row.last_error) == (
        "pending", f"rule:hook: POST {receiver.url()} answered 302")
    assert [r.path for r in receiver.requests] == ["/hooks/crm"]


def test_a_missing_secret_fails_clearly_and_is_retried(
    crm_factory: Any, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(SECRET_ENV)
    crm = deployment(crm_factory, hook(receiver.url()), events=SLOW)
    create(crm)
    row = the_event(crm)
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.last_error == (f"rule:hook: rule 'hook': the environment variable {SECRET_ENV} "
                              "holding the webhook secret is not set")
    assert receiver.requests == []
    assert seconds_until(row.next_attempt_at) > 25
    monkeypatch.setenv(SECRET_ENV, SECRET)
    make_due(crm)
    assert crm.dispatcher.run_once() == DispatchResult(delivered=1)
    [request] = receiver.requests
    assert verify(SECRET.encode(), request.headers, request.body)


@pytest.mark.parametrize(("status", "header", "at_least"), [
    (429, "120", 120.0),
    (503, "90", 90.0),
    (429, "http-date", 300.0),
])
def test_retry_after_sets_the_earliest_next_attempt(
    crm_factory: Any, receiver: Receiver, status: int, header: str, at_least: float
) -> None:
    crm = deployment(crm_factory, hook(receiver.url()))  # back-off alone: 0.01 s
    if header == "http-date":
        header = email.utils.formatdate(time.time() + at_least, usegmt=True)
    receiver.answer(Answer(status, {"Retry-After": header}))
    create(crm)
    row = the_event(crm)
    assert (row.status, row.attempts) == ("pending", 1)
    # An HTTP date has whole seconds: allow for the one being cut off.
    assert seconds_until(row.next_attempt_at) >= at_least - 2
    assert seconds_until(row.next_attempt_at) <= at_least + 1
    assert row.last_error is not None
    assert row.last_error.startswith(
        f"rule:hook: POST {receiver.url()} answered {status}; Retry-After ")
    assert crm.dispatcher.run_once().claimed == 0
    make_due(crm)
    assert crm.dispatcher.run_once() == DispatchResult(delivered=1)
    assert len(receiver.requests) == 2


def test_retry_after_on_other_statuses_is_ignored(crm_factory: Any, receiver: Receiver) -> None:
    """docs/workflows.md: Retry-After counts on a 429 or 503."""
    crm = deployment(crm_factory, hook(receiver.url()))
    receiver.answer(Answer(500, {"Retry-After": "3600"}))
    create(crm)
    row = the_event(crm)
    assert row.last_error == f"rule:hook: POST {receiver.url()} answered 500"
    assert seconds_until(row.next_attempt_at) < 5


def test_a_long_retry_after_keeps_counting_attempts_until_dead(
    crm_factory: Any, receiver: Receiver
) -> None:
    crm = deployment(crm_factory, hook(receiver.url()), events={**FAST, "max_attempts": 2})
    receiver.answer(*[Answer(429, {"Retry-After": "600"})] * 2)
    create(crm)
    assert seconds_until(the_event(crm).next_attempt_at) >= 598
    make_due(crm)
    assert crm.dispatcher.run_once() == DispatchResult(dead=1)
    assert the_event(crm).status == "dead"


def test_retry_after_values(monkeypatch: pytest.MonkeyPatch) -> None:
    assert retry_after_seconds("120") == 120.0
    assert retry_after_seconds(" 0 ") == 0.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("") is None
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds("-5") is None
    assert retry_after_seconds("1.5") is None
    assert retry_after_seconds("99999999") == MAX_RETRY_AFTER
    assert retry_after_seconds("\u0661\u0662") is None  # Arabic-Indic digits are not seconds
    in_a_minute = email.utils.formatdate(time.time() + 60, usegmt=True)
    assert 57 <= (retry_after_seconds(in_a_minute) or 0) <= 60
    past = email.utils.formatdate(time.time() - 3600, usegmt=True)
    assert retry_after_seconds(past) == 0.0
    # A date without a zone ("-0000") is UTC, whatever the local time zone.
    naive = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=60)).strftime(
        "%a, %d %b %Y %H:%M:%S -0000")
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        assert 57 <= (retry_after_seconds(naive) or 0) <= 60
    finally:
        monkeypatch.undo()
        time.tzset()
