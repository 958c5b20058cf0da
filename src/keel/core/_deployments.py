"""Deployments as plain values: an endpoint's traffic policy over model versions.

A policy routes live traffic to one or more *routes* by weight (one route: a single
version; several: an A/B split), optionally sends a percentage to a *canary* that is
rolled back automatically when it does worse than the primary route, and optionally
copies every request to a *shadow* whose predictions are logged and never returned.
Models are named by URI (``models:/credit@champion``, ``models:/credit/3`` or
``runs:/<id>/model``); an alias URI follows the alias when it moves (hot swap).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from keel.core._models import ModelURI
from keel.errors import InvalidArgument

__all__ = [
    "CanaryPolicy",
    "Deployment",
    "DeploymentEvent",
    "DeploymentPolicy",
    "Route",
    "deployment_name_for",
    "validate_deployment_name",
]

_DEPLOYMENT_RE = re.compile(r"^[a-z][a-z0-9_\-]{0,62}$")
_VARIANT_RE = re.compile(r"^[a-z][a-z0-9_\-]{0,31}$")


def validate_deployment_name(name: object) -> str:
    """A deployment name: a lowercase letter, then up to 62 of ``a-z 0-9 _ -``."""
    if not isinstance(name, str) or not _DEPLOYMENT_RE.match(name):
        raise InvalidArgument(
            f"invalid deployment name {name!r}: start with a lowercase letter, then up to "
            "62 lowercase letters, digits, '_' or '-', e.g. 'credit'"
        )
    return name


def deployment_name_for(uri: str) -> str:
    """The name a model served without a stored deployment goes by (metrics, log).

    ``models:/Credit.Model@champion`` -> ``credit-model``; ``runs:/<id>/model`` ->
    ``run-<first 8 hex digits>``.
    """
    parsed = ModelURI.parse(uri)
    base = parsed.name if parsed.name is not None else f"run-{(parsed.run_id or '')[:8]}"
    clean = re.sub(r"[^a-z0-9_\-]", "-", base.lower()).strip("-_") or "model"
    if not clean[0].isalpha():
        clean = "m-" + clean
    return validate_deployment_name(clean[:63])


def _variant_name(name: object) -> str:
    if not isinstance(name, str) or not _VARIANT_RE.match(name):
        raise InvalidArgument(
            f"invalid variant name {name!r}: start with a lowercase letter, then up to 31 "
            "lowercase letters, digits, '_' or '-', e.g. 'challenger'"
        )
    return name


def _model_uri(value: object, where: str) -> str:
    try:
        return str(ModelURI.parse(value))
    except InvalidArgument as error:
        raise InvalidArgument(f"{where}: {error}") from None


def _number(value: object, where: str, low: float, high: float, *, open_low: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidArgument(f"{where} must be a number, got {value!r}")
    number = float(value)
    if number < low or (open_low and number == low) or number > high:
        bound = "(" if open_low else "["
        raise InvalidArgument(f"{where} must be in {bound}{low:g}, {high:g}], got {number:g}")
    return number


@dataclass(frozen=True)
class Route:
    """A variant that receives ``weight`` parts of the live traffic."""

    model: str
    weight: float = 1.0
    name: str = "primary"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "model": self.model, "weight": self.weight}


@dataclass(frozen=True)
class CanaryPolicy:
    """A version on probation: ``percent`` of traffic, rolled back when it does worse.

    Rolled back when, over at least ``min_requests`` requests to each side, its error
    rate exceeds the primary's by more than ``max_error_rate_increase`` (absolute) or
    its p95 latency exceeds the primary's times ``max_latency_ratio``.
    """

    model: str
    percent: float
    max_error_rate_increase: float = 0.01
    max_latency_ratio: float = 2.0
    min_requests: int = 100
    name: str = "canary"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model": self.model,
            "percent": self.percent,
            "max_error_rate_increase": self.max_error_rate_increase,
            "max_latency_ratio": self.max_latency_ratio,
            "min_requests": self.min_requests,
        }


@dataclass(frozen=True)
class DeploymentPolicy:
    """Where a deployment's requests go: weighted routes, a canary, a shadow."""

    routes: tuple[Route, ...]
    canary: CanaryPolicy | None = None
    shadow: str | None = None  # model URI that receives a copy of every request
    shadow_name: str = "shadow"

    def __post_init__(self) -> None:
        if not self.routes:
            raise InvalidArgument("a deployment needs at least one model; pass --model URI")
        names = [r.name for r in self.routes]
        if self.canary is not None:
            names.append(self.canary.name)
        if self.shadow is not None:
            names.append(self.shadow_name)
        duplicate = sorted({n for n in names if names.count(n) > 1})
        if duplicate:
            raise InvalidArgument(
                f"variant name(s) {duplicate} are used twice; give each route, the canary "
                "and the shadow its own name"
            )

    @property
    def mode(self) -> str:
        """``single``, ``ab`` or ``canary``, with ``+shadow`` when a shadow is set."""
        base = "canary" if self.canary else ("ab" if len(self.routes) > 1 else "single")
        return base + ("+shadow" if self.shadow else "")

    def models(self) -> dict[str, str]:
        """Every variant's model URI by variant name (routes, canary, shadow)."""
        out = {r.name: r.model for r in self.routes}
        if self.canary is not None:
            out[self.canary.name] = self.canary.model
        if self.shadow is not None:
            out[self.shadow_name] = self.shadow
        return out

    def without_canary(self) -> DeploymentPolicy:
        return DeploymentPolicy(self.routes, None, self.shadow, self.shadow_name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "routes": [r.to_dict() for r in self.routes],
            "canary": None if self.canary is None else self.canary.to_dict(),
            "shadow": None
            if self.shadow is None
            else {"name": self.shadow_name, "model": self.shadow},
        }

    @classmethod
    def single(cls, model: str) -> DeploymentPolicy:
        return cls.from_dict({"routes": [{"model": model}]})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DeploymentPolicy:
        """A policy from its JSON form, every field checked; errors name the field."""
        if not isinstance(data, Mapping):
            raise InvalidArgument(f"a deployment policy must be an object, got {data!r}")
        raw_routes = data.get("routes")
        if not isinstance(raw_routes, list | tuple) or not raw_routes:
            raise InvalidArgument("policy.routes must be a non-empty list of {model, weight}")
        routes = []
        for i, raw in enumerate(raw_routes):
            if not isinstance(raw, Mapping):
                raise InvalidArgument(f"policy.routes[{i}] must be an object with 'model'")
            default = "primary" if i == 0 else f"variant-{i + 1}"
            routes.append(
                Route(
                    model=_model_uri(raw.get("model"), f"policy.routes[{i}].model"),
                    weight=_number(raw.get("weight", 1.0), f"policy.routes[{i}].weight", 0, 1e6),
                    name=_variant_name(raw.get("name", default)),
                )
            )
        canary = None
        raw_canary = data.get("canary")
        if raw_canary is not None:
            if not isinstance(raw_canary, Mapping):
                raise InvalidArgument("policy.canary must be an object with 'model' and 'percent'")
            min_requests = raw_canary.get("min_requests", 100)
            if (
                isinstance(min_requests, bool)
                or not isinstance(min_requests, int)
                or min_requests < 1
            ):
                raise InvalidArgument(
                    f"policy.canary.min_requests must be a positive integer, got {min_requests!r}"
                )
            canary = CanaryPolicy(
                model=_model_uri(raw_canary.get("model"), "policy.canary.model"),
                percent=_number(raw_canary.get("percent"), "policy.canary.percent", 0, 100),
                max_error_rate_increase=_number(
                    raw_canary.get("max_error_rate_increase", 0.01),
                    "policy.canary.max_error_rate_increase",
                    0,
                    1,
                    open_low=False,
                ),
                max_latency_ratio=_number(
                    raw_canary.get("max_latency_ratio", 2.0),
                    "policy.canary.max_latency_ratio",
                    1,
                    1e3,
                    open_low=False,
                ),
                min_requests=min_requests,
                name=_variant_name(raw_canary.get("name", "canary")),
            )
        shadow = None
        shadow_name = "shadow"
        raw_shadow = data.get("shadow")
        if raw_shadow is not None:
            if isinstance(raw_shadow, str):
                raw_shadow = {"model": raw_shadow}
            if not isinstance(raw_shadow, Mapping):
                raise InvalidArgument("policy.shadow must be a model URI or {name, model}")
            shadow = _model_uri(raw_shadow.get("model"), "policy.shadow.model")
            shadow_name = _variant_name(raw_shadow.get("name", "shadow"))
        return cls(tuple(routes), canary, shadow, shadow_name)


@dataclass(frozen=True)
class Deployment:
    """A named endpoint and its current policy; ``revision`` counts policy changes."""

    id: str
    name: str
    policy: DeploymentPolicy
    revision: int
    created_at: float
    updated_at: float
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "revision": self.revision,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "description": self.description,
            "policy": self.policy.to_dict(),
        }


@dataclass(frozen=True)
class DeploymentEvent:
    """One entry of a deployment's append-only history of policy changes."""

    revision: int
    kind: str  # "create", "update", "rollback"
    policy: DeploymentPolicy
    at: float
    actor: str | None = None
    reason: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "revision": self.revision,
            "kind": self.kind,
            "at": self.at,
            "actor": self.actor,
            "reason": self.reason,
            "details": dict(self.details),
            "policy": self.policy.to_dict(),
        }
