"""The tracking domain as plain immutable values; no I/O."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from keel.errors import InvalidArgument


class RunStatus(enum.StrEnum):
    """Where a run is in its life; only RUNNING can change."""

    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"

    @property
    def is_terminal(self) -> bool:
        return self is not RunStatus.RUNNING

    @classmethod
    def final(cls, value: object) -> RunStatus:
        """The terminal status named by ``value``, or InvalidArgument naming the choices."""
        try:
            status = cls(value.upper() if isinstance(value, str) else value)  # type: ignore[arg-type]
        except ValueError:
            status = None
        if status is None or not status.is_terminal:
            raise InvalidArgument(f"a run cannot end as {value!r}; use FINISHED, FAILED or KILLED")
        return status


@dataclass(frozen=True)
class Experiment:
    """A named group of runs."""

    id: str
    name: str
    created_at: float
    run_count: int = 0


@dataclass(frozen=True)
class Run:
    """One execution of training code and everything it recorded.

    ``metrics`` holds the latest value of each metric (the one with the highest step,
    then the latest timestamp); the full series is read with ``get_metric_history``.
    """

    id: str
    experiment_id: str
    name: str
    status: RunStatus
    start_time: float
    end_time: float | None
    parent_id: str | None = None
    params: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    source: Mapping[str, object] = field(default_factory=dict)
    environment_digest: str | None = None

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready form (the wire format of ``--json`` and the HTTP API)."""
        return {
            "id": self.id,
            "experiment_id": self.experiment_id,
            "name": self.name,
            "status": self.status.value,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "parent_id": self.parent_id,
            "params": dict(self.params),
            "metrics": dict(self.metrics),
            "tags": dict(self.tags),
            "source": dict(self.source),
            "environment_digest": self.environment_digest,
        }


@dataclass(frozen=True)
class MetricPoint:
    """One logged value of a metric."""

    key: str
    value: float
    step: int
    timestamp: float


@dataclass(frozen=True)
class Artifact:
    """A run's logical file name and the content it points at."""

    name: str
    digest: str
    size: int
