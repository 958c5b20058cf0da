"""The deployment service: named endpoints whose policies point only at models that exist.

Every model URI of a policy must resolve when the policy is set: ``models:/`` URIs
through the registry (an archived version is refused), ``runs:/`` URIs to a logged
package. Changes are compare-and-set on the deployment's revision, so an edit computed
from a policy that a server has since changed (a canary rolled back) is recomputed,
never applied blind. ``PolicyChange`` and ``build_policy`` turn ``keel deploy`` options
into a policy; ``read_policy_file`` reads one from YAML or JSON.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import orjson
import yaml

from keel.core._deployments import (
    Deployment,
    DeploymentEvent,
    DeploymentPolicy,
    validate_deployment_name,
)
from keel.core._models import ModelURI
from keel.core._names import (
    MAX_DESCRIPTION_LENGTH,
    validate_actor,
    validate_reason,
    validate_text_value,
)
from keel.errors import Conflict, IntegrityError, InvalidArgument, NotFound
from keel.stores.metadata._deployments import DeploymentStore

if TYPE_CHECKING:
    from keel.registry import RegistryService

__all__ = [
    "DeploymentService",
    "DeploymentView",
    "PackageReader",
    "PolicyChange",
    "VariantView",
    "build_policy",
    "parse_weighted",
    "read_policy_file",
    "traffic_shares",
]

_RETRIES = 3
_LIST_HINT = "; find deployable models with `keel models list`"


class PackageReader(Protocol):
    """What the service needs of ``keel.models.ModelService``: a package's descriptor."""

    def get_info(self, uri: str | ModelURI) -> object: ...


# building policies from options ---------------------------------------------------------


@dataclass(frozen=True)
class PolicyChange:
    """The parts of a policy to set; ``None`` (or ``False``) keeps the current value.

    ``ab`` replaces every route after the primary; ``no_ab``, ``no_canary`` and
    ``no_shadow`` remove those parts. Canary thresholds left out keep the current
    canary's, or take the defaults for a new canary.
    """

    model: str | None = None
    weight: float | None = None
    ab: Sequence[tuple[str, float]] | None = None
    canary: str | None = None
    percent: float | None = None
    max_error_increase: float | None = None
    max_latency_ratio: float | None = None
    min_requests: int | None = None
    shadow: str | None = None
    no_ab: bool = False
    no_canary: bool = False
    no_shadow: bool = False

    def is_empty(self) -> bool:
        return all(
            getattr(self, f.name) is None or getattr(self, f.name) is False for f in fields(self)
        )


def parse_weighted(text: str) -> tuple[str, float]:
    """``URI=WEIGHT`` (as given to ``--ab``) as ``(uri, weight)``."""
    uri, sep, raw = text.rpartition("=")
    try:
        weight = float(raw)
    except ValueError:
        weight = None
    if not sep or not uri or weight is None:
        raise InvalidArgument(f"--ab takes URI=WEIGHT, e.g. models:/credit/3=0.2, got {text!r}")
    return uri, weight


def build_policy(change: PolicyChange, base: DeploymentPolicy | None = None) -> DeploymentPolicy:
    """``base`` with ``change`` applied (a new policy when ``base`` is None), fully checked."""
    for on, off, flag in (
        (change.ab, change.no_ab, "--ab"),
        (change.canary, change.no_canary, "--canary"),
        (change.shadow, change.no_shadow, "--shadow"),
    ):
        if on is not None and off:
            raise InvalidArgument(f"{flag} and --no-{flag[2:]} contradict each other; pass one")
    data: dict[str, Any] = {} if base is None else base.to_dict()
    data["routes"] = _routes(change, base)
    data["canary"] = _canary(change, base)
    if change.no_shadow:
        data["shadow"] = None
    elif change.shadow is not None:
        name = "shadow" if base is None else base.shadow_name
        data["shadow"] = {"name": name, "model": change.shadow}
    return DeploymentPolicy.from_dict(data)


