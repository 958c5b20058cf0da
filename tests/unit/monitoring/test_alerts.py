"""Alert rules: parsing, episodes over windows, JSON state, and delivery that never raises."""

from __future__ import annotations

import json
import logging
import math
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keel.errors import AlreadyExists, InvalidArgument, NotFound
from keel.monitoring import (
    AlertEvent,
    AlertRule,
    AlertState,
    CallbackNotifier,
    DeliveryResult,
    LogNotifier,
    WebhookNotifier,
    alert_callbacks,
    deliver_all,
    evaluate_alerts,
    redeliver,
    register_alert_callback,
    unregister_alert_callback,
)
from keel.monitoring._alerts import evaluate

# ---------------------------------------------------------------- parsing

metrics = st.from_regex(r"[a-z_][a-z0-9_]{0,8}(\.[A-Za-z0-9_-]{1,6}){0,3}", fullmatch=True)
operators = st.sampled_from([">", ">=", "<", "<=", "==", "!="])
thresholds = st.floats(allow_nan=False, allow_infinity=False, width=64)


@given(metric=metrics, op=operators, threshold=thresholds, spaces=st.sampled_from(["", " ", "  "]))
def test_valid_rules_round_trip(metric: str, op: str, threshold: float, spaces: str) -> None:
    text = f"{metric}{spaces}{op}{spaces}{threshold!r}"
    rule = AlertRule.parse(text, for_windows=3)
    assert (rule.metric, rule.operator, rule.threshold, rule.for_windows) == (
        metric,
        op,
        threshold,
        3,
    )
    again = AlertRule.parse(rule.expression, for_windows=3)
    assert again == rule
    assert AlertRule.from_dict(json.loads(json.dumps(rule.to_dict()))) == rule


def test_parse_defaults_and_slices() -> None:
    rule = AlertRule.parse("drift_share > 0.3")
    assert rule.name == "drift_share > 0.3"
    assert rule.for_windows == 1
    assert rule.severity == "warning"
    sliced = AlertRule.parse("slice.gender.F.drift_share>=1e-1", name="women", severity="critical")
    assert (sliced.name, sliced.metric, sliced.threshold) == (
        "women",
        "slice.gender.F.drift_share",
        0.1,
    )
    assert AlertRule.parse("accuracy < -.5").threshold == -0.5


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "cannot read alert rule"),
        ("drift_share", "cannot read alert rule"),
        ("drift_share > ", "cannot read alert rule"),
        ("drift_share => 0.3", "cannot read alert rule"),
        ("drift_share > 0.3 and x < 1", "cannot read alert rule"),
        ("drift_share > nan", "cannot read alert rule"),
        ("drift_share > inf", "cannot read alert rule"),
        ("Drift_share > 0.3", "not a metric name"),
        ("1drift > 0.3", "not a metric name"),
        ("drift..share > 0.3", "not a metric name"),
        ("drift_share > 1e999", "overflows"),
    ],
)
def test_bad_rules_are_rejected_with_the_fix(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message) as info:
        AlertRule.parse(text)
    assert "drift_share" in info.value.message or "metric name" in info.value.message


def test_bad_fields_are_rejected() -> None:
    with pytest.raises(InvalidArgument, match="for_windows must be a whole number >= 1"):
        AlertRule.parse("x > 1", for_windows=0)
    with pytest.raises(InvalidArgument, match="severity 'loud'"):
        AlertRule.parse("x > 1", severity="loud")
    with pytest.raises(InvalidArgument, match="operator '~'"):
        AlertRule("r", "x", "~", 1.0)
    with pytest.raises(InvalidArgument, match="threshold must be finite"):
        AlertRule("r", "x", ">", math.inf)
    with pytest.raises(InvalidArgument, match="non-empty name"):
        AlertRule.parse("x > 1", name=" ")
    with pytest.raises(InvalidArgument, match="wrong fields"):
        AlertRule.from_dict({"name": "r", "metric": "x"})


# ---------------------------------------------------------------- evaluation


def run(
    rules: list[AlertRule], values: list[dict[str, float]], state: AlertState | None = None
) -> tuple[AlertState, list[list[AlertEvent]]]:
    state = state or AlertState()
    per_window = []
    for v in values:
        state, events = evaluate_alerts(rules, v, state)
        per_window.append(events)
    return state, per_window


