"""The metadata store: experiments, runs and what they recorded, on SQLite or PostgreSQL."""

from __future__ import annotations

import math
import secrets
import time
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ParamSpec

import orjson
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError as SAIntegrityError

from keel.core._entities import Artifact, Experiment, Run, RunStatus
from keel.core._filter import Expr, OrderKey
from keel.core._ids import new_id
from keel.errors import AlreadyExists, Conflict, InvalidArgument, NotFound
from keel.stores.metadata import _summary
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
from keel.stores.metadata._search import PAGE_COLUMNS, runs_page

_END_RUN = (
    runs.update()
    .where(
        runs.c.id == sa.bindparam("rid"),
        runs.c.status == RunStatus.RUNNING.value,
        runs.c.deleted_at.is_(None),
    )
    .values(status=sa.bindparam("status"), end_time=sa.bindparam("end"))
)

_P = ParamSpec("_P")


def new_run_id() -> str:
    """A run id (32 lowercase hex, like every Keel id) that starts with the creation time
    in milliseconds, then 84 random bits.

    Runs made one after another get neighbouring ids, so their params, latest metrics
    and tags (keyed by run id first) sit in neighbouring B-tree pages: search, which
    visits runs newest first, reads far fewer pages than with random ids.
    """
    return f"{time.time_ns() // 1_000_000 % 16**11:011x}{secrets.token_hex(11)[:21]}"


MetricRow = tuple[str, str, float, int, float]
"""(run_id, key, value, step, timestamp): one buffered metric point."""

CHUNK_POINTS = 50_000


@dataclass(frozen=True)
class MetricSeries:
    """A metric's full history as packed arrays, in logging order."""

    steps: array[int]
    timestamps: array[float]
    values: array[float]


