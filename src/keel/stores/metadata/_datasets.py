"""The dataset catalog: datasets, their numbered versions, tags, lineage and run inputs.

Version numbers are handed out by bumping ``datasets.latest_version`` inside the same
write transaction that inserts the version row: SQLite serialises writers with
``BEGIN IMMEDIATE`` and PostgreSQL locks the dataset row with ``SELECT ... FOR UPDATE``,
so concurrent ``add``s get consecutive numbers and a failed one leaves no gap.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError as SAIntegrityError

from keel.core._data import DatasetRef, DatasetVersion
from keel.core._ids import new_id
from keel.errors import NotFound
from keel.stores.metadata._base import EngineStore
from keel.stores.metadata._schema import (
    dataset_parents,
    dataset_tag_history,
    dataset_tags,
    dataset_versions,
    datasets,
    experiments,
    run_inputs,
    runs,
)

__all__ = ["DatasetCatalog", "DatasetSummary", "RunUse", "TagMove"]


@dataclass(frozen=True)
class DatasetSummary:
    """A dataset as listed: its name, how many versions, the latest one's number."""

    name: str
    versions: int
    latest_version: int
    created_at: float


@dataclass(frozen=True)
class RunUse:
    """A run that logged a dataset version as an input."""

    run_id: str
    run_name: str
    experiment: str
    status: str
    logged_at: float


@dataclass(frozen=True)
class TagMove:
    """One entry of a tag's history: where it pointed after the move, and before."""

    tag: str
    version: int
    previous_version: int | None
    moved_at: float


@dataclass(frozen=True)
class NewVersion:
    """What ``DataService.add`` hands the catalog once every object is stored."""

    digest: str
    file_count: int
    size: int
    kind: str
    message: str = ""
    schema: Mapping[str, Any] | None = None
    profile: Mapping[str, Any] | None = None
    metadata: Mapping[str, Any] | None = None
    parents: Sequence[str] = ()