def test_fires_after_n_consecutive_windows_once_per_episode_then_resolves() -> None:
    rule = AlertRule.parse("drift_share > 0.3", for_windows=3, name="drift")
    series = [0.5, 0.5, 0.1, 0.5, 0.5, 0.5, 0.6, 0.7, 0.2, 0.1]
    _, events = run([rule], [{"drift_share": v} for v in series])
    flat = [(i + 1, e.status, e.key) for i, es in enumerate(events) for e in es]
    # The first streak of two is too short; the second starts at window 4 and fires at 6.
    assert flat == [(6, "firing", "drift@4"), (9, "resolved", "drift@4")]
    firing = events[5][0]
    assert firing.windows == 3
    assert firing.value == 0.5
    assert firing.id == "drift@4/firing"
    assert "drift_share > 0.3 for 3 window(s) since 4" in firing.message


def test_a_new_episode_gets_a_new_key() -> None:
    rule = AlertRule.parse("errors >= 1", name="err")
    _, events = run([rule], [{"errors": v} for v in (1, 0, 2, 2, 0)])
    keys = [(e.key, e.status) for es in events for e in es]
    assert keys == [
        ("err@1", "firing"),
        ("err@1", "resolved"),
        ("err@3", "firing"),
        ("err@3", "resolved"),
    ]
    assert len({e.id for es in events for e in es}) == 4


def test_missing_or_nan_neither_breaches_nor_clears() -> None:
    rule = AlertRule.parse("x > 1", for_windows=2, name="x")
    # Missing between two breaches: the streak carries over and the rule fires.
    _, events = run([rule], [{"x": 2}, {}, {"x": math.nan}, {"x": 2}])
    assert [(i, e.status) for i, es in enumerate(events) for e in es] == [(3, "firing")]
    # Missing while firing: no resolve until a real value clears it.
    state, events = run([rule], [{"x": 2}, {"x": 2}, {"x": math.nan}, {"y": 0}, {"x": 0}])
    assert [(i, e.status) for i, es in enumerate(events) for e in es] == [
        (1, "firing"),
        (4, "resolved"),
    ]
    assert not state.rules["x"].firing
    assert state.windows == 5


def test_window_labels_and_named_rules() -> None:
    rules = [AlertRule.parse("a > 0", name="a"), AlertRule.parse("b < 0", name="b")]
    state, events = evaluate(rules, {"a": 1, "b": 1}, AlertState(), window="2026-11-23T10:00")
    assert [e.key for e in events] == ["a@2026-11-23T10:00"]
    with pytest.raises(InvalidArgument, match="unique"):
        evaluate_alerts([rules[0], rules[0]], {}, state)


def test_state_and_events_round_trip_through_json() -> None:
    rule = AlertRule.parse("x > 1", for_windows=2, name="x")
    state, events = run([rule], [{"x": 5}, {"x": 5}])
    stored = json.loads(json.dumps(state.to_dict()))
    restored = AlertState.from_dict(stored)
    assert restored == state
    event = events[1][0]
    assert AlertEvent.from_dict(json.loads(json.dumps(event.to_dict()))) == event
    # The restored state continues the episode: no second firing, then one resolve.
    _, later = run([rule], [{"x": 5}, {"x": 0}], restored)
    assert [e.id for es in later for e in es] == ["x@1/resolved"]
    with pytest.raises(InvalidArgument, match="reset it with AlertState"):
        AlertState.from_dict({"rules": {"x": {"bogus": 1}}})


# ---------------------------------------------------------------- delivery


class Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, Any], str | None]]
    status = 200

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append(  # type: ignore[attr-defined]
            (json.loads(body), self.headers.get("Idempotency-Key"))
        )
        self.send_response(self.server.status)  # type: ignore[attr-defined]
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    server.received = []  # type: ignore[attr-defined]
    server.status = 200  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def two_events() -> list[AlertEvent]:
    rule = AlertRule.parse("x > 1", name="x")
    _, events = run([rule], [{"x": 2}, {"x": 0}])
    return [e for es in events for e in es]


def test_webhook_receives_exactly_one_post_per_event(receiver: ThreadingHTTPServer) -> None:
    url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    hook = WebhookNotifier(url, allowed_hosts=["127.0.0.1"])
    events = two_events()
    results = deliver_all(events, [hook])
    assert [r.ok for r in results] == [True, True]
    got = receiver.received  # type: ignore[attr-defined]
    assert [(body["id"], key) for body, key in got] == [(e.id, e.id) for e in events]
    assert AlertEvent.from_dict(got[0][0]) == events[0]


