"""The registry service: register run packages as numbered versions, alias and promote them.

A version becomes ``champion`` only when its run carries ``keel.gate = passed`` (set by
the validation gate), or when an approver overrides with a recorded reason; the check
runs inside the alias move's write transaction, so a refusal changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from keel.core._filter import parse_filter
from keel.core._models import (
    DESCRIPTOR,
    ModelURI,
    ModelVersion,
    validate_alias,
    validate_model_name,
)
from keel.core._names import (
    MAX_DESCRIPTION_LENGTH,
    MAX_TAG_VALUE_LENGTH,
    validate_actor,
    validate_key,
    validate_reason,
    validate_text_value,
)
from keel.errors import Conflict, InvalidArgument, NotFound
from keel.registry._card import ModelCard, build_card
from keel.registry._lineage import Lineage, build_lineage
from keel.stores.metadata._registry import (
    AliasMove,
    Approval,
    ModelRegistryStore,
    RegisteredModel,
)
from keel.stores.metadata._registry_search import MODEL_ATTRIBUTES
from keel.tracking import TrackingService

__all__ = ["GATED_ALIASES", "RegistryService", "parse_version_ref"]

GATED_ALIASES = frozenset({"champion"})
"""Aliases a version may take only after passing its validation gate (or an override)."""


def _version_number(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidArgument(f"a model version is a positive integer such as 3, got {value!r}")
    text = str(value).strip().removeprefix("v")
    if not text.isdigit() or int(text) < 1:
        raise InvalidArgument(f"a model version is a positive integer such as 3, got {value!r}")
    return int(text)


def parse_version_ref(text: str) -> ModelURI:
    """``NAME/3``, ``NAME@champion`` (or a full ``models:/`` URI) as a ModelURI."""
    if not isinstance(text, str) or not text:
        raise InvalidArgument("name a model version as NAME/3 or NAME@champion")
    uri = ModelURI.parse(text if text.startswith("models:/") else f"models:/{text}")
    if uri.scheme != "models":
        raise InvalidArgument(f"{text!r} is not a registered model; use NAME/3 or NAME@champion")
    return uri


class RegistryService:
    """Registered models: versions, tags, aliases with history, approvals, lineage, cards."""

    def __init__(self, store: ModelRegistryStore, tracking: TrackingService) -> None:
        self.store = store
        self.tracking = tracking

    # registering --------------------------------------------------------------------

    def register_model(
        self,
        source_uri: str,
        name: str,
        *,
        description: str = "",
        tags: Mapping[str, Any] | None = None,
    ) -> ModelVersion:
        """Register the package at ``runs:/<id>/<path>`` as the next version of ``name``."""
        validate_model_name(name)
        uri = ModelURI.parse(source_uri)
        if uri.scheme != "runs" or uri.run_id is None or uri.path is None:
            raise InvalidArgument(
                f"register a run's package, as in runs:/<run_id>/model, not {source_uri!r}"
            )
        path = uri.path.strip("/")
        if not path:
            raise InvalidArgument(f"{source_uri!r} names no package path; use runs:/<id>/model")
        clean_description = validate_text_value(description, "description", MAX_DESCRIPTION_LENGTH)
        clean_tags = {
            validate_key(k, "tag key"): validate_text_value(v, f"tag {k!r}", MAX_TAG_VALUE_LENGTH)
            for k, v in (tags or {}).items()
        }
        run = self.tracking.get_run(uri.run_id)
        descriptor = f"{path}/{DESCRIPTOR}"
        if descriptor not in {a.name for a in self.tracking.list_artifacts(run.id)}:
            raise NotFound(
                f"run {run.id} has no model package at {path!r} (no {descriptor}); log one "
                f"with keel.log_model(model, name={path!r}), or see the run's artifacts with "
                f"`keel runs show {run.id}`"
            )
        return self.store.create_version(
            name,
            run_id=run.id,
            source=f"runs:/{run.id}/{path}",
            description=clean_description,
            tags_=clean_tags,
            gate=run.tags.get("keel.gate"),
        )

    # reading ------------------------------------------------------------------------

    def get_model_version(self, name: str, version: int | str) -> ModelVersion:
        return self.store.get_version(validate_model_name(name), _version_number(version))

    def get_by_alias(self, name: str, alias: str) -> ModelVersion:
        return self.store.get_by_alias(validate_model_name(name), validate_alias(alias))

    def resolve(self, uri: str | ModelURI) -> ModelVersion:
        """The version a ``models:/NAME/3`` or ``models:/NAME@alias`` URI names."""
        parsed = uri if isinstance(uri, ModelURI) else ModelURI.parse(uri)
        if parsed.scheme != "models" or parsed.name is None:
            raise InvalidArgument(
                f"{str(parsed)!r} is a run's package, not a registered model; "
                "load it directly, or resolve models:/NAME/3 or models:/NAME@champion"
            )
        if parsed.alias is not None:
            return self.store.get_by_alias(parsed.name, parsed.alias)
        assert parsed.version is not None
        return self.store.get_version(parsed.name, parsed.version)

    def get(self, ref: str) -> ModelVersion:
        """The version ``NAME/3`` or ``NAME@alias`` names."""
        return self.resolve(parse_version_ref(ref))

    def list_models(self) -> list[RegisteredModel]:
        return self.store.list_models()

    def list_versions(self, name: str) -> list[ModelVersion]:
        return self.store.list_versions(validate_model_name(name))

    def search_models(
        self, filter: str | None = None, max_results: int = 1000
    ) -> list[ModelVersion]:
        """Versions matching ``filter`` over name, version, status, tags, metrics, params."""
        if isinstance(max_results, bool) or not isinstance(max_results, int) or max_results < 1:
            raise InvalidArgument(f"max_results must be a positive integer, got {max_results!r}")
        expr = parse_filter(filter, MODEL_ATTRIBUTES)
        self.tracking.flush()
        return self.store.search_versions(expr, limit=max_results)

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasMove]:
        clean = None if alias is None else validate_alias(alias)
        return self.store.alias_history(validate_model_name(name), clean)

    def approvals(self, name: str, version: int | str | None = None) -> list[Approval]:
        number = None if version is None else _version_number(version)
        return self.store.approvals(validate_model_name(name), number)

    # aliases ------------------------------------------------------------------------

    def set_alias(
        self,
        name: str,
        alias: str,
        version: int | str,
        *,
        actor: str | None = None,
        reason: str | None = None,
        override: bool = False,
    ) -> ModelVersion:
        """Point ``alias`` at ``version``; ``champion`` needs a passed gate or an override.

        An override needs an ``actor`` and a non-empty ``reason``; it is recorded as an
        approval of kind ``override``. A passed gate with an ``actor`` records an
        ``approval``. Every move is appended to the alias's history.
        """
        validate_model_name(name)
        validate_alias(alias)
        number = _version_number(version)
        who, why = validate_actor(actor), validate_reason(reason)
        if override and (who is None or why is None):
            raise InvalidArgument(
                "an override needs an actor and a reason, e.g. --override --actor "
                "ada@example.com --reason 'gate metric fixed upstream; approved by risk'"
            )
        gated = alias in GATED_ALIASES

        def check(gate: str | None) -> str | None:
            if not gated:
                return None
            if gate == "passed":
                return "approval" if who is not None else None
            if override:
                return "override"
            state = "failed" if gate == "failed" else "was never run"
            raise Conflict(
                f"version {number} of model {name!r} cannot become {alias!r}: its validation "
                f"gate {state}; run `keel models validate` on its run, or override with "
                "--override --actor NAME --reason '...' (the approval is recorded)"
            )

        found, _ = self.store.set_alias(name, alias, number, actor=who, reason=why, check=check)
        return found

    def delete_alias(
        self, name: str, alias: str, *, actor: str | None = None, reason: str | None = None
    ) -> int:
        """Remove ``alias``; return the version it pointed at (recorded in its history)."""
        return self.store.delete_alias(
            validate_model_name(name),
            validate_alias(alias),
            actor=validate_actor(actor),
            reason=validate_reason(reason),
        )

    def rollback(
        self,
        name: str,
        alias: str = "champion",
        *,
        actor: str | None = None,
        reason: str | None = None,
    ) -> ModelVersion:
        """Move ``alias`` back to the version it held before its current one."""
        found, _ = self.store.rollback(
            validate_model_name(name),
            validate_alias(alias),
            actor=validate_actor(actor),
            reason=validate_reason(reason),
        )
        return found

    # lifecycle ----------------------------------------------------------------------

    def archive(self, name: str, version: int | str) -> ModelVersion:
        """Archive a version: it stays resolvable by number but can take no alias."""
        return self.store.set_status(
            validate_model_name(name), _version_number(version), "archived"
        )

    def deprecate(self, name: str, version: int | str) -> ModelVersion:
        """Mark a version deprecated: still usable, flagged in listings and cards."""
        return self.store.set_status(
            validate_model_name(name), _version_number(version), "deprecated"
        )

    # lineage and cards --------------------------------------------------------------

    def lineage(self, name: str, version: int | str) -> Lineage:
        """Where a version came from: run, params, metrics, datasets, code, environment."""
        found = self.get_model_version(name, version)
        return build_lineage(found, self.tracking, self.store.run_inputs(found.run_id))

    def model_card(
        self,
        name: str,
        version: int | str,
        *,
        intended_use: str = "",
        limitations: str = "",
    ) -> ModelCard:
        """A model card from lineage, the evaluation report, the gate and the aliases."""
        lineage = self.lineage(name, version)
        return build_card(
            lineage,
            self.tracking,
            approvals=self.store.approvals(lineage.version.name, lineage.version.version),
            intended_use=validate_text_value(intended_use, "intended use", MAX_DESCRIPTION_LENGTH),
            limitations=validate_text_value(limitations, "limitations", MAX_DESCRIPTION_LENGTH),
        )