def _as_runs(
    rows_of: Callable[_P, list[tuple[Any, ...]]],
) -> Callable[_P, list[Run]]:
    """A search method taking ``rows_of``'s arguments and returning ``Run`` objects."""

    def search(*args: _P.args, **kwargs: _P.kwargs) -> list[Run]:
        return [_run(row) for row in rows_of(*args, **kwargs)]

    search.__doc__ = "One page of matching runs, in order, as ``Run`` objects."
    return search


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
            id=new_run_id(),
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
                        "summary": _summary.encode({}, {}, run.tags),
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

    def _require_run(self, conn: sa.Connection, run_id: str, *, lock: bool = False) -> sa.Row[Any]:
        """The run's row; with ``lock``, locked until the write transaction ends."""
        query = sa.select(runs).where(runs.c.id == run_id)
        if lock:
            query = query.with_for_update(key_share=True)
        row = conn.execute(query).first()
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
        source = orjson.loads(row.source) if row.source else {}
        return _run([row._mapping[name] for name in PAGE_COLUMNS], source)

    def log_params(self, run_id: str, values: Mapping[str, str]) -> None:
        """Record params; logging a key again with another value is refused."""
        if not values:
            return
        with self._write() as conn:
            row = self._require_run(conn, run_id, lock=True)
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
                logged, metrics, tags_ = _summary.decode(row.summary)
                logged.update((r["key"], r["value"]) for r in fresh)
                self._store_summaries(conn, {run_id: _summary.encode(logged, metrics, tags_)})

    def set_tags(self, run_id: str, values: Mapping[str, str]) -> None:
        if not values:
            return
        with self._write() as conn:
            row = self._require_run(conn, run_id, lock=True)
            stmt = self._insert(tags)
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["run_id", "key"], set_={"value": stmt.excluded.value}
                ),
                [{"run_id": run_id, "key": k, "value": v} for k, v in values.items()],
            )
            logged, metrics, current = _summary.decode(row.summary)
            current.update(values)
            self._store_summaries(conn, {run_id: _summary.encode(logged, metrics, current)})

    def delete_tags(self, run_id: str, keys: Sequence[str]) -> None:
        """Remove tags from a run; a key it does not have is refused, and nothing changes."""
        if not keys:
            return
        with self._write() as conn:
            row = self._require_run(conn, run_id, lock=True)
            logged, metrics, current = _summary.decode(row.summary)
            missing = sorted(set(keys) - set(current))
            if missing:
                raise NotFound(
                    f"run {run_id!r} has no tag {', '.join(map(repr, missing))}; see its tags "
                    f"with `keel runs show {run_id}`"
                )
            conn.execute(tags.delete().where(tags.c.run_id == run_id, tags.c.key.in_(list(keys))))
            for key in keys:
                current.pop(key, None)
            self._store_summaries(conn, {run_id: _summary.encode(logged, metrics, current)})

    def _store_summaries(self, conn: sa.Connection, texts: Mapping[str, str]) -> None:
        conn.execute(_SET_SUMMARY, [{"rid": k, "summary": v} for k, v in texts.items()])

    def _lock_summaries(self, conn: sa.Connection, run_ids: Sequence[str]) -> dict[str, str]:
        """The summaries of the runs that exist among ``run_ids``, their rows locked until
        the transaction ends: in id order on PostgreSQL, so concurrent batches cannot
        deadlock; SQLite's write transaction holds the whole database already.
        """
        ordered = sorted(set(run_ids))
        found: dict[str, str] = {}
        for start in range(0, len(ordered), _IN_CHUNK):
            ids = ordered[start : start + _IN_CHUNK]
            found.update(conn.execute(_LOCK_SUMMARIES, {"ids": ids}).all())
        return found

    def _refresh_metric_summaries(self, conn: sa.Connection, current: Mapping[str, str]) -> None:
        """Rewrite the metrics part of the (locked) runs' summaries from ``metrics_latest``,
        after the upsert and in its transaction, so each summary holds exactly the latest
        values that commit with it.
        """
        ordered = list(current)
        for start in range(0, len(ordered), _IN_CHUNK):
            ids = ordered[start : start + _IN_CHUNK]
            latest: dict[str, dict[str, float]] = {run_id: {} for run_id in ids}
            for run_id, key, value in conn.execute(_LATEST_OF, {"ids": ids}):
                latest[run_id][key] = math.nan if value is None else value
            texts = {}
            for run_id in ids:
                logged, _, tags_ = _summary.decode(current[run_id])
                texts[run_id] = _summary.encode(logged, latest[run_id], tags_)
            self._store_summaries(conn, texts)

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
                current = self._lock_summaries(conn, [run_id for run_id, _ in groups])
                conn.execute(metric_chunks.insert(), chunks)
                conn.execute(upsert, latest)
                self._refresh_metric_summaries(conn, current)
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

    def search_run_rows(
        self,
        experiment_ids: Sequence[str],
        expr: Expr | None,
        order_by: Sequence[OrderKey] = (),
        *,
        max_results: int = 1000,
        offset: int = 0,
        include_deleted: bool = False,
    ) -> list[tuple[Any, ...]]:
        """One page of matching runs as plain tuples of ``PAGE_COLUMNS`` (the summary
        last), in order: what a DataFrame is built from without a ``Run`` per row.
        """
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
            # The DB-API's own tuples: no page column needs SQLAlchemy's result
            # processing on SQLite or psycopg, and a Row per run costs more than the parse.
            rows = conn.execute(query).cursor.fetchall()
        return list(rows)

    search_runs = _as_runs(search_run_rows)


def _run(row: Sequence[Any], source: Mapping[str, Any] | None = None) -> Run:
    """A ``Run`` from a row of ``PAGE_COLUMNS``: its values come from the summary."""
    run_id, experiment_id, name, status, start, end, parent_id, digest, summary = row
    logged, metrics, tags_ = _summary.decode(summary)
    return Run(
        id=run_id,
        experiment_id=experiment_id,
        name=name,
        status=_STATUSES[status],
        start_time=start,
        end_time=end,
        parent_id=parent_id,
        params=logged,
        metrics=metrics,
        tags=tags_,
        source=source or {},
        environment_digest=digest,
    )


_STATUSES = {status.value: status for status in RunStatus}
_IN_CHUNK = 900
_SET_SUMMARY = (
    runs.update().where(runs.c.id == sa.bindparam("rid")).values(summary=sa.bindparam("summary"))
)
_LOCK_SUMMARIES = (
    sa.select(runs.c.id, runs.c.summary)
    .where(runs.c.id.in_(sa.bindparam("ids", expanding=True)))
    .order_by(runs.c.id)
    .with_for_update(key_share=True)
)
_LATEST_OF = sa.select(metrics_latest.c.run_id, metrics_latest.c.key, metrics_latest.c.value).where(
    metrics_latest.c.run_id.in_(sa.bindparam("ids", expanding=True))
)


_BIG_ENDIAN = array("H", [1]).tobytes() == b"\x00\x01"


def _le_bytes(values: array[Any]) -> bytes:
    if _BIG_ENDIAN:
        values = array(values.typecode, values)
        values.byteswap()
    return values.tobytes()
