"""The behaviour every Keel deployment store must show, as a pytest test class.

Subclass ``DeploymentStoreConformance`` and provide a ``deployments`` fixture returning
a ``DeploymentStore`` over an empty, migrated metadata store; every test then runs
against it. Keel runs it on SQLite and PostgreSQL.

Each refusal is checked to leave the deployment tables exactly as they were.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from keel.core._deployments import Deployment, DeploymentPolicy
from keel.errors import AlreadyExists, Conflict, InvalidArgument, KeelError, NotFound
from keel.stores.metadata import DeploymentStore
from keel.stores.metadata._schema import deployment_events, deployments

__all__ = ["POLICIES", "DeploymentStoreConformance", "deployment_snapshot"]

_TABLES = (deployments, deployment_events)

POLICIES: dict[str, dict[str, Any]] = {
    "single": {"routes": [{"model": "models:/credit@champion"}]},
    "ab": {
        "routes": [
            {"model": "models:/credit/1", "weight": 0.7},
            {"name": "challenger", "model": "models:/credit@challenger", "weight": 0.3},
        ]
    },
    "canary": {
        "routes": [{"model": "models:/credit/1"}],
        "canary": {
            "model": "models:/credit/2",
            "percent": 5,
            "max_error_rate_increase": 0.02,
            "max_latency_ratio": 1.5,
            "min_requests": 50,
        },
    },
    "canary+shadow": {
        "routes": [{"model": "models:/credit/1"}],
        "canary": {"model": "models:/credit/2", "percent": 12.5, "name": "probe"},
        "shadow": {"name": "mirror", "model": f"runs:/{'a' * 32}/model"},
    },
    "single+shadow": {
        "routes": [{"model": "models:/credit@champion"}],
        "shadow": "models:/credit@challenger",
    },
}
"""One policy of each mode, in ``DeploymentPolicy.from_dict`` form."""


def policy(kind: str = "single") -> DeploymentPolicy:
    return DeploymentPolicy.from_dict(POLICIES[kind])


def deployment_snapshot(engine: sa.Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the deployment tables, sorted: compare two to prove nothing changed."""
    with engine.connect() as conn:
        return {
            t.name: sorted((tuple(r) for r in conn.execute(sa.select(t))), key=repr)
            for t in _TABLES
        }


def _race(workers: int, call: Callable[[int], object]) -> tuple[list[object], list[BaseException]]:
    """Run ``call(i)`` in ``workers`` threads released together; results and errors."""
    barrier = threading.Barrier(workers)
    results: list[object] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work(i: int) -> None:
        barrier.wait()
        try:
            outcome = call(i)
        except BaseException as error:  # collected, and checked by the test
            with lock:
                errors.append(error)
        else:
            with lock:
                results.append(outcome)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a racing thread hung"
    return results, errors


