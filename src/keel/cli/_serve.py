"""``keel serve``: a model or a deployment behind a REST endpoint (uvicorn workers).

Options become ``KEEL_SERVE_*`` variables so that every uvicorn worker, which builds its
app with :func:`app_from_environment`, serves the same thing with the same limits.
"""

from __future__ import annotations

import os
import tempfile
from typing import TYPE_CHECKING, Annotated, Any

import typer

from keel.cli._output import errors_reported
from keel.errors import InvalidArgument

if TYPE_CHECKING:
    from keel.config import Settings
    from keel.context import Context
    from keel.serving._app import ServingApp

__all__ = ["app_from_environment", "build_app", "serve"]

DEPLOYMENT_PREFIX = "deployment:"


def serve(
    model: Annotated[
        str | None,
        typer.Argument(help="Model URI: models:/NAME@ALIAS, models:/NAME/3 or runs:/<id>/model."),
    ] = None,
    deployment: Annotated[
        str | None,
        typer.Option(
            "--deployment", "-d", help="Serve a deployment made with `keel deploy create`."
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option("--name", help="Name for an ad-hoc model's prediction log and metrics."),
    ] = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    max_rows: Annotated[
        int | None, typer.Option(min=1, help="Rows per request (413 above).")
    ] = None,
    max_body_bytes: Annotated[
        int | None, typer.Option(min=1, help="Body bytes per request (413 above).")
    ] = None,
    max_batch_rows: Annotated[
        int | None, typer.Option(min=1, help="Rows per micro-batched predict call.")
    ] = None,
    max_wait_ms: Annotated[
        float | None, typer.Option(min=0, max=1000, help="Longest wait to fill a batch (ms).")
    ] = None,
    no_log: Annotated[
        bool, typer.Option("--no-log", help="Do not write the prediction log.")
    ] = False,
    allow_pickle: Annotated[
        bool, typer.Option("--allow-pickle", help="Allow pickle-format model packages.")
    ] = False,
) -> None:
    """Serve a registered model or a deployment over HTTP (POST /predict, /invocations)."""
    with errors_reported():
        target = _target(model, deployment, name)
        env = {"KEEL_SERVE_TARGET": target}
        for key, value in (
            ("KEEL_SERVE_MAX_ROWS", max_rows),
            ("KEEL_SERVE_MAX_BODY_BYTES", max_body_bytes),
            ("KEEL_SERVE_MAX_BATCH_ROWS", max_batch_rows),
            ("KEEL_SERVE_MAX_WAIT_MS", max_wait_ms),
        ):
            if value is not None:
                env[key] = str(value)
        if no_log:
            env["KEEL_SERVE_LOG"] = "false"
        if allow_pickle:
            env["KEEL_SERVE_ALLOW_PICKLE"] = "true"
        os.environ.update(env)
        _server_process_defaults()
        from keel.config import load_settings
        from keel.context import get_context

        _check_target(get_context(), load_settings())  # fail here, not in every worker
    import uvicorn

    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="keel-metrics-")
    typer.echo(f"serving {target} on http://{host}:{port} ({workers} worker(s)); docs at /docs")
    uvicorn.run(
        "keel.cli._serve:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=10,
    )


def _server_process_defaults() -> None:
    """Defaults for a serving process, set before NumPy loads; a user's values win.

    One BLAS thread: a server handles concurrency by batching requests, and BLAS threads
    competing with the request loop raise tail latency. Two malloc arenas: glibc's
    default of eight per core lets worker threads each hold freed memory, and Arrow's
    own allocator keeps what the prediction log freed; both showed as resident-set
    growth under load.
    """
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MALLOC_ARENA_MAX", "2")
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    try:  # this process is already running: tell glibc directly (spawned workers read env)
        import ctypes

        ctypes.CDLL("libc.so.6").mallopt(-8, int(os.environ["MALLOC_ARENA_MAX"]))  # M_ARENA_MAX
    except (OSError, AttributeError, ValueError):
        pass  # not glibc: nothing to tune


def _target(model: str | None, deployment: str | None, name: str | None) -> str:
    if (model is None) == (deployment is None):
        raise InvalidArgument(
            "name what to serve: a model URI (keel serve models:/credit@champion) or a "
            "deployment (keel serve --deployment credit), not both"
        )
    if deployment is not None:
        from keel.core._deployments import validate_deployment_name

        return DEPLOYMENT_PREFIX + validate_deployment_name(deployment)
    from keel.core._models import ModelURI

    uri = str(ModelURI.parse(model))
    if name is not None:
        from keel.core._deployments import validate_deployment_name

        validate_deployment_name(name)
        return f"{uri}#{name}"
    return uri


def _check_target(context: Context, settings: Settings) -> None:
    target = settings.serve_target
    if target.startswith(DEPLOYMENT_PREFIX):
        context.deployments.get(target[len(DEPLOYMENT_PREFIX) :])
        return
    uri = target.partition("#")[0]
    loader = _loader(context, settings)
    loader.load(uri)


def _loader(context: Context, settings: Settings) -> Any:
    from keel.serving import ModelLoader

    return ModelLoader(
        context.registry,
        context.models,
        max_rows=settings.serve_max_rows,
        allow_pickle=settings.serve_allow_pickle,
    )


def build_app(context: Context, settings: Settings) -> ServingApp:
    """The serving app for ``settings.serve_target`` over ``context``'s stores."""
    from keel.core._deployments import DeploymentPolicy, deployment_name_for
    from keel.serving import ServeOptions, serving_app

    target = settings.serve_target
    if not target:
        raise InvalidArgument("KEEL_SERVE_TARGET is empty; start servers with `keel serve`")
    options = ServeOptions(
        max_batch_rows=settings.serve_max_batch_rows,
        max_wait=settings.serve_max_wait_ms / 1000.0,
        max_rows=settings.serve_max_rows,
        max_body_bytes=settings.serve_max_body_bytes,
        poll_interval=settings.serve_poll_interval,
    )
    log_dir = settings.prediction_log_dir if settings.serve_log else None
    loader = _loader(context, settings)
    if target.startswith(DEPLOYMENT_PREFIX):
        name = target[len(DEPLOYMENT_PREFIX) :]
        return serving_app(
            name, loader, deployments=context.deployments, options=options, log_dir=log_dir
        )
    uri, _, name = target.partition("#")
    policy = DeploymentPolicy.single(uri)
    return serving_app(
        name or deployment_name_for(uri), loader, policy=policy, options=options, log_dir=log_dir
    )


def app_from_environment() -> ServingApp:
    """uvicorn's app factory: what ``KEEL_SERVE_TARGET`` names, with ``KEEL_*`` settings."""
    from keel.config import load_settings
    from keel.context import get_context

    return build_app(get_context(), load_settings())
