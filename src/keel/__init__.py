"""Keel: the machine-learning lifecycle in one install.

``import keel`` stays light: the public functions are loaded on first use, so the CLI
and scripts that only need a few of them start fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from keel._version import __version__

if TYPE_CHECKING:
    from keel._fluent import (
        ActiveRun,
        active_run,
        end_run,
        flush,
        get_metric_history,
        get_run,
        list_artifacts,
        list_experiments,
        log_artifact,
        log_dict,
        log_input,
        log_metric,
        log_metrics,
        log_param,
        log_params,
        log_text,
        search_runs,
        set_experiment,
        set_tag,
        set_tags,
        start_run,
    )
    from keel._fluent_models import (
        evaluate,
        get_model_version,
        load_model,
        log_model,
        register_model,
        search_models,
        set_alias,
        validate_model,
    )
    from keel.core._entities import Experiment, MetricPoint, Run, RunStatus
    from keel.errors import KeelError
    from keel.monitoring._detector import detect_drift

_EXPORTS: dict[str, str] = {
    "ActiveRun": "keel._fluent",
    "Experiment": "keel.core._entities",
    "KeelError": "keel.errors",
    "MetricPoint": "keel.core._entities",
    "Run": "keel.core._entities",
    "RunStatus": "keel.core._entities",
    "active_run": "keel._fluent",
    "detect_drift": "keel.monitoring._detector",
    "end_run": "keel._fluent",
    "evaluate": "keel._fluent_models",
    "flush": "keel._fluent",
    "get_metric_history": "keel._fluent",
    "get_model_version": "keel._fluent_models",
    "get_run": "keel._fluent",
    "list_artifacts": "keel._fluent",
    "list_experiments": "keel._fluent",
    "load_model": "keel._fluent_models",
    "log_artifact": "keel._fluent",
    "log_dict": "keel._fluent",
    "log_input": "keel._fluent",
    "log_metric": "keel._fluent",
    "log_metrics": "keel._fluent",
    "log_model": "keel._fluent_models",
    "log_param": "keel._fluent",
    "log_params": "keel._fluent",
    "log_text": "keel._fluent",
    "register_model": "keel._fluent_models",
    "search_models": "keel._fluent_models",
    "search_runs": "keel._fluent",
    "set_alias": "keel._fluent_models",
    "set_experiment": "keel._fluent",
    "set_tag": "keel._fluent",
    "set_tags": "keel._fluent",
    "start_run": "keel._fluent",
    "validate_model": "keel._fluent_models",
}

__all__ = [
    "ActiveRun",
    "Experiment",
    "KeelError",
    "MetricPoint",
    "Run",
    "RunStatus",
    "__version__",
    "active_run",
    "detect_drift",
    "end_run",
    "evaluate",
    "flush",
    "get_metric_history",
    "get_model_version",
    "get_run",
    "list_artifacts",
    "list_experiments",
    "load_model",
    "log_artifact",
    "log_dict",
    "log_input",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_param",
    "log_params",
    "log_text",
    "register_model",
    "search_models",
    "search_runs",
    "set_alias",
    "set_experiment",
    "set_tag",
    "set_tags",
    "start_run",
    "validate_model",
]


_SUBPACKAGES = frozenset({"data", "monitoring"})
"""Subpackages reachable as ``keel.data`` after a bare ``import keel``."""


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return importlib.import_module(f"keel.{name}")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'keel' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return __all__
