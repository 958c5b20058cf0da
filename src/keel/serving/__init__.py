"""Model serving: REST endpoint, micro-batching, traffic policies, prediction log, metrics.

``create_app(ServingRuntime(...))`` is the ASGI app ``keel serve`` runs; the runtime
routes each request to a variant of the deployment's policy, groups concurrent requests
into one ``predict`` call, swaps models when an alias moves, rolls a failing canary back,
copies traffic to a shadow, and appends every prediction to the Parquet prediction log.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keel.serving._app import create_app
    from keel.serving._batch import BatchSummary, predict_file
    from keel.serving._batcher import MicroBatcher
    from keel.serving._compose import serving_app
    from keel.serving._decode import Decoded, InputDecoder, Problem
    from keel.serving._deployments import DeploymentService, DeploymentView, PolicyChange
    from keel.serving._metrics import ServingMetrics
    from keel.serving._model import ModelLoader, Prediction, ServedModel
    from keel.serving._predlog import (
        FeedbackEntry,
        LogEntry,
        PredictionLogReader,
        PredictionLogWriter,
    )
    from keel.serving._runtime import Served, ServeOptions, ServingRuntime

DEFAULT_CHUNK_ROWS = 100_000
"""Rows per chunk of ``keel predict`` / ``predict_file`` (here, so ``--help`` loads no more)."""

_EXPORTS = {
    "BatchSummary": "keel.serving._batch",
    "Decoded": "keel.serving._decode",
    "DeploymentService": "keel.serving._deployments",
    "DeploymentView": "keel.serving._deployments",
    "FeedbackEntry": "keel.serving._predlog",
    "InputDecoder": "keel.serving._decode",
    "LogEntry": "keel.serving._predlog",
    "MicroBatcher": "keel.serving._batcher",
    "ModelLoader": "keel.serving._model",
    "PolicyChange": "keel.serving._deployments",
    "Prediction": "keel.serving._model",
    "PredictionLogReader": "keel.serving._predlog",
    "PredictionLogWriter": "keel.serving._predlog",
    "Problem": "keel.serving._decode",
    "ServeOptions": "keel.serving._runtime",
    "Served": "keel.serving._runtime",
    "ServedModel": "keel.serving._model",
    "ServingMetrics": "keel.serving._metrics",
    "ServingRuntime": "keel.serving._runtime",
    "create_app": "keel.serving._app",
    "predict_file": "keel.serving._batch",
    "serving_app": "keel.serving._compose",
}

__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "BatchSummary",
    "Decoded",
    "DeploymentService",
    "DeploymentView",
    "FeedbackEntry",
    "InputDecoder",
    "LogEntry",
    "MicroBatcher",
    "ModelLoader",
    "PolicyChange",
    "Prediction",
    "PredictionLogReader",
    "PredictionLogWriter",
    "Problem",
    "ServeOptions",
    "Served",
    "ServedModel",
    "ServingMetrics",
    "ServingRuntime",
    "create_app",
    "predict_file",
    "serving_app",
]


def __getattr__(name: str) -> Any:
    """Resolve exports on first use: the HTTP app pulls in FastAPI, the rest need not."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'keel.serving' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
