"""The behaviour every Keel model registry back-end must show, as a pytest test class.

Subclass ``RegistryConformance`` and provide a ``registry`` fixture returning a
``RegistryService`` over an empty metadata store (its tracking service included);
every test then runs against it. Keel runs it on SQLite and PostgreSQL.

Each refusal is checked to leave the registry's tables exactly as they were.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from keel.core._models import DESCRIPTOR, EVALUATION_ARTIFACT, GATE_TAG, ModelURI
from keel.errors import Conflict, FilterSyntaxError, InvalidArgument, KeelError, NotFound
from keel.registry import RegistryService
from keel.stores.metadata._datasets import DatasetCatalog, NewVersion
from keel.stores.metadata._schema import (
    model_alias_history,
    model_aliases,
    model_approvals,
    model_version_tags,
    model_versions,
    registered_models,
)

__all__ = ["RegistryConformance", "make_model_run", "registry_snapshot"]

_TABLES = (
    registered_models,
    model_versions,
    model_version_tags,
    model_aliases,
    model_alias_history,
    model_approvals,
)


def registry_snapshot(engine: sa.Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the registry's tables, sorted: compare two to prove nothing changed."""
    with engine.connect() as conn:
        return {
            t.name: sorted((tuple(r) for r in conn.execute(sa.select(t))), key=repr)
            for t in _TABLES
        }


def make_model_run(
    registry: RegistryService,
    *,
    gate: str | None = None,
    path: str = "model",
    metrics: dict[str, float] | None = None,
    params: dict[str, str] | None = None,
    experiment: str = "registry-conformance",
) -> str:
    """A finished run holding a minimal package descriptor at ``<path>/keel-model.json``."""
    tracking = registry.tracking
    run = tracking.create_run(experiment)
    descriptor = {"run_id": run.id, "artifact_path": path, "flavor": "pyfunc", "files": {}}
    tracking.log_bytes(run.id, orjson.dumps(descriptor), f"{path}/{DESCRIPTOR}")
    if metrics:
        tracking.log_metrics(run.id, metrics)
    if params:
        tracking.log_params(run.id, params)
    if gate is not None:
        tracking.set_tags(run.id, {GATE_TAG: gate})
    tracking.end_run(run.id)
    return run.id


