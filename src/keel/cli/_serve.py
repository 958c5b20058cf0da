"""``keel serve``: a model or a deployment behind a REST endpoint (uvicorn workers).

Options become ``KEEL_SERVE_*`` variables; once the target is checked, the command
replaces itself with the serving process (:mod:`keel._server`), where every uvicorn
worker builds its app from those variables.
"""

from __future__ import annotations

import os
import sys
import sysconfig
from typing import Annotated

import typer

from keel._server import DEPLOYMENT_PREFIX
from keel.cli._output import errors_reported
from keel.errors import InvalidArgument

__all__ = ["serve"]


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
    no_optimize: Annotated[
        bool,
        typer.Option(
            "--no-optimize", help="Run the server without python -OO (keeps asserts, docs)."
        ),
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
        if no_optimize:
            env["KEEL_SERVE_OPTIMIZE"] = "false"
        os.environ.update(env)
        from keel._server import (
            check_target,
            optimization_wanted,
            server_command,
            server_process_defaults,
        )

        server_process_defaults()
        from keel.config import load_settings
        from keel.context import get_context

        settings = load_settings()
        check_target(get_context(), settings)  # fail here, not in every worker
    typer.echo(f"serving {target} on http://{host}:{port} ({workers} worker(s)); docs at /docs")
    sys.stdout.flush()
    sys.stderr.flush()
    # A fresh interpreter: the server keeps none of the CLI's modules or the check's load.
    argv = server_command(settings, host=host, port=port, workers=workers)
    if optimization_wanted(settings) and "-OO" not in argv:
        typer.echo(
            "note: serving without -OO: there is no optimized bytecode and it cannot be "
            "written (PYTHONDONTWRITEBYTECODE or a read-only install); run "
            f"`{sys.executable} -OO -m compileall -q -j0 {sysconfig.get_paths()['purelib']}` "
            "once to save ~18 MiB per worker",
            err=True,
        )
    os.execv(argv[0], argv)  # noqa: S606


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
