"""The tracking service: runs and what they record, over the metadata and artifact stores."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.core._artifact_names import validate_artifact_name
from keel.core._entities import Artifact, Experiment, Run, RunStatus
from keel.core._filter import parse_filter, parse_order_by
from keel.core._ids import is_id
from keel.core._names import (
    MAX_PARAM_VALUE_LENGTH,
    MAX_TAG_VALUE_LENGTH,
    validate_key,
    validate_metric_value,
    validate_name,
    validate_step,
    validate_text_value,
    validate_timestamp,
)
from keel.errors import InvalidArgument, NotFound
from keel.stores.artifacts import ArtifactStore
from keel.stores.metadata import MetadataStore
from keel.tracking._buffer import MetricWriter
from keel.tracking._environment import environment, process_source
from keel.tracking._frame import rows_to_frame
from keel.tracking._history import MetricHistory

if TYPE_CHECKING:
    import pandas as pd


class TrackingService:
    """Create runs, record params, metrics, tags and artifacts, and search them."""

    def __init__(
        self,
        store: MetadataStore,
        artifacts: ArtifactStore,
        *,
        flush_interval: float = 0.5,
        buffer_points: int = 100_000,
        capture_environment: bool = True,
    ) -> None:
        self.store = store
        self.artifacts = artifacts
        self.capture_environment = capture_environment
        self.metrics = MetricWriter(
            store.log_metrics, interval=flush_interval, high_water=buffer_points
        )
        self._environment_stored: str | None = None
        self._experiments: dict[str, Experiment] = {}

    def close(self) -> None:
        self.metrics.close()

    # experiments -------------------------------------------------------------------

    def experiment(self, name: str) -> Experiment:
        """The experiment called ``name``, created on first use (cached: ids never change)."""
        found = self._experiments.get(name)
        if found is None:
            found = self.store.get_or_create_experiment(validate_name(name, "experiment name"))
            self._experiments[name] = found
        return found

    def list_experiments(self) -> list[Experiment]:
        return self.store.list_experiments()

    def _experiment_ids(self, experiment: str | Sequence[str] | None) -> list[str]:
        if experiment is None:
            return []
        names = [experiment] if isinstance(experiment, str) else list(experiment)
        ids = []
        for name in names:
            found = self._experiments.get(name)
            if found is None:
                found = self.store.get_experiment_by_name(validate_name(name, "experiment name"))
                if found is None:
                    raise NotFound(
                        f"no experiment {name!r}; list experiments with `keel experiments list`"
                    )
                self._experiments[name] = found
            ids.append(found.id)
        return ids

    # runs --------------------------------------------------------------------------

    def create_run(
        self,
        experiment: str,
        run_name: str | None = None,
        *,
        parent_id: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> Run:
        """Start a RUNNING run, recording where and on what it runs."""
        clean_tags = self._clean_tags(tags or {})
        if run_name is not None:
            validate_name(run_name, "run name")
        if parent_id is not None:
            self.get_run(parent_id)
        exp = self.experiment(experiment)
        source: dict[str, Any] = {}
        digest: str | None = None
        if self.capture_environment:
            source = process_source()
            digest, body = environment()
            if self._environment_stored != digest:
                self.store.put_environment(digest, body)
                self._environment_stored = digest
        start = time.time()
        name = run_name or time.strftime("run-%Y%m%d-%H%M%S", time.localtime(start))
        return self.store.create_run(
            exp.id,
            name,
            parent_id=parent_id,
            source=source,
            environment_digest=digest,
            tags_=clean_tags,
            start_time=start,
        )

    def end_run(self, run_id: str, status: RunStatus | str = RunStatus.FINISHED) -> None:
        """Flush the run's buffered metrics, then close it with ``status``."""
        final = RunStatus.final(status)
        self.metrics.flush()
        self.store.set_run_status(run_id, final, time.time())

    def get_run(self, run_id: str) -> Run:
        if not isinstance(run_id, str) or not is_id(run_id):
            raise NotFound(f"no run {run_id!r}; list runs with `keel runs list`")
        return self.store.get_run(run_id)

    def delete_run(self, run_id: str) -> None:
        self.get_run(run_id)
        self.store.delete_run(run_id)

    def environment_of(self, run: Run) -> dict[str, Any]:
        if run.environment_digest is None:
            return {}
        return self.store.get_environment(run.environment_digest)

    # params, tags, metrics ------------------------------------------------------------

    def log_params(self, run_id: str, values: Mapping[str, Any]) -> None:
        clean = {
            validate_key(k, "param key"): validate_text_value(
                v, f"param {k!r}", MAX_PARAM_VALUE_LENGTH
            )
            for k, v in values.items()
        }
        self.store.log_params(run_id, clean)

    def _clean_tags(self, values: Mapping[str, Any]) -> dict[str, str]:
        return {
            validate_key(k, "tag key"): validate_text_value(v, f"tag {k!r}", MAX_TAG_VALUE_LENGTH)
            for k, v in values.items()
        }

    def set_tags(self, run_id: str, values: Mapping[str, Any]) -> None:
        self.store.set_tags(run_id, self._clean_tags(values))

    def delete_tags(self, run_id: str, keys: Sequence[str]) -> None:
        """Remove tags from a run; a key it does not have is refused and nothing changes."""
        self.store.delete_tags(run_id, [validate_key(k, "tag key") for k in keys])

    def log_metrics(
        self,
        run_id: str,
        values: Mapping[str, Any],
        step: int | None = None,
        timestamp: float | None = None,
    ) -> None:
        """Queue points for one run; validated now, written by the background writer."""
        step_ = 0 if step is None else step
        stamp = time.time() if timestamp is None else validate_timestamp(timestamp)
        rows = []
        for key, value in values.items():
            validate_key(key, "metric key")
            rows.append(
                (run_id, key, validate_metric_value(key, value), validate_step(key, step_), stamp)
            )
        self.metrics.start()
        self.metrics.extend(rows)

    def flush(self) -> None:
        self.metrics.flush()

    def get_metric_history(self, run_id: str, key: str) -> MetricHistory:
        self.get_run(run_id)
        self.metrics.flush()
        series = self.store.get_metric_history(run_id, validate_key(key, "metric key"))
        return MetricHistory.from_series(run_id, key, series)

    # artifacts -----------------------------------------------------------------------

    def log_artifact(self, run_id: str, local_path: str | os.PathLike[str], name: str) -> Artifact:
        """Store a local file's content and record it under the run as ``name``."""
        clean = validate_artifact_name(name)
        path = Path(local_path)
        if not path.is_file():
            raise InvalidArgument(
                f"cannot log artifact {os.fspath(local_path)!r}: not a readable file; "
                "check the path (directories: log each file)"
            )
        self.get_run(run_id)
        ref = self.artifacts.put_file(path)
        self.store.record_artifact(run_id, clean, ref.digest, ref.size)
        return Artifact(clean, ref.digest, ref.size)

    def log_bytes(self, run_id: str, data: bytes, name: str) -> Artifact:
        clean = validate_artifact_name(name)
        self.get_run(run_id)
        ref = self.artifacts.put_bytes(data)
        self.store.record_artifact(run_id, clean, ref.digest, ref.size)
        return Artifact(clean, ref.digest, ref.size)

    def list_artifacts(self, run_id: str) -> list[Artifact]:
        self.get_run(run_id)
        return self.store.list_artifacts(run_id)

    def read_artifact(self, run_id: str, name: str) -> bytes:
        """The artifact's bytes, verified against its digest."""
        found = self.store.get_artifact(self.get_run(run_id).id, validate_artifact_name(name))
        return self.artifacts.get_bytes(found.digest)

    def download_artifact(
        self, run_id: str, name: str, dest: str | os.PathLike[str], *, overwrite: bool = False
    ) -> Path:
        """Copy an artifact to the local file ``dest`` (verified), refusing to clobber."""
        found = self.store.get_artifact(self.get_run(run_id).id, validate_artifact_name(name))
        target = Path(dest)
        if target.exists() and not overwrite:
            raise InvalidArgument(
                f"{os.fspath(target)!r} exists; choose another destination or pass overwrite=True"
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        self.artifacts.copy_to(found.digest, target)
        return target

    # search --------------------------------------------------------------------------

    def search_runs(
        self,
        experiment: str | Sequence[str] | None = None,
        filter: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
        offset: int = 0,
    ) -> list[Run]:
        expr = parse_filter(filter)
        keys = parse_order_by(order_by)
        self.metrics.flush()
        return self.store.search_runs(
            self._experiment_ids(experiment), expr, keys, max_results=max_results, offset=offset
        )

    def search_runs_frame(
        self,
        experiment: str | Sequence[str] | None = None,
        filter: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
        offset: int = 0,
    ) -> pd.DataFrame:
        """Search results as a DataFrame: a row per run; ``metrics.*``, ``params.*``, ``tags.*``."""
        expr = parse_filter(filter)
        keys = parse_order_by(order_by)
        self.metrics.flush()
        rows = self.store.search_run_rows(
            self._experiment_ids(experiment), expr, keys, max_results=max_results, offset=offset
        )
        return rows_to_frame(rows)
