"""Alert rules over monitor metrics: parse, evaluate window by window, deliver.

``AlertRule.parse("drift_share > 0.3", for_windows=2)`` reads one rule. ``evaluate``
is pure: it takes the rules, one window's metric values and the previous
``AlertState`` and returns the next state and the events of this window. A rule fires
once per episode, after ``for_windows`` consecutive breaching windows, and emits one
``resolved`` event at the first window that does not breach. A window where the
metric is missing or NaN neither breaches nor clears: the rule's streak and episode
are left exactly as they were. State and events are plain JSON dicts both ways
(``to_dict`` / ``from_dict``) so a monitor can store them between runs.

An event's ``key`` (rule name and the window the episode started) names the episode,
shared by its ``firing`` and ``resolved`` events; ``id`` (key and status) names the
event and is what a receiver deduplicates on. Delivery is at least once:
``deliver_all`` never raises, it returns a ``DeliveryResult`` per (event, notifier),
and ``redeliver`` retries the failed ones on a later run.

Webhooks defend against server-side request forgery: only ``http``/``https`` URLs
whose host is in ``allowed_hosts`` are accepted, redirects are not followed, and a
host that resolves to a link-local address (169.254.0.0/16, fe80::/10, which includes
the cloud metadata endpoint 169.254.169.254) is refused unless that address itself
is allow-listed. The check runs at construction and again before every delivery,
because DNS answers change; a host that does not resolve at construction is accepted
and checked at delivery.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import re
import socket
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, ClassVar, Protocol
from urllib.parse import urlsplit

from keel.errors import AlreadyExists, InvalidArgument, NotFound

__all__ = [
    "AlertEvent",
    "AlertRule",
    "AlertState",
    "CallbackNotifier",
    "DeliveryResult",
    "LogNotifier",
    "Notifier",
    "RuleState",
    "WebhookNotifier",
    "alert_callbacks",
    "deliver_all",
    "evaluate",
    "evaluate_alerts",
    "notifier_name",
    "redeliver",
    "register_alert_callback",
    "unregister_alert_callback",
]

logger = logging.getLogger("keel.monitoring.alerts")

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}
SEVERITIES = ("info", "warning", "critical")
# Lowercase names; after the first '.', upper case and '-' too, for slice values such as
# 'slice.gender.F.drift_share' or 'slice.employment.self-employed.accuracy'.
_METRIC = re.compile(r"[a-z_][a-z0-9_]*(?:\.[A-Za-z0-9_-]+)*")
_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_RULE = re.compile(
    rf"\s*(?P<metric>[^\s<>=!]+)\s*(?P<op>>=|<=|==|!=|>|<)\s*(?P<threshold>{_NUMBER})\s*"
)
_HELP = "write '<metric> <op> <number>', e.g. 'drift_share > 0.3'; op is one of > >= < <= == !="


def _float_dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidArgument(f"{what} must be a JSON object, got {type(value).__name__}")
    return dict(value)


@dataclass(frozen=True)
class AlertRule:
    """``metric operator threshold`` held for ``for_windows`` consecutive windows.

    ``name`` identifies the rule in state and event keys; it defaults to the rule's
    expression. Metric names are dotted paths starting with a lowercase name, such as
    ``drift_share`` or ``slice.gender.F.drift_share`` (later parts may hold upper case
    and ``-``, for slice values).
    """

    name: str
    metric: str
    operator: str
    threshold: float
    for_windows: int = 1
    severity: str = "warning"

    def __post_init__(self) -> None:
        if not self.name or not self.name.strip():
            raise InvalidArgument("an alert rule needs a non-empty name; pass name='...'")
        if not _valid_metric(self.metric):
            raise InvalidArgument(
                f"metric {self.metric!r} is not a metric name; start with a lowercase "
                "letter or '_' and join parts with '.' (e.g. 'slice.gender.F.drift_share')"
            )
        if self.operator not in OPERATORS:
            raise InvalidArgument(
                f"operator {self.operator!r} is not one of {' '.join(OPERATORS)}; {_HELP}"
            )
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, int | float):
            raise InvalidArgument(f"threshold must be a number, got {self.threshold!r}")
        if not math.isfinite(self.threshold):
            raise InvalidArgument(f"threshold must be finite, got {self.threshold!r}")
        object.__setattr__(self, "threshold", float(self.threshold))
        if (
            isinstance(self.for_windows, bool)
            or not isinstance(self.for_windows, int)
            or self.for_windows < 1
        ):
            raise InvalidArgument(
                f"for_windows must be a whole number >= 1, got {self.for_windows!r}; "
                "1 fires at the first breaching window"
            )
        if self.severity not in SEVERITIES:
            raise InvalidArgument(
                f"severity {self.severity!r} is not one of {', '.join(SEVERITIES)}"
            )

    @classmethod
    def parse(
        cls,
        text: str,
        *,
        for_windows: int = 1,
        name: str | None = None,
        severity: str = "warning",
    ) -> AlertRule:
        """The rule written as ``"<metric> <op> <number>"``, e.g. ``"drift_share > 0.3"``."""
        if not isinstance(text, str):
            raise InvalidArgument(f"an alert rule is a string, got {type(text).__name__}; {_HELP}")
        match = _RULE.fullmatch(text)
        if match is None:
            raise InvalidArgument(f"cannot read alert rule {text!r}; {_HELP}")
        metric = match["metric"]
        if not _valid_metric(metric):
            raise InvalidArgument(
                f"cannot read alert rule {text!r}: {metric!r} is not a metric name; start "
                "with a lowercase letter or '_' and join parts with '.' (e.g. 'drift_share')"
            )
        threshold = float(match["threshold"])
        if not math.isfinite(threshold):
            raise InvalidArgument(f"cannot read alert rule {text!r}: the threshold overflows")
        expression = f"{metric} {match['op']} {_number(threshold)}"
        return cls(
            name=expression if name is None else name,
            metric=metric,
            operator=match["op"],
            threshold=threshold,
            for_windows=for_windows,
            severity=severity,
        )

    @property
    def expression(self) -> str:
        """The rule as ``parse`` reads it: ``"drift_share > 0.3"``."""
        return f"{self.metric} {self.operator} {_number(self.threshold)}"

    def breached(self, value: float) -> bool:
        """Whether ``value`` breaks the rule (NaN never does)."""
        return OPERATORS[self.operator](value, self.threshold)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AlertRule:
        d = _float_dict(data, "an alert rule")
        try:
            return cls(**d)
        except TypeError as exc:
            raise InvalidArgument(
                f"alert rule {d!r} has wrong fields ({exc}); expected name, metric, operator, "
                "threshold, for_windows, severity"
            ) from exc


def _valid_metric(metric: Any) -> bool:
    return isinstance(metric, str) and _METRIC.fullmatch(metric) is not None


def _number(value: float) -> str:
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


@dataclass(frozen=True)
class RuleState:
    """One rule's progress: the current breaching streak and the open episode, if any."""

    streak: int = 0
    since: str | None = None  # window the current streak (and so the episode) started
    firing: bool = False
    value: float | None = None  # last non-missing value seen


