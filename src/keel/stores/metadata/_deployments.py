"""Deployments in the metadata store: the current policy per name, and its history.

``deployments`` holds one row per endpoint with its current policy (JSON) and a
``revision`` that every change bumps; ``deployment_events`` is append-only, one row
per revision, written in the same transaction as the change. An update may name the
revision it was computed from (``expected_revision``): the check and the write happen
under the row's write lock (SQLite ``BEGIN IMMEDIATE``, PostgreSQL
``SELECT ... FOR UPDATE``), so of several servers rolling a canary back at once exactly
one succeeds and the others get ``Conflict``.
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Mapping
from typing import Any

import orjson
import sqlalchemy as sa

from keel.core._deployments import (
    Deployment,
    DeploymentEvent,
    DeploymentPolicy,
    validate_deployment_name,
)
from keel.core._ids import new_id
from keel.errors import AlreadyExists, Conflict, IntegrityError, InvalidArgument, NotFound
from keel.stores.metadata._base import EngineStore
from keel.stores.metadata._schema import deployment_events, deployments

__all__ = ["EVENT_KINDS", "DeploymentStore"]

EVENT_KINDS = ("create", "update", "rollback")
"""What a history entry records: the first policy, a change, or an automatic rollback."""


class DeploymentStore(EngineStore):
    """Deployments and their policy history in the metadata store (SQLite or PostgreSQL)."""

    # writing ------------------------------------------------------------------------

    def create(
        self,
        name: str,
        policy: DeploymentPolicy,
        *,
        description: str = "",
        actor: str | None = None,
        reason: str | None = None,
    ) -> Deployment:
        """Record a new deployment at revision 1, with its ``create`` event."""
        validate_deployment_name(name)
        text = _policy_json(policy)
        now = time.time()
        deployment_id = new_id()
        with self._write() as conn:
            conn.execute(
                self._insert(deployments)
                .values(
                    id=deployment_id,
                    name=name,
                    description=description,
                    policy=text,
                    revision=1,
                    created_at=now,
                    updated_at=now,
                )
                .on_conflict_do_nothing(index_elements=["name"])
            )
            row = self._row(conn, name)
            if row.id != deployment_id:  # the name was taken, by now or by a racing create
                raise AlreadyExists(
                    f"deployment {name!r} already exists; change its policy with "
                    f"`keel deploy update {name}`, or pick another name"
                )
            _append_event(conn, deployment_id, 1, "create", text, actor, reason, None, now)
            return _deployment(row)

    def update(
        self,
        name: str,
        policy: DeploymentPolicy,
        *,
        expected_revision: int | None = None,
        actor: str | None = None,
        reason: str | None = None,
        kind: str = "update",
        details: Mapping[str, Any] | None = None,
        description: str | None = None,
    ) -> Deployment:
        """Replace the policy (and the description, when given) and bump the revision.

        With ``expected_revision``, refuse with ``Conflict`` unless the deployment is
        still at that revision: a compare-and-set, atomic under concurrency.
        """
        if kind not in ("update", "rollback"):
            raise InvalidArgument(
                f"a deployment change is of kind 'update' or 'rollback', got {kind!r}; "
                "create a deployment with create()"
            )
        if expected_revision is not None and (
            isinstance(expected_revision, bool)
            or not isinstance(expected_revision, int)
            or expected_revision < 1
        ):
            raise InvalidArgument(
                f"expected_revision must be a positive integer, got {expected_revision!r}"
            )
        text = _policy_json(policy)
        details_text = _details_json(details)
        now = time.time()
        with self._write() as conn:
            row = self._row(conn, name, lock=True)
            if expected_revision is not None and row.revision != expected_revision:
                raise Conflict(
                    f"deployment {name!r} is at revision {row.revision}, not "
                    f"{expected_revision}: it changed since it was read; look at it again "
                    f"with `keel deploy show {name}` and retry"
                )
            revision = row.revision + 1
            values: dict[str, Any] = {"policy": text, "revision": revision, "updated_at": now}
            if description is not None:
                values["description"] = description
            changed = conn.execute(
                deployments.update()
                .where(deployments.c.id == row.id, deployments.c.revision == row.revision)
                .values(**values)
            )
            if changed.rowcount != 1:  # the lock makes this unreachable; never write blind
                raise Conflict(
                    f"deployment {name!r} changed during the update; retry "
                    f"`keel deploy update {name}`"
                )
            _append_event(conn, row.id, revision, kind, text, actor, reason, details_text, now)
            return _deployment(self._row(conn, name))

    def delete(self, name: str) -> None:
        """Remove a deployment and its history."""
        with self._write() as conn:
            row = self._row(conn, name, lock=True)
            conn.execute(deployments.delete().where(deployments.c.id == row.id))

    # reading ------------------------------------------------------------------------

    def get(self, name: str) -> Deployment:
        with self._read() as conn:
            return _deployment(self._row(conn, name))

    def list(self) -> builtins.list[Deployment]:
        """Every deployment, by name."""
        with self._read() as conn:
            rows = conn.execute(sa.select(deployments).order_by(deployments.c.name)).all()
        return [_deployment(r) for r in rows]

    def revision(self, name: str) -> int:
        """The current revision alone: cheap enough for servers to poll every second."""
        with self._read() as conn:
            found = conn.execute(
                sa.select(deployments.c.revision).where(deployments.c.name == name)
            ).scalar()
        if found is None:
            raise _not_found(name)
        return int(found)

    def history(self, name: str) -> builtins.list[DeploymentEvent]:
        """Every change of a deployment's policy, oldest first."""
        with self._read() as conn:
            row = self._row(conn, name)
            events = conn.execute(
                sa.select(deployment_events)
                .where(deployment_events.c.deployment_id == row.id)
                .order_by(deployment_events.c.revision)
            ).all()
        return [
            DeploymentEvent(
                revision=e.revision,
                kind=e.kind,
                policy=_policy(e.policy, name),
                at=e.at,
                actor=e.actor,
                reason=e.reason,
                details=_loads(e.details, name),
            )
            for e in events
        ]

    # helpers ------------------------------------------------------------------------

    def _row(self, conn: sa.Connection, name: str, *, lock: bool = False) -> sa.Row[Any]:
        query = sa.select(deployments).where(deployments.c.name == name)
        if lock and self.dialect == "postgresql":
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None:
            raise _not_found(name)
        return row


