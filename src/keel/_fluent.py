"""The module-level tracking API: ``keel.start_run``, ``keel.log_metric`` and friends.

A process-wide stack holds the active runs; ``start_run`` inside an active run makes
a child run. ``log_metric`` is the hot path: it validates a key once per run, checks
the value and step types, and appends to the background writer's queue.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from keel.context import get_context
from keel.core._data import DatasetRef, DatasetVersion
from keel.core._entities import Artifact, Experiment, Run, RunStatus
from keel.core._names import (
    validate_key,
    validate_metric_value,
    validate_step,
    validate_timestamp,
)
from keel.errors import InvalidArgument

if TYPE_CHECKING:
    import pandas as pd

    from keel.tracking import MetricHistory, MetricWriter, TrackingService

__all__ = [
    "ActiveRun",
    "active_run",
    "end_run",
    "flush",
    "get_metric_history",
    "get_run",
    "list_artifacts",
    "list_experiments",
    "log_artifact",
    "log_dict",
    "log_input",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "log_text",
    "search_runs",
    "set_experiment",
    "set_tag",
    "set_tags",
    "start_run",
]

_stack: list[ActiveRun] = []
_stack_lock = threading.Lock()
_experiment: str | None = None


class ActiveRun:
    """A run in progress; a context manager that ends it (FAILED on an exception)."""

    __slots__ = ("_keys", "_service", "_writer", "id", "run")

    def __init__(self, run: Run, service: TrackingService) -> None:
        self.run = run
        self.id = run.id
        self._service = service
        self._writer: MetricWriter = service.metrics
        self._keys: set[str] = set()

    @property
    def name(self) -> str:
        return self.run.name

    @property
    def experiment_id(self) -> str:
        return self.run.experiment_id

    def log_metric(
        self, key: str, value: float, step: int | None = None, timestamp: float | None = None
    ) -> None:
        if key not in self._keys:
            validate_key(key, "metric key")
            self._keys.add(key)
        if type(value) is not float:
            value = validate_metric_value(key, value)
        if step is None:
            step = 0
        elif type(step) is not int or step < 0 or step >= 9223372036854775808:
            step = validate_step(key, step)
        self._writer.add(
            (self.id, key, value, step, time.time() if timestamp is None else _stamp(timestamp))
        )

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            status = RunStatus.FINISHED
        elif issubclass(exc_type, KeyboardInterrupt):
            status = RunStatus.KILLED
        else:
            status = RunStatus.FAILED
        _end(self, status)

    def __repr__(self) -> str:
        return f"<ActiveRun id={self.id} name={self.run.name!r}>"


def _stamp(timestamp: object) -> float:
    return timestamp if type(timestamp) is float else validate_timestamp(timestamp)


def _service() -> TrackingService:
    return get_context().tracking


def set_experiment(name: str) -> Experiment:
    """Make ``name`` the experiment of later runs, creating it if needed."""
    global _experiment
    experiment = _service().experiment(name)
    _experiment = experiment.name
    return experiment


def list_experiments() -> list[Experiment]:
    return _service().list_experiments()


def start_run(
    experiment: str | None = None,
    run_name: str | None = None,
    *,
    tags: Mapping[str, Any] | None = None,
    nested: bool = True,
) -> ActiveRun:
    """Start a run (a child of the active run, if any) and make it active."""
    service = _service()
    parent = _stack[-1] if _stack and nested else None
    if parent is None and _stack:
        raise InvalidArgument(
            f"run {_stack[-1].id} is still active; end it with keel.end_run() first, "
            "or start a child run with nested=True"
        )
    if parent is not None and experiment is None:
        experiment_name = _experiment_name(service, parent)
    else:
        experiment_name = experiment or _experiment or get_context().settings.experiment
    run = service.create_run(
        experiment_name, run_name, parent_id=parent.id if parent else None, tags=tags
    )
    active = ActiveRun(run, service)
    with _stack_lock:
        _stack.append(active)
    service.metrics.start()
    return active


def _experiment_name(service: TrackingService, parent: ActiveRun) -> str:
    return service.store.get_experiment(parent.run.experiment_id).name


def active_run() -> ActiveRun | None:
    """The innermost active run, or None."""
    return _stack[-1] if _stack else None


def _require_active() -> ActiveRun:
    if not _stack:
        raise InvalidArgument(
            "no active run; wrap the logging in `with keel.start_run():` or call keel.start_run()"
        )
    return _stack[-1]


def _end(run: ActiveRun, status: RunStatus) -> None:
    with _stack_lock:
        if run in _stack:
            # Ending a parent ends its still-open children first.
            while _stack and _stack[-1] is not run:
                child = _stack.pop()
                run._service.end_run(child.id, status)
            _stack.pop()
    run._service.end_run(run.id, status)


def end_run(status: RunStatus | str = RunStatus.FINISHED) -> None:
    """End the innermost active run with ``status`` (FINISHED, FAILED or KILLED)."""
    final = RunStatus.final(status)
    if _stack:
        _end(_stack[-1], final)


def log_param(key: str, value: Any) -> None:
    _service().log_params(_require_active().id, {key: value})


def log_params(values: Mapping[str, Any]) -> None:
    _service().log_params(_require_active().id, values)


def set_tag(key: str, value: Any) -> None:
    _service().set_tags(_require_active().id, {key: value})


def set_tags(values: Mapping[str, Any]) -> None:
    _service().set_tags(_require_active().id, values)


def log_metric(
    key: str, value: float, step: int | None = None, timestamp: float | None = None
) -> None:
    """Record one point of a metric of the active run (buffered; see ``flush``)."""
    if not _stack:
        _require_active()
    _stack[-1].log_metric(key, value, step, timestamp)


def log_metrics(
    values: Mapping[str, float], step: int | None = None, timestamp: float | None = None
) -> None:
    _service().log_metrics(_require_active().id, values, step, timestamp)


def flush() -> None:
    """Write every buffered metric point; when this returns they are in the store."""
    _service().flush()


def log_artifact(local_path: str | os.PathLike[str], name: str | None = None) -> Artifact:
    """Store a file under the active run, as ``name`` (default: the file's name)."""
    path = Path(local_path)
    return _service().log_artifact(_require_active().id, path, name or path.name)


def log_text(text: str, name: str) -> Artifact:
    return _service().log_bytes(_require_active().id, text.encode("utf-8"), name)


def log_dict(data: Mapping[str, Any] | Sequence[Any], name: str) -> Artifact:
    """Store ``data`` as JSON (or YAML when ``name`` ends in .yaml/.yml)."""
    if name.endswith((".yaml", ".yml")):
        import yaml

        text = yaml.safe_dump(data, sort_keys=False)
    else:
        try:
            text = json.dumps(data, indent=2, allow_nan=True, default=str)
        except (TypeError, ValueError) as exc:
            raise InvalidArgument(f"cannot serialise {name!r} as JSON: {exc}") from exc
    return log_text(text, name)


def log_input(dataset: DatasetVersion | DatasetRef | str) -> DatasetVersion:
    """Record that the active run used a dataset version (``"credit@v3"``, a version...).

    ``keel data lineage NAME@v`` then lists the run.
    """
    run = _require_active()
    return get_context().data.log_input(run.id, dataset)


def list_artifacts(run_id: str | None = None) -> list[Artifact]:
    return _service().list_artifacts(run_id or _require_active().id)


def get_run(run_id: str) -> Run:
    return _service().get_run(run_id)


def get_metric_history(run_id: str, key: str) -> MetricHistory:
    """Every point of ``key`` logged by run ``run_id`` (steps, timestamps, values)."""
    return _service().get_metric_history(run_id, key)


def search_runs(
    experiment: str | Sequence[str] | None = None,
    filter: str | None = None,
    order_by: Sequence[str] | None = None,
    max_results: int = 1000,
    offset: int = 0,
) -> pd.DataFrame:
    """Runs matching ``filter`` as a DataFrame (``metrics.*``, ``params.*``, ``tags.*``)."""
    return _service().search_runs_frame(experiment, filter, order_by, max_results, offset)


_previous_excepthook = sys.excepthook


def _excepthook(
    exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
) -> None:
    while _stack:
        _end(_stack[-1], RunStatus.FAILED)
    _previous_excepthook(exc_type, exc, tb)


sys.excepthook = _excepthook


@atexit.register
def _end_runs_at_exit() -> None:
    while _stack:
        try:
            _end(_stack[-1], RunStatus.FINISHED)
        except Exception:
            with _stack_lock:
                if _stack:
                    _stack.pop()