@dataclass(frozen=True)
class AlertState:
    """Everything ``evaluate`` remembers between windows; JSON both ways."""

    windows: int = 0
    rules: Mapping[str, RuleState] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"windows": self.windows, "rules": {k: asdict(v) for k, v in self.rules.items()}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AlertState:
        d = _float_dict(data, "alert state")
        try:
            rules = {
                str(k): RuleState(**_float_dict(v, "a rule's state"))
                for k, v in _float_dict(d.get("rules", {}), "alert state rules").items()
            }
            return cls(windows=int(d.get("windows", 0)), rules=rules)
        except (TypeError, ValueError) as exc:
            raise InvalidArgument(
                f"stored alert state does not read ({exc}); reset it with AlertState()"
            ) from exc


@dataclass(frozen=True)
class AlertEvent:
    """A rule started firing or resolved at a window; JSON both ways."""

    key: str  # the episode: "<rule name>@<window it started>"
    status: str  # "firing" or "resolved"
    rule: str
    expression: str
    metric: str
    severity: str
    value: float | None
    window: str
    started: str
    windows: int  # breaching windows in the episode so far
    message: str

    STATUSES: ClassVar[tuple[str, str]] = ("firing", "resolved")

    @property
    def id(self) -> str:
        """Unique per event: what receivers deduplicate on."""
        return f"{self.key}/{self.status}"

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, **asdict(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AlertEvent:
        d = _float_dict(data, "an alert event")
        d.pop("id", None)
        try:
            event = cls(**d)
        except TypeError as exc:
            raise InvalidArgument(f"alert event {d!r} has wrong fields ({exc})") from exc
        if event.status not in cls.STATUSES:
            raise InvalidArgument(f"alert event status must be firing or resolved: {d!r}")
        return event


def _value(values: Mapping[str, Any], metric: str) -> float | None:
    raw = values.get(metric)
    if raw is None or isinstance(raw, bool):
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


def _event(
    rule: AlertRule, status: str, rs: RuleState, value: float | None, window: str
) -> AlertEvent:
    since = rs.since or window
    shown = "no value" if value is None else f"{value:g}"
    if status == "firing":
        message = (
            f"{rule.name}: {rule.expression} for {rs.streak} window(s) since {since} (now {shown})"
        )
    else:
        message = f"{rule.name}: resolved at window {window} ({rule.metric} = {shown})"
    return AlertEvent(
        key=f"{rule.name}@{since}",
        status=status,
        rule=rule.name,
        expression=rule.expression,
        metric=rule.metric,
        severity=rule.severity,
        value=value,
        window=window,
        started=since,
        windows=rs.streak,
        message=message,
    )


def evaluate_alerts(
    rules: Sequence[AlertRule],
    values: Mapping[str, Any],
    state: AlertState,
    *,
    window: str | None = None,
) -> tuple[AlertState, list[AlertEvent]]:
    """The next state and this window's events; pure, nothing is delivered.

    ``window`` labels this window in event keys (a timestamp is a good label); the
    default is the window's number, counted in the state. Rules not passed keep their
    stored state untouched.
    """
    names = [r.name for r in rules]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InvalidArgument(
            f"alert rule names must be unique, repeated: {duplicates!r}; pass name='...'"
        )
    count = state.windows + 1
    label = str(count) if window is None else window
    new_rules = dict(state.rules)
    events: list[AlertEvent] = []
    for rule in rules:
        rs = state.rules.get(rule.name, RuleState())
        value = _value(values, rule.metric)
        if value is None:
            continue  # missing or NaN: neither breaches nor clears
        if rule.breached(value):
            rs = replace(
                rs, streak=rs.streak + 1, since=rs.since if rs.streak else label, value=value
            )
            if not rs.firing and rs.streak >= rule.for_windows:
                rs = replace(rs, firing=True)
                events.append(_event(rule, "firing", rs, value, label))
        else:
            if rs.firing:
                events.append(_event(rule, "resolved", rs, value, label))
            rs = RuleState(value=value)
        new_rules[rule.name] = rs
    return AlertState(windows=count, rules=new_rules), events


evaluate = evaluate_alerts


class Notifier(Protocol):
    """Where alert events go; ``deliver`` raises when the event did not get there."""

    def deliver(self, event: AlertEvent) -> None: ...


def notifier_name(notifier: Notifier) -> str:
    """The notifier's ``name`` attribute, else its class name."""
    name = getattr(notifier, "name", None)
    return name if isinstance(name, str) else type(notifier).__name__


class LogNotifier:
    """Logs each event: critical as ERROR, warning as WARNING, info and resolved as INFO."""

    def __init__(self, logger_: logging.Logger | None = None, *, name: str = "log") -> None:
        self.logger = logger_ or logger
        self.name = name

    def deliver(self, event: AlertEvent) -> None:
        level = logging.INFO
        if event.status == "firing" and event.severity == "critical":
            level = logging.ERROR
        elif event.status == "firing" and event.severity == "warning":
            level = logging.WARNING
        self.logger.log(level, "alert %s [%s]: %s", event.status, event.id, event.message)


def _link_local(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_link_local or str(ip) == "fd00:ec2::254"


class WebhookNotifier:
    """POSTs each event as JSON to an allow-listed ``http(s)`` URL.

    The body is ``event.to_dict()``; the ``Idempotency-Key`` header carries
    ``event.id`` so a receiver can drop a retried duplicate. Any non-2xx answer, a
    timeout or a refused connection is a failed delivery (raised as
    ``keel.errors.Unavailable`` and turned into a result by ``deliver_all``).
    """

    def __init__(
        self,
        url: str,
        allowed_hosts: Iterable[str],
        timeout: float = 5.0,
        *,
        headers: Mapping[str, str] | None = None,
        name: str | None = None,
    ) -> None:
        if isinstance(allowed_hosts, str):
            raise InvalidArgument(
                "allowed_hosts must be a list of host names, not one string; "
                f"pass [{allowed_hosts!r}]"
            )
        self.allowed_hosts = frozenset(h.strip().lower().strip("[]") for h in allowed_hosts)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise InvalidArgument(
                f"webhook URL {url!r} must start with http:// or https://; other schemes "
                "are refused"
            )
        host = (parts.hostname or "").lower()
        if not host:
            raise InvalidArgument(f"webhook URL {url!r} has no host; write http(s)://host/path")
        if parts.username or parts.password:
            raise InvalidArgument(
                f"webhook URL for {host!r} carries credentials; pass them in headers= instead"
            )
        if host not in self.allowed_hosts:
            raise InvalidArgument(
                f"webhook host {host!r} is not in allowed_hosts {sorted(self.allowed_hosts)!r}; "
                "add it to allowed_hosts if you trust it"
            )
        if timeout <= 0:
            raise InvalidArgument(f"timeout must be positive seconds, got {timeout!r}")
        self.url = url
        self.host = host
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.timeout = float(timeout)
        self.headers = dict(headers or {})
        self.name = name or f"webhook:{host}"
        self._check_address(at_construction=True)

    def _check_address(self, *, at_construction: bool = False) -> None:
        try:
            infos = socket.getaddrinfo(self.host, self.port, proto=socket.IPPROTO_TCP)
        except OSError as exc:
            if at_construction:
                return  # checked again at delivery
            from keel.errors import Unavailable

            raise Unavailable(f"webhook host {self.host!r} does not resolve ({exc})") from exc
        for info in infos:
            address = str(info[4][0])
            if _link_local(address) and address.lower() not in self.allowed_hosts:
                raise InvalidArgument(
                    f"webhook host {self.host!r} resolves to the link-local address {address} "
                    "(cloud metadata lives there); refused. Add that address to allowed_hosts "
                    "only if you mean it"
                )

    def deliver(self, event: AlertEvent) -> None:
        import httpx

        from keel.errors import Unavailable

        self._check_address()
        headers = {"Idempotency-Key": event.id, **self.headers}
        try:
            response = httpx.post(
                self.url,
                json=event.to_dict(),
                headers=headers,
                timeout=self.timeout,
                follow_redirects=False,
            )
        except httpx.HTTPError as exc:
            raise Unavailable(f"webhook {self.host!r} unreachable: {exc}") from exc
        if not response.is_success:
            raise Unavailable(
                f"webhook {self.host!r} answered {response.status_code}; the event stays pending"
            )


class CallbackNotifier:
    """Calls ``fn(event)``, e.g. to trigger a retraining pipeline."""

    def __init__(self, fn: Callable[[AlertEvent], object], *, name: str | None = None) -> None:
        if not callable(fn):
            raise InvalidArgument(f"a callback notifier needs a callable, got {fn!r}")
        self.fn = fn
        self.name = name or f"callback:{getattr(fn, '__qualname__', type(fn).__name__)}"

    def deliver(self, event: AlertEvent) -> None:
        self.fn(event)


_CALLBACKS: dict[str, Callable[[AlertEvent], object]] = {}
_CALLBACKS_LOCK = threading.Lock()


def register_alert_callback(
    name: str, fn: Callable[[AlertEvent], object], *, replace: bool = False
) -> None:
    """Register ``fn`` under ``name`` so monitors can call it on alerts."""
    if not callable(fn):
        raise InvalidArgument(f"alert callback {name!r} must be callable, got {fn!r}")
    if not name:
        raise InvalidArgument("an alert callback needs a non-empty name")
    with _CALLBACKS_LOCK:
        if name in _CALLBACKS and not replace:
            raise AlreadyExists(
                f"alert callback {name!r} is already registered; pass replace=True to swap it"
            )
        _CALLBACKS[name] = fn


def unregister_alert_callback(name: str) -> None:
    """Forget the callback registered under ``name``."""
    with _CALLBACKS_LOCK:
        if _CALLBACKS.pop(name, None) is None:
            raise NotFound(f"no alert callback {name!r}; registered: {sorted(_CALLBACKS)!r}")


def alert_callbacks() -> dict[str, Callable[[AlertEvent], object]]:
    """A copy of the registered callbacks, by name."""
    with _CALLBACKS_LOCK:
        return dict(_CALLBACKS)


@dataclass(frozen=True)
class DeliveryResult:
    """One event sent to one notifier: ``ok``, or the ``error`` that stopped it."""

    event: AlertEvent
    notifier: str
    ok: bool
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "event": self.event.to_dict(),
            "notifier": self.notifier,
            "ok": self.ok,
            "error": self.error,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DeliveryResult:
        d = _float_dict(data, "a delivery result")
        try:
            return cls(
                event=AlertEvent.from_dict(d["event"]),
                notifier=str(d["notifier"]),
                ok=bool(d["ok"]),
                error=d.get("error"),
            )
        except KeyError as exc:
            raise InvalidArgument(f"delivery result {d!r} lacks {exc}") from exc


def _send(event: AlertEvent, notifier: Notifier, name: str) -> DeliveryResult:
    try:
        notifier.deliver(event)
    except Exception as exc:  # delivery must never break the monitor
        message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        logger.warning("alert %s not delivered to %s: %s", event.id, name, message)
        return DeliveryResult(event, name, False, str(message))
    return DeliveryResult(event, name, True)


def deliver_all(
    events: Iterable[AlertEvent], notifiers: Sequence[Notifier]
) -> list[DeliveryResult]:
    """Send every event to every notifier; never raises, one result per pair.

    Keep the failed results (``to_dict``) and pass them to ``redeliver`` next run: each
    goes again only to the notifier that missed it.
    """
    named = [(notifier_name(n), n) for n in notifiers]
    return [_send(event, n, name) for event in events for name, n in named]


def redeliver(
    failed: Iterable[DeliveryResult], notifiers: Sequence[Notifier]
) -> list[DeliveryResult]:
    """Retry failed deliveries, each to the notifier (by name) that missed it.

    Results that were ``ok`` are skipped; a notifier no longer configured gives a
    failed result again, so the caller decides when to drop it.
    """
    by_name = {notifier_name(n): n for n in notifiers}
    out: list[DeliveryResult] = []
    for result in failed:
        if result.ok:
            continue
        notifier = by_name.get(result.notifier)
        if notifier is None:
            out.append(
                replace(result, error=f"notifier {result.notifier!r} is no longer configured")
            )
        else:
            out.append(_send(result.event, notifier, result.notifier))
    return out
