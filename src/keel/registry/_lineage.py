"""A model version's lineage: the run that made it and everything that run recorded."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from keel.core._entities import Run
from keel.core._models import ModelVersion
from keel.errors import NotFound
from keel.stores.metadata._registry import InputDataset
from keel.tracking import TrackingService

__all__ = ["Lineage", "build_lineage"]


@dataclass(frozen=True)
class Lineage:
    """Run, params, metrics, input dataset versions, code version and environment."""

    version: ModelVersion
    run: Run
    experiment: str
    datasets: tuple[InputDataset, ...] = ()
    code: Mapping[str, Any] = field(default_factory=dict)
    environment: Mapping[str, Any] = field(default_factory=dict)

    @property
    def params(self) -> Mapping[str, str]:
        return self.run.params

    @property
    def metrics(self) -> Mapping[str, float]:
        return self.run.metrics

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form; the environment's package list is summarised by its digest."""
        env = {k: v for k, v in self.environment.items() if k != "packages"}
        packages = self.environment.get("packages")
        if isinstance(packages, list):
            env["package_count"] = len(packages)
        return {
            "model": self.version.name,
            "version": self.version.version,
            "source": self.version.source,
            "run": {
                "id": self.run.id,
                "name": self.run.name,
                "experiment": self.experiment,
                "status": self.run.status.value,
                "start_time": self.run.start_time,
                "end_time": self.run.end_time,
            },
            "params": dict(self.params),
            "metrics": dict(self.metrics),
            "datasets": [{"ref": d.ref, "id": d.id, "digest": d.digest} for d in self.datasets],
            "code": dict(self.code),
            "environment": {"digest": self.run.environment_digest, **env},
        }


def build_lineage(
    version: ModelVersion, tracking: TrackingService, inputs: Sequence[InputDataset]
) -> Lineage:
    """Gather the lineage of ``version`` from the tracking service and the run's inputs."""
    tracking.flush()
    run = tracking.store.get_run(version.run_id)
    try:
        experiment = tracking.store.get_experiment(run.experiment_id).name
    except NotFound:
        experiment = run.experiment_id
    code = {k: v for k, v in run.source.items() if k in ("git", "command", "user", "host")}
    return Lineage(
        version=version,
        run=run,
        experiment=experiment,
        datasets=tuple(inputs),
        code=code,
        environment=tracking.environment_of(run),
    )