class DatasetCatalog(EngineStore):
    """Datasets and their versions in the metadata store (SQLite or PostgreSQL)."""

    # writing ------------------------------------------------------------------------

    def commit_version(self, name: str, new: NewVersion) -> tuple[DatasetVersion, bool]:
        """Record a version of ``name`` unless its latest one has the same digest.

        Returns the version and whether it was created. Runs in one transaction with
        the dataset row locked, so numbers are gapless under concurrency.
        """
        now = time.time()
        with self._write() as conn:
            dataset_id, latest = self._lock_counter(conn, datasets, name)
            if latest:
                row = conn.execute(
                    _versions_query().where(
                        dataset_versions.c.dataset_id == dataset_id,
                        dataset_versions.c.version == latest,
                    )
                ).one()
                if row.digest == new.digest:
                    return self._hydrate(conn, [row])[0], False
            parent_ids = list(dict.fromkeys(new.parents))
            if parent_ids:
                found = set(
                    conn.execute(
                        sa.select(dataset_versions.c.id).where(
                            dataset_versions.c.id.in_(parent_ids)
                        )
                    ).scalars()
                )
                missing = [p for p in parent_ids if p not in found]
                if missing:
                    raise NotFound(
                        f"parent dataset version(s) {', '.join(missing)} do not exist; "
                        "pass versions returned by keel.data.add or keel.data.get_version"
                    )
            number = latest + 1
            version_id = new_id()
            conn.execute(
                datasets.update().where(datasets.c.id == dataset_id).values(latest_version=number)
            )
            conn.execute(
                dataset_versions.insert().values(
                    id=version_id,
                    dataset_id=dataset_id,
                    version=number,
                    digest=new.digest,
                    file_count=new.file_count,
                    size=new.size,
                    kind=new.kind,
                    message=new.message,
                    created_at=now,
                    schema=_dumps(new.schema),
                    profile=_dumps(new.profile),
                    extra=orjson.dumps(dict(new.metadata or {})).decode(),
                )
            )
            if parent_ids:
                conn.execute(
                    dataset_parents.insert(),
                    [{"version_id": version_id, "parent_id": p} for p in parent_ids],
                )
            row = conn.execute(_versions_query().where(dataset_versions.c.id == version_id)).one()
            return self._hydrate(conn, [row])[0], True

    def set_tag(self, ref: DatasetRef, tag: str) -> tuple[DatasetVersion, int | None]:
        """Point ``tag`` at the version ``ref`` names; return it and the tag's old number."""
        now = time.time()
        with self._write() as conn:
            row = self._resolve(conn, ref)
            previous = conn.execute(
                sa.select(dataset_tags.c.version_id).where(
                    dataset_tags.c.dataset_id == row.dataset_id, dataset_tags.c.tag == tag
                )
            ).scalar()
            old_number = None
            if previous is not None:
                old_number = conn.execute(
                    sa.select(dataset_versions.c.version).where(dataset_versions.c.id == previous)
                ).scalar()
            if previous != row.id:
                stmt = self._insert(dataset_tags)
                conn.execute(
                    stmt.on_conflict_do_update(
                        index_elements=["dataset_id", "tag"],
                        set_={
                            "version_id": stmt.excluded.version_id,
                            "updated_at": stmt.excluded.updated_at,
                        },
                    ),
                    {
                        "dataset_id": row.dataset_id,
                        "tag": tag,
                        "version_id": row.id,
                        "updated_at": now,
                    },
                )
                conn.execute(
                    dataset_tag_history.insert().values(
                        dataset_id=row.dataset_id,
                        tag=tag,
                        version_id=row.id,
                        previous_version_id=previous,
                        moved_at=now,
                    )
                )
            return self._hydrate(conn, [row])[0], old_number

    def record_input(self, run_id: str, version_id: str) -> None:
        """Link a run to a dataset version it used (idempotent)."""
        stmt = self._insert(run_inputs).values(
            run_id=run_id, version_id=version_id, created_at=time.time()
        )
        try:
            with self._write() as conn:
                conn.execute(stmt.on_conflict_do_nothing(index_elements=["run_id", "version_id"]))
        except SAIntegrityError:
            raise NotFound(
                f"cannot log input: run {run_id!r} or dataset version {version_id!r} does not "
                "exist; start a run with keel.start_run() and pass a version from keel.data"
            ) from None

    # reading ------------------------------------------------------------------------

    def resolve(self, ref: DatasetRef) -> DatasetVersion:
        """The version ``ref`` names (latest when it names none)."""
        with self._read() as conn:
            return self._hydrate(conn, [self._resolve(conn, ref)])[0]

    def get_by_id(self, version_id: str) -> DatasetVersion:
        with self._read() as conn:
            row = conn.execute(_versions_query().where(dataset_versions.c.id == version_id)).first()
            if row is None:
                raise NotFound(f"no dataset version with id {version_id!r}")
            return self._hydrate(conn, [row])[0]

    def list_datasets(self) -> list[DatasetSummary]:
        counts = (
            sa.select(dataset_versions.c.dataset_id, sa.func.count().label("n"))
            .group_by(dataset_versions.c.dataset_id)
            .subquery()
        )
        query = (
            sa.select(datasets, sa.func.coalesce(counts.c.n, 0).label("n"))
            .outerjoin(counts, counts.c.dataset_id == datasets.c.id)
            .where(datasets.c.latest_version > 0)
            .order_by(datasets.c.name)
        )
        with self._read() as conn:
            return [
                DatasetSummary(r.name, r.n, r.latest_version, r.created_at)
                for r in conn.execute(query)
            ]

    def list_versions(self, name: str) -> list[DatasetVersion]:
        with self._read() as conn:
            self._dataset_id(conn, name)
            rows = conn.execute(
                _versions_query()
                .where(datasets.c.name == name)
                .order_by(dataset_versions.c.version)
            ).all()
            return self._hydrate(conn, rows)

    def tag_history(self, name: str) -> list[TagMove]:
        current = dataset_versions.alias("current")
        previous = dataset_versions.alias("previous")
        with self._read() as conn:
            dataset_id = self._dataset_id(conn, name)
            rows = conn.execute(
                sa.select(
                    dataset_tag_history.c.tag,
                    current.c.version,
                    previous.c.version.label("previous"),
                    dataset_tag_history.c.moved_at,
                )
                .join(current, current.c.id == dataset_tag_history.c.version_id)
                .outerjoin(previous, previous.c.id == dataset_tag_history.c.previous_version_id)
                .where(dataset_tag_history.c.dataset_id == dataset_id)
                .order_by(dataset_tag_history.c.id)
            ).all()
        return [TagMove(r.tag, r.version, r.previous, r.moved_at) for r in rows]

    def runs_using(self, version_id: str) -> list[RunUse]:
        query = (
            sa.select(
                runs.c.id,
                runs.c.name,
                experiments.c.name.label("experiment"),
                runs.c.status,
                run_inputs.c.created_at,
            )
            .join(runs, runs.c.id == run_inputs.c.run_id)
            .join(experiments, experiments.c.id == runs.c.experiment_id)
            .where(run_inputs.c.version_id == version_id, runs.c.deleted_at.is_(None))
            .order_by(run_inputs.c.created_at)
        )
        with self._read() as conn:
            return [
                RunUse(r.id, r.name, r.experiment, r.status, r.created_at)
                for r in conn.execute(query)
            ]

    def run_inputs(self, run_id: str) -> list[DatasetVersion]:
        with self._read() as conn:
            rows = conn.execute(
                _versions_query()
                .join(run_inputs, run_inputs.c.version_id == dataset_versions.c.id)
                .where(run_inputs.c.run_id == run_id)
                .order_by(run_inputs.c.created_at)
            ).all()
            return self._hydrate(conn, rows)

    def children(self, version_id: str) -> list[DatasetVersion]:
        """Versions derived from ``version_id`` (recorded as their parent)."""
        with self._read() as conn:
            rows = conn.execute(
                _versions_query()
                .join(dataset_parents, dataset_parents.c.version_id == dataset_versions.c.id)
                .where(dataset_parents.c.parent_id == version_id)
                .order_by(datasets.c.name, dataset_versions.c.version)
            ).all()
            return self._hydrate(conn, rows)

    def referenced_digests(self) -> set[str]:
        """Every manifest digest any version points at (for garbage collection)."""
        with self._read() as conn:
            return set(conn.execute(sa.select(dataset_versions.c.digest)).scalars())

    # helpers ------------------------------------------------------------------------

    def _dataset_id(self, conn: sa.Connection, name: str) -> str:
        found = conn.execute(
            sa.select(datasets.c.id).where(datasets.c.name == name, datasets.c.latest_version > 0)
        ).scalar()
        if found is None:
            raise NotFound(
                f"no dataset {name!r}; list datasets with `keel data list`, "
                f"or create it with `keel data add PATH --name {name}`"
            )
        return str(found)

    def _resolve(self, conn: sa.Connection, ref: DatasetRef) -> sa.Row[Any]:
        dataset_id = self._dataset_id(conn, ref.name)
        query = _versions_query().where(dataset_versions.c.dataset_id == dataset_id)
        if ref.tag is not None:
            query = query.join(
                dataset_tags, dataset_tags.c.version_id == dataset_versions.c.id
            ).where(dataset_tags.c.tag == ref.tag)
        elif ref.version is not None:
            query = query.where(dataset_versions.c.version == ref.version)
        else:
            query = query.order_by(dataset_versions.c.version.desc()).limit(1)
        row = conn.execute(query).first()
        if row is not None:
            return row
        if ref.tag is not None:
            raise NotFound(
                f"dataset {ref.name!r} has no tag {ref.tag!r}; set it with "
                f"`keel data tag {ref.name}@vN {ref.tag}` or see `keel data show {ref.name}`"
            )
        raise NotFound(
            f"dataset {ref.name!r} has no version v{ref.version}; "
            f"list its versions with `keel data show {ref.name}`"
        )

    def _hydrate(self, conn: sa.Connection, rows: Sequence[sa.Row[Any]]) -> list[DatasetVersion]:
        """Attach tags and parents to version rows, two queries in all."""
        if not rows:
            return []
        ids = [r.id for r in rows]
        tag_map: dict[str, list[str]] = {i: [] for i in ids}
        parent_map: dict[str, list[str]] = {i: [] for i in ids}
        for start in range(0, len(ids), 900):
            batch = ids[start : start + 900]
            for version_id, tag in conn.execute(
                sa.select(dataset_tags.c.version_id, dataset_tags.c.tag)
                .where(dataset_tags.c.version_id.in_(batch))
                .order_by(dataset_tags.c.tag)
            ):
                tag_map[version_id].append(tag)
            for version_id, parent_ref in conn.execute(
                sa.select(dataset_parents.c.version_id, _ref_label())
                .join(dataset_versions, dataset_versions.c.id == dataset_parents.c.parent_id)
                .join(datasets, datasets.c.id == dataset_versions.c.dataset_id)
                .where(dataset_parents.c.version_id.in_(batch))
            ):
                parent_map[version_id].append(parent_ref)
        return [
            DatasetVersion(
                id=r.id,
                name=r.name,
                version=r.version,
                digest=r.digest,
                manifest_digest=r.digest,
                file_count=r.file_count,
                size=r.size,
                created_at=r.created_at,
                message=r.message,
                kind=r.kind,
                schema=_loads(r.schema),
                profile=_loads(r.profile),
                parents=tuple(sorted(parent_map[r.id])),
                tags=tuple(tag_map[r.id]),
                metadata=_loads(r.extra) or {},
            )
            for r in rows
        ]


def _versions_query() -> sa.Select[Any]:
    return sa.select(dataset_versions, datasets.c.name).join(
        datasets, datasets.c.id == dataset_versions.c.dataset_id
    )


def _ref_label() -> sa.ColumnElement[str]:
    return (datasets.c.name + "@v" + sa.cast(dataset_versions.c.version, sa.String)).label("ref")


def _dumps(value: Mapping[str, Any] | None) -> str | None:
    if value is None:
        return None
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS).decode()


def _loads(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    loaded: dict[str, Any] = orjson.loads(text)
    return loaded