def _routes(change: PolicyChange, base: DeploymentPolicy | None) -> list[dict[str, Any]]:
    if base is None:
        if change.model is None:
            raise InvalidArgument(
                "a deployment needs a model: pass --model URI (e.g. models:/credit@champion), "
                "or the whole policy with --from-file policy.yaml"
            )
        routes: list[dict[str, Any]] = [{"name": "primary", "model": change.model, "weight": 1.0}]
    else:
        routes = [r.to_dict() for r in base.routes]
    if change.model is not None:
        routes[0]["model"] = change.model
    if change.weight is not None:
        routes[0]["weight"] = change.weight
    if change.no_ab:
        routes = routes[:1]
    elif change.ab is not None:
        taken = {routes[0]["name"]}
        extra = []
        for uri, weight in change.ab:
            number = len(taken) + 1
            while f"variant-{number}" in taken:
                number += 1
            taken.add(f"variant-{number}")
            extra.append({"name": f"variant-{number}", "model": uri, "weight": weight})
        routes = routes[:1] + extra
    return routes


def _canary(change: PolicyChange, base: DeploymentPolicy | None) -> dict[str, Any] | None:
    current = None if base is None or base.canary is None else base.canary.to_dict()
    tuning = {
        "percent": change.percent,
        "max_error_rate_increase": change.max_error_increase,
        "max_latency_ratio": change.max_latency_ratio,
        "min_requests": change.min_requests,
    }
    given = {k: v for k, v in tuning.items() if v is not None}
    if change.no_canary:
        if given:
            raise InvalidArgument(
                "--no-canary removes the canary; drop --percent and the canary thresholds"
            )
        return None
    if change.canary is None and current is None:
        if given:
            raise InvalidArgument(
                "--percent and the canary thresholds configure a canary; add --canary URI"
            )
        return None
    if current is None and "percent" not in given:
        raise InvalidArgument(
            "--canary needs --percent P, the share of live traffic it gets (e.g. 5)"
        )
    canary = current or {"name": "canary"}
    if change.canary is not None:
        canary["model"] = change.canary
    return canary | given


def read_policy_file(path: str | Path) -> DeploymentPolicy:
    """A policy from a YAML or JSON file in ``DeploymentPolicy.to_dict()`` form.

    The output of ``keel deploy show NAME --json`` is accepted too (its ``policy``).
    """
    where = Path(path)
    try:
        text = where.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFound(f"no policy file {str(where)!r}; check the path") from None
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidArgument(f"cannot read policy file {str(where)!r}: {error}") from None
    try:
        data = orjson.loads(text) if where.suffix.lower() == ".json" else yaml.safe_load(text)
    except (orjson.JSONDecodeError, yaml.YAMLError) as error:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        kind = "JSON" if where.suffix.lower() == ".json" else "YAML"
        raise InvalidArgument(
            f"policy file {str(where)!r} is not valid {kind} ({first}); write it in the form "
            "`keel deploy show NAME --json` prints under 'policy'"
        ) from None
    if (
        isinstance(data, Mapping)
        and "routes" not in data
        and isinstance(data.get("policy"), Mapping)
    ):
        data = data["policy"]
    try:
        return DeploymentPolicy.from_dict(data)
    except InvalidArgument as error:
        raise InvalidArgument(f"{where}: {error.message}") from None


def traffic_shares(policy: DeploymentPolicy) -> dict[str, float]:
    """Percent of live traffic per variant: the canary's percent, the rest by route weight.

    The shadow is absent: it gets a copy of every request, not a share.
    """
    canary = 0.0 if policy.canary is None else policy.canary.percent
    total = sum(r.weight for r in policy.routes)
    shares = {r.name: (100.0 - canary) * r.weight / total for r in policy.routes}
    if policy.canary is not None:
        shares[policy.canary.name] = canary
    return shares


