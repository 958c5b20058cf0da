"""The model registry's tables: registered models, numbered versions, aliases, approvals.

Version numbers are handed out as the dataset catalog does: ``registered_models``'s
row is created race-safely (``INSERT ... ON CONFLICT DO NOTHING``), then its
``latest_version`` is bumped in the same write transaction that inserts the version
row: SQLite serialises writers with ``BEGIN IMMEDIATE``, PostgreSQL locks the row with
``SELECT ... FOR UPDATE``. Concurrent registrations get consecutive numbers and a
failed one leaves no gap. Alias moves append to ``model_alias_history``; approvals and
overrides to ``model_approvals``; neither is ever updated.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from keel.core._filter import Expr
from keel.core._ids import new_id
from keel.core._models import GATE_TAG, ModelVersion
from keel.errors import Conflict, NotFound
from keel.stores.metadata._base import EngineStore
from keel.stores.metadata._registry_search import compile_version_filter
from keel.stores.metadata._registry_types import (
    AliasMove,
    Approval,
    InputDataset,
    RegisteredModel,
    previous_holder,
)
from keel.stores.metadata._schema import (
    dataset_versions,
    datasets,
    model_alias_history,
    model_aliases,
    model_approvals,
    model_version_tags,
    model_versions,
    registered_models,
    run_inputs,
    tags,
)

__all__ = [
    "AliasMove",
    "Approval",
    "GateCheck",
    "InputDataset",
    "ModelRegistryStore",
    "RegisteredModel",
]

GateCheck = Callable[[str | None], str | None]
"""Called inside an alias move's transaction with the run's live gate value: raises to
refuse the move, or returns the approval to record with it ("approval", "override")."""


class ModelRegistryStore(EngineStore):
    """Registered models and their versions in the metadata store (SQLite or PostgreSQL)."""

    # writing ------------------------------------------------------------------------

    def create_version(
        self,
        name: str,
        *,
        run_id: str,
        source: str,
        description: str = "",
        tags_: Mapping[str, str] | None = None,
        gate: str | None = None,
    ) -> ModelVersion:
        """Register the next version of ``name`` (created on first use), gaplessly."""
        now = time.time()
        with self._write() as conn:
            model_id, latest = self._lock_counter(conn, registered_models, name)
            number = latest + 1
            version_id = new_id()
            conn.execute(
                registered_models.update()
                .where(registered_models.c.id == model_id)
                .values(latest_version=number)
            )
            conn.execute(
                model_versions.insert().values(
                    id=version_id,
                    model_id=model_id,
                    version=number,
                    run_id=run_id,
                    source=source,
                    status="active",
                    description=description,
                    gate=gate,
                    created_at=now,
                    updated_at=now,
                )
            )
            if tags_:
                conn.execute(
                    model_version_tags.insert(),
                    [{"version_id": version_id, "key": k, "value": v} for k, v in tags_.items()],
                )
            return self._hydrate(conn, [self._version_row(conn, name, number)])[0]

    def set_alias(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        actor: str | None = None,
        reason: str | None = None,
        check: GateCheck | None = None,
    ) -> tuple[ModelVersion, int | None]:
        """Point ``alias`` at ``version``; return it and the alias's previous number.

        ``check`` sees the run's gate inside the transaction; it may refuse the move, or
        name an approval to record with it (its approver is ``actor``).
        """
        now = time.time()
        with self._write() as conn:
            model_id = self._model_id(conn, name, lock=True)
            row = self._version_row(conn, name, version)
            if row.status == "archived":
                raise Conflict(
                    f"version {version} of model {name!r} is archived and cannot take alias "
                    f"{alias!r}; promote an active version instead"
                )
            gate = _live_gate(conn, row.run_id)
            approval = check(gate) if check is not None else None
            previous = self._alias_version(conn, model_id, alias)
            self._point(conn, model_id, alias, row.id, now)
            conn.execute(
                model_versions.update().where(model_versions.c.id == row.id).values(gate=gate)
            )
            _record_move(
                conn,
                model_id,
                alias,
                "set",
                previous,
                version,
                actor,
                reason,
                approval == "override",
                now,
            )
            if approval is not None:
                conn.execute(
                    model_approvals.insert().values(
                        version_id=row.id,
                        alias=alias,
                        kind=approval,
                        approver=actor or "",
                        reason=reason or "",
                        gate=gate,
                        at=now,
                    )
                )
            return self._hydrate(conn, [self._version_row(conn, name, version)])[0], previous

    def delete_alias(
        self, name: str, alias: str, *, actor: str | None = None, reason: str | None = None
    ) -> int:
        """Remove ``alias``; return the version it pointed at."""
        with self._write() as conn:
            model_id = self._model_id(conn, name, lock=True)
            previous = self._alias_version(conn, model_id, alias)
            if previous is None:
                raise _no_alias(name, alias)
            conn.execute(
                model_aliases.delete().where(
                    model_aliases.c.model_id == model_id, model_aliases.c.alias == alias
                )
            )
            _record_move(
                conn, model_id, alias, "delete", previous, None, actor, reason, False, time.time()
            )
            return previous

    def rollback(
        self, name: str, alias: str, *, actor: str | None = None, reason: str | None = None
    ) -> tuple[ModelVersion, int]:
        """Move ``alias`` back to the version it held before its current one."""
        now = time.time()
        with self._write() as conn:
            model_id = self._model_id(conn, name, lock=True)
            current = self._alias_version(conn, model_id, alias)
            if current is None:
                raise _no_alias(name, alias)
            target = previous_holder(self._history(conn, model_id, alias))
            if target is None:
                raise Conflict(
                    f"alias {alias!r} of model {name!r} has no earlier version to roll back to; "
                    f"see its history with `keel models show {name}`"
                )
            row = self._version_row(conn, name, target)
            if row.status == "archived":
                raise Conflict(
                    f"cannot roll {alias!r} of {name!r} back to version {target}: it is "
                    f"archived; promote another version with `keel models promote {name} N`"
                )
            self._point(conn, model_id, alias, row.id, now)
            _record_move(
                conn, model_id, alias, "rollback", current, target, actor, reason, False, now
            )
            return self._hydrate(conn, [row])[0], current

    def set_status(self, name: str, version: int, status: str) -> ModelVersion:
        """Mark a version active, deprecated or archived (archived ones hold no alias)."""
        with self._write() as conn:
            row = self._version_row(conn, name, version)
            if status == "archived":
                held = sorted(
                    conn.execute(
                        sa.select(model_aliases.c.alias).where(model_aliases.c.version_id == row.id)
                    ).scalars()
                )
                if held:
                    raise Conflict(
                        f"version {version} of model {name!r} holds alias(es) "
                        f"{', '.join(held)}; move them first with `keel models promote` or "
                        "`keel models rollback`"
                    )
            conn.execute(
                model_versions.update()
                .where(model_versions.c.id == row.id)
                .values(status=status, updated_at=time.time())
            )
            return self._hydrate(conn, [self._version_row(conn, name, version)])[0]

    # reading ------------------------------------------------------------------------

    def get_version(self, name: str, version: int) -> ModelVersion:
        with self._read() as conn:
            return self._hydrate(conn, [self._version_row(conn, name, version)])[0]

    def get_by_alias(self, name: str, alias: str) -> ModelVersion:
        with self._read() as conn:
            model_id = self._model_id(conn, name)
            number = self._alias_version(conn, model_id, alias)
            if number is None:
                raise _no_alias(name, alias)
            return self._hydrate(conn, [self._version_row(conn, name, number)])[0]

    def list_models(self) -> list[RegisteredModel]:
        counts = (
            sa.select(model_versions.c.model_id, sa.func.count().label("n"))
            .group_by(model_versions.c.model_id)
            .subquery()
        )
        query = (
            sa.select(registered_models, sa.func.coalesce(counts.c.n, 0).label("n"))
            .outerjoin(counts, counts.c.model_id == registered_models.c.id)
            .where(registered_models.c.latest_version > 0)
            .order_by(registered_models.c.name)
        )
        alias_query = sa.select(
            model_aliases.c.model_id, model_aliases.c.alias, model_versions.c.version
        ).join(model_versions, model_versions.c.id == model_aliases.c.version_id)
        with self._read() as conn:
            aliases: dict[str, dict[str, int]] = {}
            for model_id, alias, number in conn.execute(alias_query):
                aliases.setdefault(model_id, {})[alias] = number
            return [
                RegisteredModel(
                    r.name,
                    r.description,
                    r.created_at,
                    r.latest_version,
                    r.n,
                    dict(sorted(aliases.get(r.id, {}).items())),
                )
                for r in conn.execute(query)
            ]

    def list_versions(self, name: str) -> list[ModelVersion]:
        with self._read() as conn:
            self._model_id(conn, name)
            rows = conn.execute(
                _versions_query()
                .where(registered_models.c.name == name)
                .order_by(model_versions.c.version)
            ).all()
            return self._hydrate(conn, rows)

    def search_versions(self, expr: Expr | None, *, limit: int = 1000) -> list[ModelVersion]:
        """Versions matching a parsed filter (see ``keel.registry.MODEL_ATTRIBUTES``)."""
        query = (
            _versions_query()
            .where(compile_version_filter(expr))
            .order_by(registered_models.c.name, model_versions.c.version)
            .limit(limit)
        )
        with self._read() as conn:
            return self._hydrate(conn, conn.execute(query).all())

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasMove]:
        with self._read() as conn:
            return self._history(conn, self._model_id(conn, name), alias)

    def approvals(self, name: str, version: int | None = None) -> list[Approval]:
        query = (
            sa.select(model_approvals, model_versions.c.version)
            .join(model_versions, model_versions.c.id == model_approvals.c.version_id)
            .join(registered_models, registered_models.c.id == model_versions.c.model_id)
            .where(registered_models.c.name == name)
            .order_by(model_approvals.c.id)
        )
        if version is not None:
            query = query.where(model_versions.c.version == version)
        with self._read() as conn:
            return [
                Approval(r.version, r.alias, r.kind, r.approver, r.reason, r.gate, r.at)
                for r in conn.execute(query)
            ]

    def run_inputs(self, run_id: str) -> list[InputDataset]:
        """The dataset versions ``run_id`` logged as inputs, in logging order."""
        query = (
            sa.select(
                dataset_versions.c.id,
                datasets.c.name,
                dataset_versions.c.version,
                dataset_versions.c.digest,
            )
            .join(run_inputs, run_inputs.c.version_id == dataset_versions.c.id)
            .join(datasets, datasets.c.id == dataset_versions.c.dataset_id)
            .where(run_inputs.c.run_id == run_id)
            .order_by(run_inputs.c.created_at, datasets.c.name)
        )
        with self._read() as conn:
            return [InputDataset(r.id, r.name, r.version, r.digest) for r in conn.execute(query)]

    # helpers ------------------------------------------------------------------------

    def _model_id(self, conn: sa.Connection, name: str, *, lock: bool = False) -> str:
        query = sa.select(registered_models.c.id).where(
            registered_models.c.name == name, registered_models.c.latest_version > 0
        )
        if lock and self.dialect == "postgresql":
            query = query.with_for_update()
        found = conn.execute(query).scalar()
        if found is None:
            raise NotFound(
                f"no registered model {name!r}; list models with `keel models list`, or "
                f"register one with keel.register_model('runs:/<run_id>/model', {name!r})"
            )
        return str(found)

    def _version_row(self, conn: sa.Connection, name: str, version: int) -> sa.Row[Any]:
        row = conn.execute(
            _versions_query().where(
                registered_models.c.name == name, model_versions.c.version == version
            )
        ).first()
        if row is None:
            self._model_id(conn, name)
            raise NotFound(
                f"model {name!r} has no version {version}; list its versions with "
                f"`keel models show {name}`"
            )
        return row

    def _alias_version(self, conn: sa.Connection, model_id: str, alias: str) -> int | None:
        found = conn.execute(
            sa.select(model_versions.c.version)
            .join(model_aliases, model_aliases.c.version_id == model_versions.c.id)
            .where(model_aliases.c.model_id == model_id, model_aliases.c.alias == alias)
        ).scalar()
        return None if found is None else int(found)

    def _point(
        self, conn: sa.Connection, model_id: str, alias: str, version_id: str, now: float
    ) -> None:
        stmt = self._insert(model_aliases)
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["model_id", "alias"],
                set_={
                    "version_id": stmt.excluded.version_id,
                    "updated_at": stmt.excluded.updated_at,
                },
            ),
            {"model_id": model_id, "alias": alias, "version_id": version_id, "updated_at": now},
        )

    def _history(self, conn: sa.Connection, model_id: str, alias: str | None) -> list[AliasMove]:
        query = (
            sa.select(model_alias_history)
            .where(model_alias_history.c.model_id == model_id)
            .order_by(model_alias_history.c.id)
        )
        if alias is not None:
            query = query.where(model_alias_history.c.alias == alias)
        return [
            AliasMove(
                r.alias,
                r.action,
                r.from_version,
                r.to_version,
                r.actor,
                r.reason,
                bool(r.override),
                r.at,
            )
            for r in conn.execute(query)
        ]

    def _hydrate(self, conn: sa.Connection, rows: Sequence[sa.Row[Any]]) -> list[ModelVersion]:
        """Attach tags, aliases and the runs' live gate to version rows."""
        if not rows:
            return []
        ids = [r.id for r in rows]
        tag_map: dict[str, dict[str, str]] = {i: {} for i in ids}
        alias_map: dict[str, list[str]] = {i: [] for i in ids}
        gates: dict[str, str] = {}
        for start in range(0, len(ids), 900):
            batch = ids[start : start + 900]
            for version_id, key, value in conn.execute(
                sa.select(
                    model_version_tags.c.version_id,
                    model_version_tags.c.key,
                    model_version_tags.c.value,
                )
                .where(model_version_tags.c.version_id.in_(batch))
                .order_by(model_version_tags.c.key)
            ):
                tag_map[version_id][key] = value
            for version_id, alias in conn.execute(
                sa.select(model_aliases.c.version_id, model_aliases.c.alias)
                .where(model_aliases.c.version_id.in_(batch))
                .order_by(model_aliases.c.alias)
            ):
                alias_map[version_id].append(alias)
        run_ids = sorted({r.run_id for r in rows})
        for start in range(0, len(run_ids), 900):
            for run_id, value in conn.execute(
                sa.select(tags.c.run_id, tags.c.value).where(
                    tags.c.key == GATE_TAG, tags.c.run_id.in_(run_ids[start : start + 900])
                )
            ):
                gates[run_id] = value
        return [
            ModelVersion(
                name=r.name,
                version=r.version,
                run_id=r.run_id,
                source=r.source,
                created_at=r.created_at,
                status=r.status,
                description=r.description,
                tags=tag_map[r.id],
                aliases=tuple(alias_map[r.id]),
                gate=gates.get(r.run_id, r.gate),
            )
            for r in rows
        ]


def _record_move(
    conn: sa.Connection,
    model_id: str,
    alias: str,
    action: str,
    from_version: int | None,
    to_version: int | None,
    actor: str | None,
    reason: str | None,
    override: bool,
    at: float,
) -> None:
    conn.execute(
        model_alias_history.insert().values(
            model_id=model_id,
            alias=alias,
            action=action,
            from_version=from_version,
            to_version=to_version,
            actor=actor,
            reason=reason,
            override=override,
            at=at,
        )
    )


def _live_gate(conn: sa.Connection, run_id: str) -> str | None:
    value = conn.execute(
        sa.select(tags.c.value).where(tags.c.run_id == run_id, tags.c.key == GATE_TAG)
    ).scalar()
    return None if value is None else str(value)


def _no_alias(name: str, alias: str) -> NotFound:
    return NotFound(
        f"model {name!r} has no alias {alias!r}; set it with "
        f"`keel models promote {name} VERSION --alias {alias}`"
    )


def _versions_query() -> sa.Select[Any]:
    return sa.select(model_versions, registered_models.c.name).join(
        registered_models, registered_models.c.id == model_versions.c.model_id
    )
