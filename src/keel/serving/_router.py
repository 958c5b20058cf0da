"""Traffic routing between a deployment's variants, and the canary's health check.

Assignment maps a request to a point ``u`` in [0, 1): a hash of the request key when
one is given (so the same key always lands on the same variant, in every worker), else
a random draw. The canary takes ``u < percent/100``; the rest is rescaled and split
between the routes by weight.
"""

from __future__ import annotations

import random
import zlib
from collections import deque
from dataclasses import dataclass, field

from keel.core._deployments import CanaryPolicy, DeploymentPolicy
from keel.serving._batcher import MicroBatcher
from keel.serving._model import ServedModel

__all__ = ["Router", "Variant", "VariantStats", "canary_verdict"]

STATS_WINDOW = 2000


@dataclass
class VariantStats:
    """Recent outcomes of a variant: model failures and latencies, newest last."""

    outcomes: deque[tuple[bool, float]] = field(default_factory=lambda: deque(maxlen=STATS_WINDOW))

    def record(self, ok: bool, seconds: float) -> None:
        self.outcomes.append((ok, seconds))

    @property
    def count(self) -> int:
        return len(self.outcomes)

    def error_rate(self) -> float:
        if not self.outcomes:
            return 0.0
        return sum(1 for ok, _ in self.outcomes if not ok) / len(self.outcomes)

    def p95(self) -> float:
        latencies = sorted(s for ok, s in self.outcomes if ok)
        if not latencies:
            return 0.0
        return latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))]


@dataclass
class Variant:
    """One model a deployment sends traffic to, with its batcher and recent outcomes."""

    name: str
    uri: str
    role: str  # "route", "canary" or "shadow"
    share: float  # route weight, canary percent; unused for the shadow
    batcher: MicroBatcher
    model: ServedModel | None = None
    stats: VariantStats = field(default_factory=VariantStats)


class Router:
    """Picks the variant of each request from a policy's routes and canary."""

    def __init__(
        self,
        policy: DeploymentPolicy,
        revision: int,
        routes: list[Variant],
        canary: Variant | None,
        shadow: Variant | None,
    ) -> None:
        self.policy = policy
        self.revision = revision
        self.routes = routes
        self.canary = canary
        self.shadow = shadow
        total = sum(v.share for v in routes)
        self._bounds: list[float] = []
        acc = 0.0
        for v in routes:
            acc += v.share / total
            self._bounds.append(acc)
        self._canary_share = (canary.share / 100.0) if canary is not None else 0.0

    @property
    def variants(self) -> list[Variant]:
        out = list(self.routes)
        if self.canary is not None:
            out.append(self.canary)
        if self.shadow is not None:
            out.append(self.shadow)
        return out

    def pick(self, key: str | None) -> Variant:
        if len(self.routes) == 1 and self.canary is None:
            return self.routes[0]
        u = _point(key)
        if self.canary is not None:
            if u < self._canary_share:
                return self.canary
            u = (u - self._canary_share) / (1.0 - self._canary_share)
        for variant, bound in zip(self.routes, self._bounds, strict=True):
            if u < bound:
                return variant
        return self.routes[-1]


def _point(key: str | None) -> float:
    if key is None:
        return random.random()  # noqa: S311 - traffic splitting, not security
    return zlib.crc32(key.encode("utf-8", "surrogatepass")) / 2**32


def canary_verdict(
    canary: CanaryPolicy, primary: VariantStats, candidate: VariantStats
) -> str | None:
    """Why the canary must be rolled back, or None while it is no worse than allowed."""
    if primary.count < canary.min_requests or candidate.count < canary.min_requests:
        return None
    errors, baseline = candidate.error_rate(), primary.error_rate()
    if errors - baseline > canary.max_error_rate_increase:
        return (
            f"error rate {errors:.1%} exceeds the primary's {baseline:.1%} by more than "
            f"{canary.max_error_rate_increase:.1%}"
        )
    p95, base_p95 = candidate.p95(), primary.p95()
    if base_p95 > 0 and p95 > base_p95 * canary.max_latency_ratio:
        return (
            f"p95 latency {p95 * 1000:.1f} ms exceeds the primary's {base_p95 * 1000:.1f} ms "
            f"times {canary.max_latency_ratio:g}"
        )
    return None