# viewing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class VariantView:
    """One variant of a deployment, resolved to what it serves right now."""

    variant: str
    role: str  # "route", "canary" or "shadow"
    uri: str
    traffic: float | None  # percent of live traffic; None for the shadow (a copy of all)
    resolved: str | None = None  # models:/NAME/3 for a registry URI; the runs:/ URI itself
    source: str | None = None  # the runs:/<id>/<path> package it loads
    status: str | None = None  # the registered version's status
    problem: str | None = None  # why it does not resolve now

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class DeploymentView:
    """A deployment with each variant resolved, as ``keel deploy show`` prints it."""

    deployment: Deployment
    variants: tuple[VariantView, ...]

    def to_dict(self) -> dict[str, Any]:
        return self.deployment.to_dict() | {"variants": [v.to_dict() for v in self.variants]}


# the service ----------------------------------------------------------------------------


class DeploymentService:
    """Deployments: create, change (compare-and-set), record rollbacks, inspect, delete."""

    def __init__(
        self, store: DeploymentStore, registry: RegistryService, models: PackageReader
    ) -> None:
        self.store = store
        self.registry = registry
        self.models = models

    # writing ----------------------------------------------------------------------

    def create(
        self,
        name: str,
        policy: DeploymentPolicy | Mapping[str, Any],
        *,
        description: str = "",
        actor: str | None = None,
        reason: str | None = None,
    ) -> Deployment:
        """A new deployment; every model in ``policy`` must resolve now."""
        validate_deployment_name(name)
        checked = self._checked(policy)
        return self.store.create(
            name,
            checked,
            description=_description(description),
            actor=validate_actor(actor),
            reason=validate_reason(reason),
        )

    def update(
        self,
        name: str,
        policy: DeploymentPolicy | Mapping[str, Any],
        *,
        expected_revision: int | None = None,
        description: str | None = None,
        actor: str | None = None,
        reason: str | None = None,
        kind: str = "update",
        details: Mapping[str, Any] | None = None,
    ) -> Deployment:
        """Replace the policy; with ``expected_revision``, only if nothing changed since.

        Every model must resolve now, except in a ``rollback`` (a server taking traffic
        off a failing canary), which must not depend on the registry.
        """
        validate_deployment_name(name)
        checked = _policy(policy) if kind == "rollback" else self._checked(policy)
        return self.store.update(
            name,
            checked,
            expected_revision=expected_revision,
            description=None if description is None else _description(description),
            actor=validate_actor(actor),
            reason=validate_reason(reason),
            kind=kind,
            details=details,
        )

    def set_policy(
        self,
        name: str,
        change: PolicyChange,
        *,
        description: str | None = None,
        actor: str | None = None,
        reason: str | None = None,
    ) -> Deployment:
        """Apply ``change`` to the current policy; the parts it leaves out stay as they are.

        Computed from the revision it read and written only if that is still current
        (retried on a fresh read otherwise). A change that alters nothing records nothing.
        """
        validate_deployment_name(name)
        if change.is_empty() and description is None:
            raise InvalidArgument(
                f"nothing to change in deployment {name!r}; pass --model, --weight, --ab, "
                "--canary, --percent, --shadow, --no-ab, --no-canary, --no-shadow, -m, "
                "or --from-file"
            )
        clean_description = None if description is None else _description(description)
        for attempt in range(_RETRIES):
            current = self.store.get(name)
            policy = build_policy(change, current.policy)
            if policy == current.policy and clean_description in (None, current.description):
                return current
            checked = self._checked(policy)
            try:
                return self.store.update(
                    name,
                    checked,
                    expected_revision=current.revision,
                    description=clean_description,
                    actor=validate_actor(actor),
                    reason=validate_reason(reason),
                )
            except Conflict:
                if attempt == _RETRIES - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def rollback_canary(
        self,
        name: str,
        *,
        expected_revision: int,
        reason: str,
        details: Mapping[str, Any] | None = None,
        actor: str | None = "keel-serve",
    ) -> Deployment:
        """Drop the canary of revision ``expected_revision``, recorded as a ``rollback``.

        For servers: of several workers rolling back the same revision, one succeeds and
        the others get ``Conflict``. The remaining models are not re-checked: taking
        traffic off a failing canary must not depend on the registry.
        """
        current = self.get(name)
        if current.revision != expected_revision or current.policy.canary is None:
            raise Conflict(f"deployment {name!r} changed since revision {expected_revision}")
        return self.update(
            name,
            current.policy.without_canary(),
            expected_revision=expected_revision,
            actor=actor,
            reason=reason,
            kind="rollback",
            details=details,
        )

    def delete(self, name: str) -> None:
        self.store.delete(validate_deployment_name(name))

    # reading ----------------------------------------------------------------------

    def get(self, name: str) -> Deployment:
        return self.store.get(validate_deployment_name(name))

    def list(self) -> builtins.list[Deployment]:
        return self.store.list()

    def revision(self, name: str) -> int:
        return self.store.revision(validate_deployment_name(name))

    def history(self, name: str) -> builtins.list[DeploymentEvent]:
        return self.store.history(validate_deployment_name(name))

    def describe(self, name: str) -> DeploymentView:
        """The deployment with every variant resolved to its current version (or why not)."""
        deployment = self.get(name)
        policy = deployment.policy
        shares = traffic_shares(policy)
        roles = {r.name: "route" for r in policy.routes}
        if policy.canary is not None:
            roles[policy.canary.name] = "canary"
        if policy.shadow is not None:
            roles[policy.shadow_name] = "shadow"
        variants = []
        for variant, uri in policy.models().items():
            view = VariantView(variant, roles[variant], uri, shares.get(variant))
            try:
                resolved, source, status = self._resolve(variant, uri)
            except (NotFound, InvalidArgument, IntegrityError) as error:
                view = replace(view, problem=error.message)
            else:
                view = replace(view, resolved=resolved, source=source, status=status)
            variants.append(view)
        return DeploymentView(deployment, tuple(variants))

    # helpers ----------------------------------------------------------------------

    def _checked(self, policy: DeploymentPolicy | Mapping[str, Any]) -> DeploymentPolicy:
        """``policy`` as a DeploymentPolicy whose every model resolves now."""
        checked = _policy(policy)
        for variant, uri in checked.models().items():
            self._resolve(variant, uri)
        return checked

    def _resolve(self, variant: str, uri: str) -> tuple[str, str, str | None]:
        """``(resolved URI, package source, status)`` of a variant's model, or why not."""
        parsed = ModelURI.parse(uri)
        try:
            if parsed.scheme == "models":
                version = self.registry.resolve(parsed)
                if version.status == "archived":
                    raise InvalidArgument(
                        f"version {version.version} of model {version.name!r} is archived; "
                        "deploy an active version (see `keel models show "
                        f"{version.name}`)"
                    )
                return version.uri, version.source, version.status
            self.models.get_info(parsed)
            return str(parsed), str(parsed), None
        except NotFound as error:
            hint = "" if "keel models list" in error.message else _LIST_HINT
            raise NotFound(
                f"the {variant!r} model {uri} cannot be deployed: {error.message}{hint}"
            ) from None
        except InvalidArgument as error:
            raise InvalidArgument(
                f"the {variant!r} model {uri} cannot be deployed: {error.message}"
            ) from None
        except IntegrityError as error:
            raise IntegrityError(
                f"the {variant!r} model {uri} cannot be deployed: {error.message}"
            ) from None


def _policy(policy: DeploymentPolicy | Mapping[str, Any]) -> DeploymentPolicy:
    return policy if isinstance(policy, DeploymentPolicy) else DeploymentPolicy.from_dict(policy)


def _description(description: object) -> str:
    if not isinstance(description, str):
        raise InvalidArgument(f"description must be a string, got {type(description).__name__}")
    return validate_text_value(description.strip(), "description", MAX_DESCRIPTION_LENGTH)