class DeploymentStoreConformance:
    """Create, read, compare-and-set updates, history, polling, deletion, races."""

    def refused(
        self, store: DeploymentStore, error: type[KeelError], call: Callable[[], object]
    ) -> KeelError:
        """Run ``call``, expect ``error``, and check the deployment tables did not change."""
        before = deployment_snapshot(store.engine)
        with pytest.raises(error) as caught:
            call()
        assert deployment_snapshot(store.engine) == before
        return caught.value

    # creating -------------------------------------------------------------------

    def test_create_starts_at_revision_one_with_a_create_event(
        self, deployments: DeploymentStore
    ) -> None:
        created = deployments.create(
            "credit", policy(), description="credit scoring", actor="ada", reason="launch"
        )
        assert (created.name, created.revision, created.description) == (
            "credit",
            1,
            "credit scoring",
        )
        assert created.policy == policy()
        assert created.created_at == created.updated_at > 0
        assert len(created.id) == 32
        assert deployments.get("credit") == created
        assert deployments.revision("credit") == 1
        [event] = deployments.history("credit")
        assert (event.revision, event.kind, event.actor, event.reason) == (
            1,
            "create",
            "ada",
            "launch",
        )
        assert event.policy == policy()
        assert dict(event.details) == {}
        assert event.at == created.created_at

    @pytest.mark.parametrize("kind", sorted(POLICIES))
    def test_every_policy_mode_round_trips(self, deployments: DeploymentStore, kind: str) -> None:
        created = deployments.create("credit", policy(kind))
        assert created.policy == policy(kind)
        assert deployments.get("credit").policy.to_dict() == policy(kind).to_dict()
        assert deployments.get("credit").policy.mode == kind

    def test_a_taken_name_is_refused(self, deployments: DeploymentStore) -> None:
        deployments.create("credit", policy())
        error = self.refused(
            deployments, AlreadyExists, lambda: deployments.create("credit", policy("ab"))
        )
        assert "keel deploy update credit" in error.message
        assert deployments.get("credit").policy == policy()

    @pytest.mark.parametrize("name", ["", "Credit", "1credit", "a b", "x" * 64, "credit/1"])
    def test_an_invalid_name_is_refused(self, deployments: DeploymentStore, name: str) -> None:
        error = self.refused(
            deployments, InvalidArgument, lambda: deployments.create(name, policy())
        )
        assert "deployment name" in error.message

    def test_a_policy_must_be_a_policy(self, deployments: DeploymentStore) -> None:
        self.refused(
            deployments,
            InvalidArgument,
            lambda: deployments.create("credit", POLICIES["single"]),  # type: ignore[arg-type]
        )

    # listing and reading --------------------------------------------------------

    def test_list_is_sorted_by_name(self, deployments: DeploymentStore) -> None:
        assert deployments.list() == []
        for name in ("fraud", "credit", "churn-v2"):
            deployments.create(name, policy())
        listed = deployments.list()
        assert [d.name for d in listed] == ["churn-v2", "credit", "fraud"]
        assert all(isinstance(d, Deployment) for d in listed)

    @pytest.mark.parametrize("method", ["get", "revision", "history", "delete"])
    def test_a_missing_deployment_is_not_found(
        self, deployments: DeploymentStore, method: str
    ) -> None:
        error = self.refused(deployments, NotFound, lambda: getattr(deployments, method)("nope"))
        assert "no deployment 'nope'" in error.message
        assert "keel deploy list" in error.message

    def test_updating_a_missing_deployment_is_not_found(self, deployments: DeploymentStore) -> None:
        error = self.refused(deployments, NotFound, lambda: deployments.update("nope", policy()))
        assert "keel deploy list" in error.message

    # updating -------------------------------------------------------------------

    def test_update_bumps_the_revision_and_appends_an_event(
        self, deployments: DeploymentStore
    ) -> None:
        created = deployments.create("credit", policy())
        updated = deployments.update(
            "credit", policy("canary"), actor="ada", reason="try v2", details={"ticket": 7}
        )
        assert (updated.id, updated.revision, updated.created_at) == (
            created.id,
            2,
            created.created_at,
        )
        assert updated.updated_at >= created.updated_at
        assert updated.policy == policy("canary")
        assert updated.description == ""
        assert deployments.get("credit") == updated
        assert deployments.revision("credit") == 2
        history = deployments.history("credit")
        assert [(e.revision, e.kind) for e in history] == [(1, "create"), (2, "update")]
        assert (history[1].actor, history[1].reason, dict(history[1].details)) == (
            "ada",
            "try v2",
            {"ticket": 7},
        )
        assert history[1].policy == policy("canary")
        assert history[0].policy == policy()

    def test_update_can_change_the_description_and_keeps_it_otherwise(
        self, deployments: DeploymentStore
    ) -> None:
        deployments.create("credit", policy(), description="first")
        assert deployments.update("credit", policy("ab")).description == "first"
        assert deployments.update("credit", policy(), description="second").description == "second"

    def test_a_rollback_is_recorded_with_its_details(self, deployments: DeploymentStore) -> None:
        deployments.create("credit", policy("canary"))
        details = {"canary": {"error_rate": 0.2, "requests": 120}, "primary": {"error_rate": 0.0}}
        rolled = deployments.update(
            "credit",
            policy("canary").without_canary(),
            expected_revision=1,
            actor="keel-serving",
            reason="canary error rate above the primary's",
            kind="rollback",
            details=details,
        )
        assert rolled.policy.canary is None
        last = deployments.history("credit")[-1]
        assert (last.revision, last.kind, dict(last.details)) == (2, "rollback", details)

    def test_a_matching_expected_revision_updates(self, deployments: DeploymentStore) -> None:
        deployments.create("credit", policy())
        assert deployments.update("credit", policy("ab"), expected_revision=1).revision == 2
        assert deployments.update("credit", policy(), expected_revision=2).revision == 3

    def test_a_stale_expected_revision_is_a_conflict(self, deployments: DeploymentStore) -> None:
        deployments.create("credit", policy())
        deployments.update("credit", policy("ab"))
        error = self.refused(
            deployments,
            Conflict,
            lambda: deployments.update("credit", policy("canary"), expected_revision=1),
        )
        assert "revision 2, not 1" in error.message
        assert "keel deploy show credit" in error.message
        assert deployments.get("credit").policy == policy("ab")

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"kind": "create"},
            {"kind": "promote"},
            {"expected_revision": 0},
            {"expected_revision": True},
            {"expected_revision": "1"},
            {"details": {"when": object()}},
            {"details": ["not", "a", "mapping"]},
        ],
    )
    def test_invalid_update_arguments_are_refused(
        self, deployments: DeploymentStore, kwargs: dict[str, Any]
    ) -> None:
        deployments.create("credit", policy())
        self.refused(
            deployments, InvalidArgument, lambda: deployments.update("credit", policy(), **kwargs)
        )

    # deleting -------------------------------------------------------------------

    def test_delete_removes_the_deployment_and_its_history(
        self, deployments: DeploymentStore
    ) -> None:
        deployments.create("credit", policy())
        deployments.update("credit", policy("ab"))
        deployments.create("fraud", policy())
        deployments.delete("credit")
        assert [d.name for d in deployments.list()] == ["fraud"]
        with pytest.raises(NotFound):
            deployments.get("credit")
        with deployments.engine.connect() as conn:
            left = conn.execute(sa.select(sa.func.count()).select_from(deployment_events)).scalar()
        assert left == 1  # fraud's create event
        again = deployments.create("credit", policy("canary"))
        assert again.revision == 1
        assert [e.kind for e in deployments.history("credit")] == ["create"]

    # concurrency ----------------------------------------------------------------

    def test_compare_and_set_has_exactly_one_winner(self, deployments: DeploymentStore) -> None:
        """Several servers roll the same canary back at once: one change is recorded."""
        deployments.create("credit", policy("canary"))
        start = deployments.revision("credit")
        target = policy("canary").without_canary()
        results, errors = _race(
            4,
            lambda i: deployments.update(
                "credit",
                target,
                expected_revision=start,
                kind="rollback",
                actor=f"worker-{i}",
            ),
        )
        assert len(results) == 1, errors
        assert len(errors) == 3
        assert all(isinstance(e, Conflict) for e in errors), errors
        assert deployments.revision("credit") == start + 1
        assert [e.kind for e in deployments.history("credit")] == ["create", "rollback"]

    def test_two_updates_with_the_same_revision_one_wins(
        self, deployments: DeploymentStore
    ) -> None:
        deployments.create("credit", policy())
        results, errors = _race(
            2,
            lambda i: deployments.update(
                "credit", policy("ab" if i else "canary"), expected_revision=1
            ),
        )
        assert len(results) == 1, errors
        assert len(errors) == 1
        assert isinstance(errors[0], Conflict)
        winner = results[0]
        assert isinstance(winner, Deployment)
        assert deployments.get("credit").policy == winner.policy
        assert deployments.revision("credit") == 2

    def test_unconditional_updates_get_gapless_revisions(
        self, deployments: DeploymentStore
    ) -> None:
        deployments.create("credit", policy())
        results, errors = _race(
            6, lambda i: deployments.update("credit", policy("ab"), actor=f"w{i}")
        )
        assert not errors, errors
        revisions = sorted(d.revision for d in results if isinstance(d, Deployment))
        assert revisions == [2, 3, 4, 5, 6, 7]
        assert [e.revision for e in deployments.history("credit")] == list(range(1, 8))

    def test_concurrent_creates_of_one_name_have_one_winner(
        self, deployments: DeploymentStore
    ) -> None:
        results, errors = _race(4, lambda i: deployments.create("credit", policy(), actor=f"w{i}"))
        assert len(results) == 1, errors
        assert all(isinstance(e, AlreadyExists) for e in errors), errors
        assert len(deployments.history("credit")) == 1

    # schema ---------------------------------------------------------------------

    def test_the_migration_matches_the_schema(self, deployments: DeploymentStore) -> None:
        from alembic.autogenerate import compare_metadata
        from alembic.migration import MigrationContext

        from keel.stores.metadata._schema import metadata

        with deployments.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
        ours = {t.name for t in _TABLES}
        assert [change for change in diff if _tables_named(change) & ours] == []


def _tables_named(change: Any) -> set[str]:
    """The tables an autogenerate difference (a tuple, or a list of them) touches."""
    names: set[str] = set()
    for item in change if isinstance(change, list) else [change]:
        for part in item:
            table = part if isinstance(part, sa.Table) else getattr(part, "table", None)
            if isinstance(table, sa.Table):
                names.add(table.name)
            elif isinstance(part, str):
                names.add(part)
    return names