def test_a_failing_webhook_gives_failed_results_to_retry(receiver: ThreadingHTTPServer) -> None:
    url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    hook = WebhookNotifier(url, allowed_hosts=["127.0.0.1"], name="hook")
    seen: list[str] = []
    callback = CallbackNotifier(lambda e: seen.append(e.id), name="cb")
    receiver.status = 503  # type: ignore[attr-defined]
    events = two_events()
    results = deliver_all(events, [hook, callback])
    assert [(r.notifier, r.ok) for r in results] == [
        ("hook", False),
        ("cb", True),
        ("hook", False),
        ("cb", True),
    ]
    assert "503" in (results[0].error or "")
    failed = [DeliveryResult.from_dict(json.loads(json.dumps(r.to_dict()))) for r in results]
    receiver.status = 200  # type: ignore[attr-defined]
    retried = redeliver(failed, [hook, callback])
    # Only the webhook gets the events again; the callback is not called twice.
    assert [(r.notifier, r.ok) for r in retried] == [("hook", True), ("hook", True)]
    assert seen == [e.id for e in events]
    assert len(receiver.received) == 4  # type: ignore[attr-defined]  # 2 refused, 2 accepted
    gone = redeliver([results[0]], [callback])
    assert not gone[0].ok
    assert "no longer configured" in (gone[0].error or "")


def test_an_unreachable_webhook_is_a_failed_result_not_an_exception() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    hook = WebhookNotifier(f"http://127.0.0.1:{port}/", allowed_hosts=["127.0.0.1"], timeout=2)
    results = deliver_all(two_events(), [hook])
    assert [r.ok for r in results] == [False, False]
    assert "unreachable" in (results[0].error or "")


@pytest.mark.parametrize(
    ("url", "allowed", "message"),
    [
        ("http://evil.example/hook", ["hooks.example"], "not in allowed_hosts"),
        ("file:///etc/passwd", ["localhost"], "http:// or https://"),
        ("ftp://127.0.0.1/x", ["127.0.0.1"], "http:// or https://"),
        ("http://user:pw@127.0.0.1/x", ["127.0.0.1"], "carries credentials"),
        ("http:///x", ["127.0.0.1"], "has no host"),
        ("http://169.254.169.254/latest/meta-data", ["metadata.internal"], "not in allowed"),
    ],
)
def test_disallowed_webhooks_are_refused(url: str, allowed: list[str], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        WebhookNotifier(url, allowed_hosts=allowed)


def test_a_host_resolving_to_link_local_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    def resolve(host: str, port: int, **_: Any) -> list[Any]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", port))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    with pytest.raises(InvalidArgument, match=r"link-local address 169\.254\.169\.254"):
        WebhookNotifier("http://hooks.example/x", allowed_hosts=["hooks.example"])
    # Allowed only when the address itself is on the list.
    WebhookNotifier("http://hooks.example/x", allowed_hosts=["hooks.example", "169.254.169.254"])
    with pytest.raises(InvalidArgument, match="list of host names"):
        WebhookNotifier("http://hooks.example/x", allowed_hosts="hooks.example")


def test_log_notifier_logs_by_severity(caplog: pytest.LogCaptureFixture) -> None:
    events = two_events()
    with caplog.at_level(logging.INFO, logger="keel.monitoring.alerts"):
        results = deliver_all(events, [LogNotifier()])
    assert all(r.ok for r in results)
    assert [r.levelname for r in caplog.records] == ["WARNING", "INFO"]
    assert events[0].id in caplog.records[0].getMessage()


def test_a_raising_callback_is_a_failed_result() -> None:
    def boom(event: AlertEvent) -> None:
        raise RuntimeError("pipeline down")

    results = deliver_all(two_events()[:1], [CallbackNotifier(boom)])
    assert not results[0].ok
    assert "pipeline down" in (results[0].error or "")


def test_callback_registry() -> None:
    calls: list[str] = []

    def retrain(event: AlertEvent) -> None:
        calls.append(event.key)

    register_alert_callback("retrain-test", retrain)
    try:
        assert alert_callbacks()["retrain-test"] is retrain
        with pytest.raises(AlreadyExists, match="replace=True"):
            register_alert_callback("retrain-test", retrain)
        register_alert_callback("retrain-test", retrain, replace=True)
        notifiers = [CallbackNotifier(fn, name=n) for n, fn in alert_callbacks().items()]
        deliver_all(two_events()[:1], notifiers)
        assert calls == ["x@1"]
    finally:
        unregister_alert_callback("retrain-test")
    assert "retrain-test" not in alert_callbacks()
    with pytest.raises(NotFound, match="no alert callback"):
        unregister_alert_callback("retrain-test")
