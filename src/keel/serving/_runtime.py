"""The serving runtime of one deployment: variants, hot swap, canary, shadow, logging.

Everything that happens between a decoded body and a response lives here; the HTTP
app (``_app.py``) only reads bodies and renders. A background task polls, every
``poll_interval`` seconds, the deployment's revision (policy changes) and the version
behind every alias it serves. A moved alias is loaded in a worker thread while the old
version keeps serving, then swapped in with one reference assignment: requests already
queued finish on the model they were decoded for, and none fails. The same tick checks
the canary against the primary and rolls it back (recorded in the deployment's history
with a compare-and-set on its revision, so several workers roll back once).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from keel.core._deployments import Deployment, DeploymentPolicy
from keel.errors import Conflict, KeelError, Unavailable
from keel.serving._batcher import MicroBatcher
from keel.serving._decode import Decoded
from keel.serving._memory import release_heap
from keel.serving._metrics import ServingMetrics
from keel.serving._model import ModelLoader, Prediction, ServedModel
from keel.serving._predlog import RESERVED_PREFIX, LogEntry, PredictionLogWriter
from keel.serving._router import Router, Variant, canary_verdict

__all__ = ["ServeOptions", "Served", "ServingRuntime"]

log = logging.getLogger("keel.serving")


@dataclass(frozen=True)
class ServeOptions:
    """Limits and timings of a serving process (``keel serve`` options)."""

    max_batch_rows: int = 1024
    max_wait: float = 0.002
    max_rows: int = 10_000
    max_body_bytes: int = 16 * 1024 * 1024
    poll_interval: float = 1.0
    log_queue: int = 10_000
    log_flush_interval: float = 1.0
    # Move what the first load leaves alive (modules, the model) out of the collector's
    # reach: a full collection would otherwise walk ~1M library objects, a 50-100 ms
    # pause under load. For a process that only serves (``keel serve``), never a host.
    freeze_after_load: bool = False


@dataclass(frozen=True)
class Served:
    """A request's answer: which variant and model version served it, and what it said."""

    variant: str
    model: ServedModel
    prediction: Prediction
    rows: int


RollbackHook = Callable[[int, str, dict[str, Any]], None]
PolicySource = Callable[[], Deployment]


