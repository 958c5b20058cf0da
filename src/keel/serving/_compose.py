"""One place that wires a serving app: runtime, metrics, prediction log, deployment hooks.

``keel serve`` (per worker) and ``keel demo`` both call :func:`serving_app`; the caller
reads configuration and passes plain values.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.core._deployments import DeploymentPolicy
from keel.errors import InvalidArgument
from keel.serving._app import ServingApp, create_app
from keel.serving._metrics import ServingMetrics
from keel.serving._model import ModelLoader
from keel.serving._predlog import PredictionLogWriter
from keel.serving._runtime import ServeOptions, ServingRuntime

if TYPE_CHECKING:
    from keel.core._deployments import Deployment
    from keel.serving._deployments import DeploymentService

__all__ = ["serving_app"]


def serving_app(
    name: str,
    loader: ModelLoader,
    *,
    policy: DeploymentPolicy | None = None,
    deployments: DeploymentService | None = None,
    options: ServeOptions | None = None,
    log_dir: Path | None = None,
) -> ServingApp:
    """The app serving deployment ``name`` (from ``deployments``) or ``policy`` under it.

    With ``deployments`` the server follows the stored policy (revision changes apply
    live) and records canary rollbacks in its history; with a bare ``policy`` it serves
    that policy, following aliases only. ``log_dir`` None turns the prediction log off.
    """
    options = options or ServeOptions()
    policy_source = on_rollback = None
    revision = 0
    if deployments is not None:
        current = deployments.get(name)
        policy, revision = current.policy, current.revision
        service = deployments

        def policy_source() -> Deployment:
            return service.get(name)

        def on_rollback(expected: int, reason: str, details: dict[str, Any]) -> None:
            service.rollback_canary(
                name, expected_revision=expected, reason=reason, details=details
            )

    if policy is None:
        raise InvalidArgument("serving_app needs a policy or a deployment service")
    metrics = ServingMetrics(name)
    predlog = None
    if log_dir is not None:
        predlog = PredictionLogWriter(
            log_dir,
            name,
            queue_size=options.log_queue,
            flush_interval=options.log_flush_interval,
            on_drop=metrics.log_dropped.labels(name).inc,
            on_error=lambda _: metrics.log_errors.labels(name).inc(),
            on_write=metrics.log_rows.labels(name).inc,
        )
    runtime = ServingRuntime(
        name,
        policy,
        loader,
        options=options,
        metrics=metrics,
        predlog=predlog,
        revision=revision,
        policy_source=policy_source,
        on_rollback=on_rollback,
    )
    return create_app(runtime)
