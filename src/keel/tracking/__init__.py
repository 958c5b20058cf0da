"""Experiment tracking: runs, params, metrics, tags, artifacts, search."""

from keel.tracking._buffer import MetricWriter
from keel.tracking._frame import runs_to_frame
from keel.tracking._history import MetricHistory
from keel.tracking._service import TrackingService

__all__ = ["MetricHistory", "MetricWriter", "TrackingService", "runs_to_frame"]
