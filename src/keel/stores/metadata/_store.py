"""The metadata store: experiments, runs and what they recorded, on SQLite or PostgreSQL."""

from __future__ import annotations

import math
import time
from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError as SAIntegrityError

from keel.core._entities import Artifact, Experiment, Run, RunStatus
from keel.core._filter import Expr, OrderKey
from keel.core._ids import new_id
from keel.errors import AlreadyExists, Conflict, InvalidArgument, NotFound
from keel.stores.metadata._base import EngineStore
from keel.stores.metadata._engine import create_engine
from keel.stores.metadata._schema import (
    artifacts,
    environments,
    experiments,
    metric_chunks,
    metrics_latest,
    params,
    runs,
    tags,
)
from keel.stores.metadata._search import runs_page

_END_RUN = (
    runs.update()
    .where(
        runs.c.id == sa.bindparam("rid"),
        runs.c.status == RunStatus.RUNNING.value,
        runs.c.deleted_at.is_(None),
    )
    .values(status=sa.bindparam("status"), end_time=sa.bindparam("end"))
)

MetricRow = tuple[str, str, float, int, float]
"""(run_id, key, value, step, timestamp): one buffered metric point."""

CHUNK_POINTS = 50_000


@dataclass(frozen=True)
class MetricSeries:
    """A metric's full history as packed arrays, in logging order."""

    steps: array[int]
    timestamps: array[float]
    values: array[float]


@dataclass(frozen=True)
class RunPage:
    """One page of search results: runs in order, and their latest values."""

    runs: list[Run]


