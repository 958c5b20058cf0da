"""The serving process: what ``keel serve`` execs into once its arguments are checked.

    python -m keel._server --host 127.0.0.1 --port 8000 [--workers N]

It serves what ``KEEL_SERVE_TARGET`` names (a model URI, optionally ``#name``, or
``deployment:NAME``) with the ``KEEL_SERVE_*`` limits; every uvicorn worker builds its app
with :func:`app_from_environment`. A separate entry point keeps the command line's
modules (Typer, Click, the CLI's commands) and whatever the argument check loaded out of
the server's memory: ``keel serve`` checks the target, then replaces itself with this
module (same process id, so signals and supervisors see one process).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidArgument

if TYPE_CHECKING:
    from keel.config import Settings
    from keel.context import Context
    from keel.serving._app import ServingApp

__all__ = [
    "DEPLOYMENT_PREFIX",
    "app_from_environment",
    "build_app",
    "check_target",
    "main",
    "optimization_wanted",
    "optimized_bytecode_ready",
    "server_command",
    "server_process_defaults",
]

DEPLOYMENT_PREFIX = "deployment:"


def server_process_defaults() -> None:
    """Defaults for a serving process, set before NumPy loads; a user's values win.

    One BLAS thread: a server handles concurrency by batching requests, and BLAS threads
    competing with the request loop raise tail latency. Two malloc arenas: glibc's
    default of eight per core lets worker threads each hold freed memory, and Arrow's
    own allocator keeps what the prediction log freed; both showed as resident-set
    growth under load. A fixed 64 KiB mmap threshold: glibc otherwise raises the
    threshold after the first large block is freed, so later request arrays and log
    buffers come from the heap and leave it fragmented (~14 MiB that ``malloc_trim``
    could not hand back after a minute of 1,000-row requests); mapped blocks go back to
    the system when freed.
    """
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MALLOC_ARENA_MAX", "2")
    os.environ.setdefault("MALLOC_MMAP_THRESHOLD_", str(64 * 1024))
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    try:  # this process is already running: tell glibc directly (spawned workers read env)
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-8, int(os.environ["MALLOC_ARENA_MAX"]))  # M_ARENA_MAX
        libc.mallopt(-3, int(os.environ["MALLOC_MMAP_THRESHOLD_"]))  # M_MMAP_THRESHOLD
    except (OSError, AttributeError, ValueError):
        pass  # not glibc: nothing to tune


def server_command(
    settings: Settings, *, host: str, port: int, workers: int, bytecode: bool | None = None
) -> list[str]:
    """The command line of the serving process for ``settings``.

    ``-OO`` (no docstrings, no asserts) saves ~18 MiB per worker. Models in the safe
    formats carry no user code, so nothing of theirs can rely on an assert; pickle models
    can, so a server that may load one runs unoptimized, as does
    ``KEEL_SERVE_OPTIMIZE=false``. ``-OO`` also needs its own bytecode: ``bytecode``
    (default: :func:`optimized_bytecode_ready`) says whether the interpreter has it or
    may write it; without it every start would compile SciPy, scikit-learn and pandas
    from source (seconds, each time), so the server runs unoptimized instead.
    """
    wanted = optimization_wanted(settings)
    if wanted and bytecode is None:
        bytecode = optimized_bytecode_ready()
    flags = ["-OO"] if wanted and bytecode else []
    args = ["--host", host, "--port", str(port), "--workers", str(workers)]
    return [sys.executable, *flags, "-m", "keel._server", *args]


def optimization_wanted(settings: Settings) -> bool:
    """Whether ``settings`` ask for ``-OO``: optimisation on, and no pickle model allowed."""
    return settings.serve_optimize and not settings.serve_allow_pickle


_HEAVY_PACKAGES = ("scipy", "sklearn", "pandas")


def optimized_bytecode_ready(
    packages: tuple[str, ...] = _HEAVY_PACKAGES, *, can_write: bool | None = None
) -> bool:
    """Whether a ``-OO`` interpreter would start from cached bytecode: the packages'
    ``.opt-2.pyc`` files exist, or bytecode may be written (only the first start then
    compiles). ``pip install`` writes plain ``.pyc`` files only; with
    ``PYTHONDONTWRITEBYTECODE`` set (common in containers) and no ``-OO`` bytecode,
    every start would compile from source.
    """
    import importlib.util

    writable = not sys.dont_write_bytecode if can_write is None else can_write
    for package in packages:
        spec = importlib.util.find_spec(package)
        if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
            continue
        cached = importlib.util.cache_from_source(spec.origin, optimization=2)
        compiled = os.path.exists(cached)
        if not compiled and not (writable and os.access(os.path.dirname(spec.origin), os.W_OK)):
            return False
    return True


def check_target(context: Context, settings: Settings) -> None:
    """Fail now, with the cause, if ``settings.serve_target`` cannot be served."""
    target = settings.serve_target
    if target.startswith(DEPLOYMENT_PREFIX):
        context.deployments.get(target[len(DEPLOYMENT_PREFIX) :])
        return
    _loader(context, settings).load(target.partition("#")[0])


def _loader(context: Context, settings: Settings) -> Any:
    from keel.serving import ModelLoader

    return ModelLoader(
        context.registry,
        context.models,
        max_rows=settings.serve_max_rows,
        allow_pickle=settings.serve_allow_pickle,
    )


def build_app(
    context: Context, settings: Settings, *, freeze_after_load: bool = False
) -> ServingApp:
    """The serving app for ``settings.serve_target`` over ``context``'s stores.

    ``freeze_after_load`` is for a process that does nothing but serve (see
    ``ServeOptions``).
    """
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
        freeze_after_load=freeze_after_load,
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

    return build_app(get_context(), load_settings(), freeze_after_load=True)


def main(argv: list[str] | None = None) -> None:
    """Run uvicorn with :func:`app_from_environment` as the app factory."""
    parser = argparse.ArgumentParser(prog="python -m keel._server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    server_process_defaults()
    import uvicorn

    if args.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="keel-metrics-")
    uvicorn.run(
        "keel._server:app_from_environment",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