def _not_found(name: str) -> NotFound:
    return NotFound(
        f"no deployment {name!r}; list deployments with `keel deploy list`, or create it "
        f"with `keel deploy create {name} --model URI`"
    )


def _append_event(
    conn: sa.Connection,
    deployment_id: str,
    revision: int,
    kind: str,
    policy: str,
    actor: str | None,
    reason: str | None,
    details: str | None,
    at: float,
) -> None:
    conn.execute(
        deployment_events.insert().values(
            deployment_id=deployment_id,
            revision=revision,
            kind=kind,
            policy=policy,
            actor=actor,
            reason=reason,
            details=details or "{}",
            at=at,
        )
    )


def _policy_json(policy: DeploymentPolicy) -> str:
    if not isinstance(policy, DeploymentPolicy):
        raise InvalidArgument(
            f"a deployment policy must be a DeploymentPolicy, got {type(policy).__name__}; "
            "build one with DeploymentPolicy.from_dict()"
        )
    return orjson.dumps(policy.to_dict()).decode()


def _details_json(details: Mapping[str, Any] | None) -> str | None:
    if details is None:
        return None
    if not isinstance(details, Mapping):
        raise InvalidArgument(
            f"details must be a mapping, got {type(details).__name__}; pass a dict"
        )
    try:
        return orjson.dumps(dict(details)).decode()
    except TypeError as error:
        raise InvalidArgument(
            f"details must be JSON-serialisable ({error}); pass strings, numbers, lists and "
            "dicts with string keys"
        ) from None


def _loads(text: str, name: str) -> dict[str, Any]:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as error:
        raise IntegrityError(
            f"a stored record of deployment {name!r} is not valid JSON ({error}); "
            "restore the metadata store from a backup"
        ) from None
    if not isinstance(value, dict):
        raise IntegrityError(f"a stored record of deployment {name!r} is not a JSON object")
    return value


def _policy(text: str, name: str) -> DeploymentPolicy:
    try:
        return DeploymentPolicy.from_dict(_loads(text, name))
    except InvalidArgument as error:
        raise IntegrityError(
            f"the stored policy of deployment {name!r} is invalid ({error.message}); set a "
            f"valid one with `keel deploy update {name} --from-file policy.yaml`"
        ) from None


def _deployment(row: sa.Row[Any]) -> Deployment:
    return Deployment(
        id=row.id,
        name=row.name,
        policy=_policy(row.policy, row.name),
        revision=row.revision,
        created_at=row.created_at,
        updated_at=row.updated_at,
        description=row.description,
    )