class MetadataStore(EngineStore):
    """Experiments, runs, params, tags, metrics and artifact names behind one engine."""

    @classmethod
    def open(cls, uri: str, *, timeout: float = 30.0, synchronous: str = "NORMAL") -> MetadataStore:
        """Connect to ``uri``, migrating the schema on first use."""
        return cls(create_engine(uri, timeout=timeout, synchronous=synchronous))

    def close(self) -> None:
        self.engine.dispose()

    # experiments -------------------------------------------------------------------

    def create_experiment(self, name: str) -> Experiment:
        experiment = Experiment(id=new_id(), name=name, created_at=time.time())
        try:
            with self._write() as conn:
                conn.execute(
                    experiments.insert().values(
                        id=experiment.id, name=name, created_at=experiment.created_at
                    )
                )
        except SAIntegrityError:
            raise AlreadyExists(
                f"experiment {name!r} already exists; use it, or pick another name"
            ) from None
        return experiment

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        with self._read() as conn:
            row = conn.execute(
                sa.select(experiments).where(
                    experiments.c.name == name, experiments.c.deleted_at.is_(None)
                )
            ).first()
        return None if row is None else Experiment(row.id, row.name, row.created_at)

    def get_or_create_experiment(self, name: str) -> Experiment:
        """The experiment called ``name``, created if needed (safe against races)."""
        found = self.get_experiment_by_name(name)
        if found is not None:
            return found
        try:
            return self.create_experiment(name)
        except AlreadyExists:
            found = self.get_experiment_by_name(name)
            if found is None:
                raise Conflict(
                    f"experiment {name!r} exists but is deleted; restore it or use another name"
                ) from None
            return found

    def get_experiment(self, experiment_id: str) -> Experiment:
        with self._read() as conn:
            row = conn.execute(
                sa.select(experiments).where(experiments.c.id == experiment_id)
            ).first()
        if row is None:
            raise NotFound(
                f"no experiment with id {experiment_id!r}; list them with `keel experiments list`"
            )
        return Experiment(row.id, row.name, row.created_at)

    def list_experiments(self) -> list[Experiment]:
        counts = (
            sa.select(runs.c.experiment_id, sa.func.count().label("n"))
            .where(runs.c.deleted_at.is_(None))
            .group_by(runs.c.experiment_id)
            .subquery()
        )
        query = (
            sa.select(experiments, sa.func.coalesce(counts.c.n, 0).label("n"))
            .outerjoin(counts, counts.c.experiment_id == experiments.c.id)
            .where(experiments.c.deleted_at.is_(None))
            .order_by(experiments.c.created_at)
        )
        with self._read() as conn:
            return [Experiment(r.id, r.name, r.created_at, r.n) for r in conn.execute(query)]

    # runs ---------------------------------------------------------------------------

    def put_environment(self, digest: str, body: Mapping[str, Any]) -> None:
        """Store an environment description once, keyed by its digest."""
        stmt = self._insert(environments).values(digest=digest, body=orjson.dumps(body).decode())
        with self._write() as conn:
            conn.execute(stmt.on_conflict_do_nothing(index_elements=["digest"]))

    def get_environment(self, digest: str) -> dict[str, Any]:
        with self._read() as conn:
            body = conn.execute(
                sa.select(environments.c.body).where(environments.c.digest == digest)
            ).scalar()
        if body is None:
            raise NotFound(f"no environment with digest {digest!r}")
        result: dict[str, Any] = orjson.loads(body)
        return result

    def create_run(
        self,
        experiment_id: str,
        name: str,
        *,
        parent_id: str | None = None,
        source: Mapping[str, Any] | None = None,
        environment_digest: str | None = None,
        tags_: Mapping[str, str] | None = None,
        start_time: float | None = None,
    ) -> Run:
        run = Run(
            id=new_id(),
            experiment_id=experiment_id,
            name=name,
            status=RunStatus.RUNNING,
            start_time=time.time() if start_time is None else start_time,
            end_time=None,
            parent_id=parent_id,
            tags=dict(tags_ or {}),
            source=dict(source or {}),
            environment_digest=environment_digest,
        )
        try:
            with self._write() as conn:
                conn.execute(
                    runs.insert(),
                    {
                        "id": run.id,
                        "experiment_id": experiment_id,
                        "name": name,
                        "status": run.status.value,
                        "start_time": run.start_time,
                        "parent_id": parent_id,
                        "source": orjson.dumps(run.source).decode(),
                        "environment_digest": environment_digest,
                    },
                )
                if run.tags:
                    conn.execute(
                        tags.insert(),
                        [{"run_id": run.id, "key": k, "value": v} for k, v in run.tags.items()],
                    )
        except SAIntegrityError:
            raise NotFound(
                f"cannot create a run in experiment {experiment_id!r}: it does not exist; "
                "list experiments with `keel experiments list`"
            ) from None
        return run

    def _require_run(self, conn: sa.Connection, run_id: str) -> sa.Row[Any]:
        row = conn.execute(sa.select(runs).where(runs.c.id == run_id)).first()
        if row is None or row.deleted_at is not None:
            raise NotFound(f"no run {run_id!r}; list runs with `keel runs list`")
        return row

    def set_run_status(self, run_id: str, status: RunStatus, end_time: float | None) -> None:
        """Move a RUNNING run to ``status``; a finished run cannot change."""
        with self._write() as conn:
            changed = conn.execute(
                _END_RUN, {"rid": run_id, "status": status.value, "end": end_time}
            ).rowcount
            if changed != 1:
                row = self._require_run(conn, run_id)
                raise Conflict(
                    f"run {run_id!r} is already {row.status}; a finished run cannot change status"
                )

    def delete_run(self, run_id: str) -> None:
        """Hide a run from searches and listings (soft delete)."""
        with self._write() as conn:
            self._require_run(conn, run_id)
            conn.execute(runs.update().where(runs.c.id == run_id).values(deleted_at=time.time()))

    def get_run(self, run_id: str) -> Run:
        with self._read() as conn:
            row = self._require_run(conn, run_id)
            return self._hydrate(conn, [row])[0]

    def log_params(self, run_id: str, values: Mapping[str, str]) -> None:
        """Record params; logging a key again with another value is refused."""
        if not values:
            return
        with self._write() as conn:
            self._require_run(conn, run_id)
            existing = dict(
                conn.execute(
                    sa.select(params.c.key, params.c.value).where(
                        params.c.run_id == run_id, params.c.key.in_(list(values))
                    )
                ).all()
            )
            for key, old in existing.items():
                if old != values[key]:
                    raise Conflict(
                        f"param {key!r} of run {run_id!r} is already {old!r}; params are "
                        f"immutable, so {values[key]!r} was refused. Use a new key or a new run"
                    )
            fresh = [
                {"run_id": run_id, "key": k, "value": v}
                for k, v in values.items()
                if k not in existing
            ]
            if fresh:
                conn.execute(params.insert(), fresh)

    def set_tags(self, run_id: str, values: Mapping[str, str]) -> None:
        if not values:
            return
        with self._write() as conn:
            self._require_run(conn, run_id)
            stmt = self._insert(tags)
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["run_id", "key"], set_={"value": stmt.excluded.value}
                ),
                [{"run_id": run_id, "key": k, "value": v} for k, v in values.items()],
            )

    # metrics ------------------------------------------------------------------------

    def log_metrics(self, rows: Sequence[MetricRow]) -> None:
        """Write buffered points in one transaction: history chunks and latest values."""
        if not rows:
            return
        groups: dict[tuple[str, str], tuple[array[int], array[float], array[float]]] = {}
        for run_id, key, value, step, timestamp in rows:
            group = groups.get((run_id, key))
            if group is None:
                group = groups[(run_id, key)] = (array("q"), array("d"), array("d"))
            group[0].append(step)
            group[1].append(timestamp)
            group[2].append(value)
        chunks: list[dict[str, Any]] = []
        latest: list[dict[str, Any]] = []
        for (run_id, key), (steps, stamps, values) in groups.items():
            for start in range(0, len(steps), CHUNK_POINTS):
                end = start + CHUNK_POINTS
                chunks.append(
                    {
                        "run_id": run_id,
                        "key": key,
                        "count": len(steps[start:end]),
                        "steps": _le_bytes(steps[start:end]),
                        "timestamps": _le_bytes(stamps[start:end]),
                        "values": _le_bytes(values[start:end]),
                    }
                )
            best = max(range(len(steps)), key=lambda i: (steps[i], stamps[i]))
            value = values[best]
            latest.append(
                {
                    "run_id": run_id,
                    "key": key,
                    "value": None if value != value else value,
                    "step": steps[best],
                    "timestamp": stamps[best],
                }
            )
        stmt = self._insert(metrics_latest)
        newer = sa.or_(
            stmt.excluded.step > metrics_latest.c.step,
            sa.and_(
                stmt.excluded.step == metrics_latest.c.step,
                stmt.excluded.timestamp >= metrics_latest.c.timestamp,
            ),
        )
        upsert = stmt.on_conflict_do_update(
            index_elements=["run_id", "key"],
            set_={
                "value": stmt.excluded.value,
                "step": stmt.excluded.step,
                "timestamp": stmt.excluded.timestamp,
            },
            where=newer,
        )
        try:
            with self._write() as conn:
                conn.execute(metric_chunks.insert(), chunks)
                conn.execute(upsert, latest)
        except SAIntegrityError:
            missing = sorted({run_id for run_id, _ in groups} - self._existing_runs(groups))
            raise NotFound(
                f"cannot log metrics to unknown run(s) {', '.join(missing)}; "
                "start a run with keel.start_run()",
                run_ids=missing,
            ) from None

    def _existing_runs(self, groups: Iterable[tuple[str, str]]) -> set[str]:
        ids = list({run_id for run_id, _ in groups})
        with self._read() as conn:
            return set(conn.execute(sa.select(runs.c.id).where(runs.c.id.in_(ids))).scalars())

    def get_metric_history(self, run_id: str, key: str) -> MetricSeries:
        with self._read() as conn:
            self._require_run(conn, run_id)
            rows = conn.execute(
                sa.select(
                    metric_chunks.c.steps, metric_chunks.c.timestamps, metric_chunks.c["values"]
                )
                .where(metric_chunks.c.run_id == run_id, metric_chunks.c.key == key)
                .order_by(metric_chunks.c.id)
            ).all()
        if not rows:
            raise NotFound(
                f"run {run_id!r} has no metric {key!r}; see its metrics with "
                f"`keel runs show {run_id}`"
            )
        steps, stamps, values = array("q"), array("d"), array("d")
        for chunk_steps, chunk_stamps, chunk_values in rows:
            steps.frombytes(chunk_steps)
            stamps.frombytes(chunk_stamps)
            values.frombytes(chunk_values)
        if _BIG_ENDIAN:
            for arr in (steps, stamps, values):
                arr.byteswap()
        return MetricSeries(steps, stamps, values)

    # artifacts ----------------------------------------------------------------------

    def record_artifact(self, run_id: str, name: str, digest: str, size: int) -> None:
        with self._write() as conn:
            self._require_run(conn, run_id)
            stmt = self._insert(artifacts)
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["run_id", "name"],
                    set_={
                        "digest": stmt.excluded.digest,
                        "size": stmt.excluded.size,
                        "created_at": stmt.excluded.created_at,
                    },
                ),
                {
                    "run_id": run_id,
                    "name": name,
                    "digest": digest,
                    "size": size,
                    "created_at": time.time(),
                },
            )

    def list_artifacts(self, run_id: str) -> list[Artifact]:
        with self._read() as conn:
            self._require_run(conn, run_id)
            rows = conn.execute(
                sa.select(artifacts.c.name, artifacts.c.digest, artifacts.c.size)
                .where(artifacts.c.run_id == run_id)
                .order_by(artifacts.c.name)
            ).all()
        return [Artifact(r.name, r.digest, r.size) for r in rows]

    def get_artifact(self, run_id: str, name: str) -> Artifact:
        with self._read() as conn:
            self._require_run(conn, run_id)
            row = conn.execute(
                sa.select(artifacts.c.digest, artifacts.c.size).where(
                    artifacts.c.run_id == run_id, artifacts.c.name == name
                )
            ).first()
        if row is None:
            raise NotFound(
                f"run {run_id!r} has no artifact {name!r}; list them with `keel runs show {run_id}`"
            )
        return Artifact(name, row.digest, row.size)

    # search -------------------------------------------------------------------------

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        expr: Expr | None,
        order_by: Sequence[OrderKey] = (),
        *,
        max_results: int = 1000,
        offset: int = 0,
        include_deleted: bool = False,
    ) -> list[Run]:
        if not 1 <= max_results <= 100_000:
            raise InvalidArgument(
                f"max_results={max_results} is out of range; use 1 to 100000 and page with offset"
            )
        query = runs_page(
            experiment_ids,
            expr,
            order_by,
            limit=max_results,
            offset=offset,
            include_deleted=include_deleted,
        )
        with self._read() as conn:
            rows = conn.execute(query).all()
            return self._hydrate(conn, rows)

    def _hydrate(self, conn: sa.Connection, rows: Sequence[sa.Row[Any]]) -> list[Run]:
        """Attach params, latest metrics and tags to run rows: one query per 900 runs."""
        if not rows:
            return []
        ids = [r.id for r in rows]
        by_id: dict[str, tuple[dict[str, Any], dict[str, Any], dict[str, Any]]] = {
            run_id: ({}, {}, {}) for run_id in ids
        }
        for start in range(0, len(ids), 900):
            for kind, run_id, key, text, number in self._values(conn, ids[start : start + 900]):
                if kind == 1:
                    by_id[run_id][1][key] = math.nan if number is None else number
                else:
                    by_id[run_id][kind][key] = text
        has_source = "source" in rows[0]._fields
        return [
            Run(
                id=r.id,
                experiment_id=r.experiment_id,
                name=r.name,
                status=_STATUSES[r.status],
                start_time=r.start_time,
                end_time=r.end_time,
                parent_id=r.parent_id,
                params=by_id[r.id][0],
                metrics=by_id[r.id][1],
                tags=by_id[r.id][2],
                source=orjson.loads(r.source) if has_source and r.source else {},
                environment_digest=r.environment_digest,
            )
            for r in rows
        ]

    def _values(self, conn: sa.Connection, ids: list[str]) -> list[tuple[Any, ...]]:
        """Rows of ``_VALUES`` for ``ids`` straight from the driver (the search hot path).

        The SQL text holds placeholders only; the ids travel as bound parameters.
        """
        driver = conn.connection.driver_connection
        if self.dialect == "sqlite":
            marks = ",".join("?" * len(ids))
            sql = _VALUES_SQL.format(ids=f"IN ({marks})")
            return driver.execute(sql, ids * 3).fetchall()  # type: ignore[union-attr,no-any-return]
        if self.dialect == "postgresql":
            with driver.cursor() as cursor:  # type: ignore[union-attr]
                cursor.execute(_VALUES_SQL.format(ids="= ANY(%(ids)s)"), {"ids": ids})
                return cursor.fetchall()  # type: ignore[no-any-return]
        return [tuple(row) for row in conn.execute(_VALUES, {"ids": ids}).all()]


_STATUSES = {status.value: status for status in RunStatus}
_VALUES_SQL = (
    "SELECT 0, run_id, key, value, NULL FROM params WHERE run_id {ids} "
    "UNION ALL SELECT 1, run_id, key, NULL, value FROM metrics_latest WHERE run_id {ids} "
    "UNION ALL SELECT 2, run_id, key, value, NULL FROM tags WHERE run_id {ids}"
)
_VALUES = sa.union_all(
    *(
        sa.select(
            sa.literal_column(str(kind), sa.Integer).label("kind"),
            table.c.run_id,
            table.c.key,
            table.c.value if kind != 1 else sa.null().cast(sa.Text),
            table.c.value if kind == 1 else sa.null().cast(sa.Float),
        ).where(table.c.run_id.in_(sa.bindparam("ids", expanding=True)))
        for kind, table in enumerate((params, metrics_latest, tags))
    )
)
"""Params (kind 0), latest metric values (1) and tags (2) of a page of runs, in one query."""


_BIG_ENDIAN = array("H", [1]).tobytes() == b"\x00\x01"


def _le_bytes(values: array[Any]) -> bytes:
    if _BIG_ENDIAN:
        values = array(values.typecode, values)
        values.byteswap()
    return values.tobytes()