class RegistryConformance:
    """Registration, aliases and their gate, rollback, lifecycle, search, lineage, cards."""

    def refused(
        self, registry: RegistryService, error: type[KeelError], call: Callable[[], object]
    ) -> KeelError:
        """Run ``call``, expect ``error``, and check the registry's tables did not change."""
        before = registry_snapshot(registry.store.engine)
        with pytest.raises(error) as caught:
            call()
        assert registry_snapshot(registry.store.engine) == before
        return caught.value

    # registering ----------------------------------------------------------------

    def test_versions_are_numbered_from_one(self, registry: RegistryService) -> None:
        run_id = make_model_run(registry)
        first = registry.register_model(
            f"runs:/{run_id}/model", "credit", description="lr", tags={"domain": "credit"}
        )
        second = registry.register_model(f"runs:/{run_id}/model", "credit")
        assert (first.name, first.version, second.version) == ("credit", 1, 2)
        assert first.source == f"runs:/{run_id}/model"
        assert first.run_id == run_id
        assert first.status == "active"
        assert first.uri == "models:/credit/1"
        got = registry.get_model_version("credit", 1)
        assert (got.description, dict(got.tags)) == ("lr", {"domain": "credit"})
        assert registry.resolve("models:/credit/2").version == 2
        assert [v.version for v in registry.list_versions("credit")] == [1, 2]
        [model] = registry.list_models()
        assert (model.name, model.latest_version, model.version_count) == ("credit", 2, 2)

    def test_models_are_numbered_independently(self, registry: RegistryService) -> None:
        run_id = make_model_run(registry, path="pkg/inner")
        assert registry.register_model(f"runs:/{run_id}/pkg/inner", "a").version == 1
        assert registry.register_model(f"runs:/{run_id}/pkg/inner", "b").version == 1
        assert [m.name for m in registry.list_models()] == ["a", "b"]

    def test_unknown_run_is_refused(self, registry: RegistryService) -> None:
        error = self.refused(
            registry, NotFound, lambda: registry.register_model(f"runs:/{'0' * 32}/model", "m")
        )
        assert "keel runs list" in error.message

    def test_missing_package_descriptor_is_refused(self, registry: RegistryService) -> None:
        run_id = make_model_run(registry)
        error = self.refused(
            registry, NotFound, lambda: registry.register_model(f"runs:/{run_id}/other", "m")
        )
        assert "other/keel-model.json" in error.message
        assert "log_model" in error.message

    @pytest.mark.parametrize(
        ("uri", "name"),
        [
            ("runs:/{run}/model", "bad/name"),
            ("runs:/{run}/model", ""),
            ("runs:/{run}/model", "a..b"),
            ("runs:/nothex/model", "m"),
            ("models:/m/1", "m"),
            ("s3://bucket/model", "m"),
        ],
    )
    def test_invalid_input_is_refused(self, registry: RegistryService, uri: str, name: str) -> None:
        run_id = make_model_run(registry)
        self.refused(
            registry,
            InvalidArgument,
            lambda: registry.register_model(uri.format(run=run_id), name),
        )

    def test_missing_versions_and_aliases_are_not_found(self, registry: RegistryService) -> None:
        run_id = make_model_run(registry, gate="passed")
        registry.register_model(f"runs:/{run_id}/model", "m")
        for call in (
            lambda: registry.get_model_version("m", 9),
            lambda: registry.get_model_version("nope", 1),
            lambda: registry.get_by_alias("m", "champion"),
            lambda: registry.resolve("models:/m@champion"),
            lambda: registry.set_alias("m", "champion", 9),
            lambda: registry.set_alias("nope", "champion", 1),
            lambda: registry.delete_alias("m", "staging"),
            lambda: registry.rollback("m"),
            lambda: registry.archive("m", 2),
            lambda: registry.lineage("m", 2),
        ):
            self.refused(registry, NotFound, call)
        for bad in (
            lambda: registry.set_alias("m", "v3", 1),
            lambda: registry.set_alias("m", "has space", 1),
            lambda: registry.set_alias("m", "staging", 0),
            lambda: registry.get_model_version("m", "x"),
        ):
            self.refused(registry, InvalidArgument, bad)

    # aliases and the gate -------------------------------------------------------

    def test_champion_needs_a_passed_gate(self, registry: RegistryService) -> None:
        never = registry.register_model(f"runs:/{make_model_run(registry)}/model", "m")
        failed = registry.register_model(
            f"runs:/{make_model_run(registry, gate='failed')}/model", "m"
        )
        passed = registry.register_model(
            f"runs:/{make_model_run(registry, gate='passed')}/model", "m"
        )
        assert (never.gate, failed.gate, passed.gate) == (None, "failed", "passed")
        error = self.refused(registry, Conflict, lambda: registry.set_alias("m", "champion", 1))
        assert "gate was never run" in error.message
        assert "--override" in error.message
        error = self.refused(registry, Conflict, lambda: registry.set_alias("m", "champion", 2))
        assert "gate failed" in error.message
        moved = registry.set_alias("m", "champion", 3, actor="ada", reason="best auc")
        assert moved.aliases == ("champion",)
        assert registry.get_by_alias("m", "champion").version == passed.version
        assert registry.resolve("models:/m@champion").source == passed.source
        [approval] = registry.approvals("m")
        assert (approval.version, approval.kind, approval.approver) == (3, "approval", "ada")
        # any other alias needs no gate
        assert registry.set_alias("m", "challenger", 1).aliases == ("challenger",)

    def test_override_needs_actor_and_reason(self, registry: RegistryService) -> None:
        registry.register_model(f"runs:/{make_model_run(registry, gate='failed')}/model", "m")
        for kwargs in (
            {"override": True},
            {"override": True, "actor": "ada"},
            {"override": True, "actor": "ada", "reason": "   "},
            {"override": True, "reason": "why"},
            {"override": True, "actor": "", "reason": "why"},
        ):
            self.refused(
                registry,
                InvalidArgument,
                lambda kw=kwargs: registry.set_alias("m", "champion", 1, **kw),  # type: ignore[misc]
            )
        found = registry.set_alias(
            "m", "champion", 1, override=True, actor="ada", reason="gate data was stale"
        )
        assert found.aliases == ("champion",)
        [approval] = registry.approvals("m", 1)
        assert (approval.kind, approval.approver, approval.reason, approval.gate) == (
            "override",
            "ada",
            "gate data was stale",
            "failed",
        )
        [move] = registry.alias_history("m", "champion")
        assert (move.override, move.actor, move.to_version) == (True, "ada", 1)

    def test_rollback_walks_back_through_history(self, registry: RegistryService) -> None:
        run_id = make_model_run(registry, gate="passed")
        for _ in range(3):
            registry.register_model(f"runs:/{run_id}/model", "m")
        self.refused(registry, NotFound, lambda: registry.rollback("m"))
        registry.set_alias("m", "champion", 1)
        self.refused(registry, Conflict, lambda: registry.rollback("m"))
        registry.set_alias("m", "champion", 2)
        registry.set_alias("m", "champion", 3)
        assert registry.rollback("m", actor="ops", reason="latency").version == 2
        assert registry.get_by_alias("m", "champion").version == 2
        assert registry.rollback("m").version == 1
        self.refused(registry, Conflict, lambda: registry.rollback("m"))
        history = registry.alias_history("m", "champion")
        assert [(h.action, h.from_version, h.to_version) for h in history] == [
            ("set", None, 1),
            ("set", 1, 2),
            ("set", 2, 3),
            ("rollback", 3, 2),
            ("rollback", 2, 1),
        ]
        assert history[3].actor == "ops"

    def test_delete_alias_is_recorded(self, registry: RegistryService) -> None:
        run_id = make_model_run(registry)
        registry.register_model(f"runs:/{run_id}/model", "m")
        registry.set_alias("m", "staging", 1)
        assert registry.delete_alias("m", "staging", actor="ada") == 1
        assert registry.get_model_version("m", 1).aliases == ()
        assert [h.action for h in registry.alias_history("m")] == ["set", "delete"]

    # lifecycle ------------------------------------------------------------------

    def test_archive_and_deprecate(self, registry: RegistryService) -> None:
        run_id = make_model_run(registry, gate="passed")
        registry.register_model(f"runs:/{run_id}/model", "m")
        registry.register_model(f"runs:/{run_id}/model", "m")
        registry.set_alias("m", "champion", 1)
        self.refused(registry, Conflict, lambda: registry.archive("m", 1))
        assert registry.deprecate("m", 1).status == "deprecated"
        assert registry.archive("m", 2).status == "archived"
        self.refused(registry, Conflict, lambda: registry.set_alias("m", "champion", 2))
        registry.set_alias("m", "champion", 1)
        assert registry.get_model_version("m", 2).status == "archived"

    # search ---------------------------------------------------------------------

    def test_search_over_tags_metrics_params_and_attributes(
        self, registry: RegistryService
    ) -> None:
        good = make_model_run(registry, metrics={"auc": 0.91}, params={"C": "1"})
        poor = make_model_run(registry, metrics={"auc": 0.7}, params={"C": "10"})
        registry.register_model(f"runs:/{good}/model", "credit", tags={"domain": "credit"})
        registry.register_model(f"runs:/{poor}/model", "credit", tags={"domain": "credit"})
        registry.register_model(f"runs:/{good}/model", "churn", tags={"domain": "churn"})
        registry.deprecate("credit", 2)

        def found(text: str | None) -> list[str]:
            return [f"{v.name}/{v.version}" for v in registry.search_models(text)]

        assert found("tags.domain = 'credit' and metrics.auc > 0.8") == ["credit/1"]
        assert found("params.C = '10'") == ["credit/2"]
        assert found("status = 'DEPRECATED'") == ["credit/2"]
        assert found("version >= 2 or name = 'churn'") == ["churn/1", "credit/2"]
        assert found("name LIKE 'cr%' and not status = 'deprecated'") == ["credit/1"]
        assert found("tags.owner IS NULL and metrics.auc IS NOT NULL") == [
            "churn/1",
            "credit/1",
            "credit/2",
        ]
        assert found(None) == found("") == ["churn/1", "credit/1", "credit/2"]
        assert found("tags.domain = 'x'' or 1=1 --'") == []

    @pytest.mark.parametrize(
        "text",
        ["metrics.auc >", "status = 'FINISHED'", "start_time > 1", "tags.x = 1", "((name = 'a'"],
    )
    def test_malformed_filter_is_refused(self, registry: RegistryService, text: str) -> None:
        self.refused(registry, FilterSyntaxError, lambda: registry.search_models(text))

    # lineage and cards ----------------------------------------------------------

    def test_lineage_collects_run_data_and_inputs(self, registry: RegistryService) -> None:
        run_id = make_model_run(registry, metrics={"auc": 0.9}, params={"C": "1"})
        catalog = DatasetCatalog(registry.store.engine)
        data, _ = catalog.commit_version("loans", NewVersion("d" * 64, 1, 10, "file"))
        catalog.record_input(run_id, data.id)
        registry.register_model(f"runs:/{run_id}/model", "m")
        lineage = registry.lineage("m", 1)
        assert lineage.run.id == run_id
        assert dict(lineage.params) == {"C": "1"}
        assert dict(lineage.metrics) == {"auc": 0.9}
        assert [d.ref for d in lineage.datasets] == ["loans@v1"]
        assert lineage.experiment == "registry-conformance"
        as_dict = lineage.to_dict()
        assert as_dict["datasets"][0]["digest"] == "d" * 64
        assert orjson.dumps(as_dict)

    def test_model_card_renders_evaluation_and_escapes(self, registry: RegistryService) -> None:
        run_id = make_model_run(registry, gate="passed", metrics={"auc": 0.9})
        report = {
            "format": "keel.evaluation/1",
            "metrics": {"auc": {"value": 0.91, "low": 0.89, "high": 0.93}, "f1": 0.8},
            "slices": [
                {"slice": "gender", "value": "<f>", "count": 120, "metrics": {"auc": 0.88}},
                {
                    "slice": "gender",
                    "value": "m",
                    "count": 130,
                    "metrics": {"auc": {"value": 0.93}},
                },
            ],
            "fairness": {"sensitive": "gender", "demographic_parity_difference": 0.04},
        }
        registry.tracking.log_bytes(run_id, orjson.dumps(report), EVALUATION_ARTIFACT)
        registry.register_model(f"runs:/{run_id}/model", "m", description="<script>x</script>")
        registry.set_alias("m", "champion", 1, actor="ada", reason="passed | gate")
        card = registry.model_card("m", 1, intended_use="credit <b>decisions</b>")
        markdown = card.to_markdown()
        assert "| gender = &lt;f&gt; | 120 | 0.88 |" in markdown
        assert "| gender = m | 130 | 0.93 |" in markdown
        assert "| auc | 0.91 [0.89, 0.93] |" in markdown
        assert "demographic_parity_difference" in markdown
        assert "passed \\| gate" in markdown
        assert "champion" in markdown
        page = card.to_html()
        assert page.startswith("<!DOCTYPE html>")
        assert "<script>" not in page
        assert "&lt;script&gt;" in page
        assert "<b>" not in page
        assert "0.91" in page
        assert "src=" not in page
        assert "href=" not in page

    def test_card_without_evaluation_uses_run_metrics(self, registry: RegistryService) -> None:
        run_id = make_model_run(registry, metrics={"rmse": 1.5})
        registry.register_model(f"runs:/{run_id}/model", "m")
        markdown = registry.model_card("m", 1).to_markdown()
        assert "| rmse | 1.5 |" in markdown
        assert "| gate | not run |" in markdown

    # concurrency ----------------------------------------------------------------

    def test_concurrent_registrations_are_gapless(self, registry: RegistryService) -> None:
        run_id = make_model_run(registry)
        errors: list[BaseException] = []

        def register() -> None:
            try:
                for _ in range(10):
                    registry.register_model(f"runs:/{run_id}/model", "shared")
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=register) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert [v.version for v in registry.list_versions("shared")] == list(range(1, 41))

    def test_uri_round_trip(self, registry: RegistryService) -> None:
        run_id = make_model_run(registry, gate="passed")
        version = registry.register_model(f"runs:/{run_id}/model", "m")
        registry.set_alias("m", "champion", 1)
        assert str(ModelURI.parse(version.uri)) == "models:/m/1"
        assert registry.get("m@champion") == registry.get("m/1")
        self.refused(registry, InvalidArgument, lambda: registry.resolve(version.source))