class ServingRuntime:
    """One deployment's variants and the machinery around them."""

    def __init__(
        self,
        deployment: str,
        policy: DeploymentPolicy,
        loader: ModelLoader,
        *,
        options: ServeOptions | None = None,
        metrics: ServingMetrics | None = None,
        predlog: PredictionLogWriter | None = None,
        revision: int = 0,
        policy_source: PolicySource | None = None,
        on_rollback: RollbackHook | None = None,
    ) -> None:
        self.deployment = deployment
        self.loader = loader
        self.options = options or ServeOptions()
        self.metrics = metrics or ServingMetrics(deployment)
        self.predlog = predlog
        self.policy_source = policy_source
        self.on_rollback = on_rollback
        self.arriving = 0  # requests reading or decoding their body
        self.in_flight = 0  # requests anywhere between arrival and answer
        self.ready = False
        self.load_error: str | None = None
        self.router = self._router(policy, revision, {})
        self._poller: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._stopping = False
        self.attempted = asyncio.Event()  # set once the first load attempt has ended
        self._frozen = False

    # lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Load every variant's model (off the event loop), then mark the runtime ready."""
        try:
            for variant in self.router.variants:
                if variant.model is None:
                    variant.model = await asyncio.to_thread(self._load, variant.uri)
                    self._announce(variant, None)
            release_heap(collect=True)  # loading leaves freed buffers behind; hand them back
            if self.options.freeze_after_load and not self._frozen:
                import gc

                gc.freeze()
                self._frozen = True
        except Exception as error:
            self.load_error = (
                error.message
                if isinstance(error, KeelError)
                else f"{type(error).__name__}: {error}"
            )
            raise
        self.load_error = None
        self.ready = True
        self._poller = asyncio.get_running_loop().create_task(self._poll_forever())

    async def start_in_background(self, retry_every: float = 5.0) -> None:
        """``start`` until it succeeds, logging each failure; ``/ready`` says 503 meanwhile."""
        while not self._stopping:
            try:
                await self.start()
                self.attempted.set()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                self.attempted.set()
                log.error(
                    "deployment %r could not load its models: %s; retrying in %gs",
                    self.deployment,
                    self.load_error,
                    retry_every,
                )
                await asyncio.sleep(retry_every)

    async def stop(self) -> None:
        self._stopping = True
        if self._poller is not None:
            self._poller.cancel()
        for task in list(self._background):
            task.cancel()
        for variant in self.router.variants:
            await asyncio.to_thread(variant.batcher.close)
        if self.predlog is not None:
            await asyncio.to_thread(self.predlog.close)

    def _load(self, uri: str) -> ServedModel:
        model = self.loader.load(uri)
        reserved = [n for n in model.decoder.names if n.startswith(RESERVED_PREFIX)]
        if reserved and self.predlog is not None:
            raise KeelError(
                f"{uri} takes input column(s) {reserved} whose names start with the prediction "
                f"log's reserved prefix {RESERVED_PREFIX!r}; rename them, or serve with "
                "--no-log"
            )
        return model

    def _announce(self, variant: Variant, old: ServedModel | None) -> None:
        model = variant.model
        assert model is not None
        if old is not None:
            self._serving(variant.name, old, False)
            self.metrics.swaps.labels(self.deployment, variant.name).inc()
        self._serving(variant.name, model, True)

    def _serving(self, variant: str, model: ServedModel, now: bool) -> None:
        """Set ``keel_model_info`` for ``model`` in ``variant``: 1 while it serves, else 0."""
        label = model.name or model.source
        self.metrics.model_info.labels(self.deployment, variant, label, model.label).set(int(now))

    def _router(
        self, policy: DeploymentPolicy, revision: int, keep: dict[tuple[str, str, str], Variant]
    ) -> Router:
        def variant(name: str, uri: str, role: str, share: float) -> Variant:
            found = keep.get((name, uri, role))
            if found is not None:
                found.share = share
                return found
            batcher = MicroBatcher(
                max_batch_rows=self.options.max_batch_rows,
                max_wait=self.options.max_wait,
                arriving=lambda: self.arriving,
                in_flight=lambda: self.in_flight,
                on_batch=functools.partial(self.metrics.observe_batch, name),
                name=f"{self.deployment}-{name}",
            )
            return Variant(name, uri, role, share, batcher)

        routes = [variant(r.name, r.model, "route", r.weight) for r in policy.routes]
        canary = None
        if policy.canary is not None:
            canary = variant(
                policy.canary.name, policy.canary.model, "canary", policy.canary.percent
            )
        shadow = None
        if policy.shadow is not None:
            shadow = variant(policy.shadow_name, policy.shadow, "shadow", 0.0)
        return Router(policy, revision, routes, canary, shadow)

    # predicting -----------------------------------------------------------------------

    def pick(self, key: str | None) -> tuple[Variant, ServedModel]:
        """The variant (and its current model) that serves a request with ``key``."""
        if not self.ready:
            raise Unavailable(
                f"deployment {self.deployment!r} is still loading its model; retry when "
                "GET /ready answers 200"
            )
        variant = self.router.pick(key)
        assert variant.model is not None
        return variant, variant.model

    async def predict(
        self,
        variant: Variant,
        model: ServedModel,
        decoded: Decoded,
        *,
        request_id: str,
        started: float,
        body: bytes | None = None,
        endpoint: str = "predict",
    ) -> Served:
        """Predict ``decoded`` on ``variant``; log it; copy it to the shadow if any."""
        try:
            prediction = await variant.batcher.submit(model, decoded)
        except Exception:
            variant.stats.record(False, time.perf_counter() - started)
            raise
        elapsed = time.perf_counter() - started
        variant.stats.record(True, elapsed)
        self._log(variant.name, model, decoded, prediction, request_id, elapsed)
        shadow = self.router.shadow
        if shadow is not None and body is not None and shadow.model is not None:
            task = asyncio.get_running_loop().create_task(
                self._shadow(shadow, body, endpoint, request_id)
            )
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        return Served(variant.name, model, prediction, decoded.rows)

    async def _shadow(self, shadow: Variant, body: bytes, endpoint: str, request_id: str) -> None:
        model = shadow.model
        assert model is not None
        started = time.perf_counter()
        try:
            decoded = model.decoder.decode_body(body, endpoint=endpoint)
            prediction = await shadow.batcher.submit(model, decoded)
        except Exception as error:
            shadow.stats.record(False, time.perf_counter() - started)
            self.metrics.shadow_errors.labels(self.deployment, shadow.name).inc()
            log.debug("shadow %s failed on request %s: %s", shadow.name, request_id, error)
            return
        elapsed = time.perf_counter() - started
        shadow.stats.record(True, elapsed)
        self._log(shadow.name, model, decoded, prediction, request_id, elapsed)

    def _log(
        self,
        variant: str,
        model: ServedModel,
        decoded: Decoded,
        prediction: Prediction,
        request_id: str,
        elapsed: float,
    ) -> None:
        classes = model.classes
        self.metrics.observe_predictions(model.label, prediction.labels, classes is not None)
        if self.predlog is None:
            return
        self.predlog.append(
            LogEntry(
                timestamp=time.time(),
                request_id=request_id,
                variant=variant,
                model_version=model.label,
                latency_seconds=elapsed,
                features=decoded.matrix if decoded.matrix is not None else decoded.frame,
                columns=model.log_columns,
                labels=prediction.labels,
                proba=prediction.proba,
                classes=classes,
            )
        )

    # background: hot swap, policy changes, canary -------------------------------------

    async def _poll_forever(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self.options.poll_interval)
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the next tick tries again; serving goes on
                log.warning("deployment %r: refresh failed: %s", self.deployment, error)

    async def refresh(self) -> None:
        """One poll: pick up a policy change, moved aliases, and judge the canary."""
        if self.policy_source is not None:
            current = await asyncio.to_thread(self.policy_source)
            if current.revision != self.router.revision:
                await self._apply_policy(current.policy, current.revision)
        for variant in self.router.variants:
            model = variant.model
            if model is None or not variant.uri.startswith("models:/") or "@" not in variant.uri:
                continue
            source = await asyncio.to_thread(self.loader.current, variant.uri)
            if source != model.source:
                new = await asyncio.to_thread(self._load, variant.uri)
                variant.model = new  # the swap: one reference assignment
                self._announce(variant, model)
                log.info(
                    "deployment %r: %s now serves %s (was %s)",
                    self.deployment,
                    variant.name,
                    new.label,
                    model.label,
                )
        await self._judge_canary()

    async def _apply_policy(self, policy: DeploymentPolicy, revision: int) -> None:
        old = self.router
        keep = {(v.name, v.uri, v.role): v for v in old.variants}
        router = self._router(policy, revision, keep)
        for variant in router.variants:
            if variant.model is None:
                variant.model = await asyncio.to_thread(self._load, variant.uri)
                self._announce(variant, None)
        self.router = router
        log.info(
            "deployment %r: policy revision %d applied (%s)", self.deployment, revision, policy.mode
        )
        retired = [v for v in old.variants if v not in router.variants]
        for variant in retired:
            if variant.model is not None:
                self._serving(variant.name, variant.model, False)
            await asyncio.to_thread(variant.batcher.close)

    async def _judge_canary(self) -> None:
        router = self.router
        canary, policy = router.canary, router.policy.canary
        if canary is None or policy is None:
            return
        verdict = canary_verdict(policy, router.routes[0].stats, canary.stats)
        if verdict is None:
            return
        serving = canary.model.label if canary.model else canary.uri
        reason = f"canary {canary.name} ({serving}): {verdict}"
        log.warning("deployment %r: rolling back the canary: %s", self.deployment, reason)
        self.metrics.canary_rollbacks.labels(self.deployment).inc()
        self.router = Router(
            router.policy.without_canary(), router.revision, router.routes, None, router.shadow
        )
        if self.on_rollback is not None:
            details = {
                "canary": canary.name,
                "error_rate": canary.stats.error_rate(),
                "primary_error_rate": router.routes[0].stats.error_rate(),
                "p95_seconds": canary.stats.p95(),
                "primary_p95_seconds": router.routes[0].stats.p95(),
            }
            with contextlib.suppress(Conflict):  # another worker recorded it first
                await asyncio.to_thread(self.on_rollback, router.revision, reason, details)
