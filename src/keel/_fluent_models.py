"""The module-level model API: ``keel.log_model``, ``keel.load_model``, ``keel.evaluate``,
``keel.register_model``, ``keel.set_alias`` and friends, bound to the process context.

``models:/NAME@alias`` and ``models:/NAME/3`` are resolved through the registry to the
``runs:/`` package they point at; the packaging service never sees the registry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from keel._fluent import active_run
from keel.context import get_context
from keel.core._models import ModelInfo, ModelSignature, ModelURI, ModelVersion
from keel.errors import InvalidArgument, NotFound

if TYPE_CHECKING:
    import pandas as pd

    from keel.evaluation import EvaluationReport, Gate, GateResult
    from keel.models import LoadedModel
    from keel.models._package import PackageFiles
    from keel.stores.metadata import SqliteReader

__all__ = [
    "evaluate",
    "get_model_version",
    "load_model",
    "log_model",
    "register_model",
    "search_models",
    "set_alias",
    "validate_model",
]


def _active_run_id(what: str) -> str:
    run = active_run()
    if run is None:
        raise InvalidArgument(f"{what} needs an active run; wrap it in `with keel.start_run():`")
    return run.id


def log_model(
    model: Any,
    name: str = "model",
    *,
    input_example: Any = None,
    signature: ModelSignature | None = None,
    flavor: str | None = None,
    allow_pickle: bool = False,
    trusted_types: Sequence[str] = (),
    metadata: Mapping[str, Any] | None = None,
) -> ModelInfo:
    """Package ``model`` in the active run (``.uri`` is ``runs:/<run_id>/<name>``)."""
    return get_context().models.log_model(
        _active_run_id("log_model"),
        model,
        name,
        input_example=input_example,
        signature=signature,
        flavor=flavor,
        allow_pickle=allow_pickle,
        trusted_types=trusted_types,
        metadata=metadata,
    )


def _package_uri(uri: str | ModelURI) -> ModelURI:
    parsed = uri if isinstance(uri, ModelURI) else ModelURI.parse(uri)
    if parsed.scheme == "models":
        return ModelURI.parse(get_context().registry.resolve(parsed).source)
    return parsed


def load_model(uri: str | ModelURI, *, allow_pickle: bool = False) -> LoadedModel:
    """Load ``runs:/<id>/model``, ``models:/NAME/3`` or ``models:/NAME@alias``.

    The returned model checks every input against the package's signature.
    """
    parsed = uri if isinstance(uri, ModelURI) else ModelURI.parse(uri)
    context = get_context()
    quick = context.package_reader()
    if quick is not None:
        loaded = _load_read_only(*quick, parsed, allow_pickle=allow_pickle)
        if loaded is not None:
            return loaded
    return context.models.load_model(_package_uri(parsed), allow_pickle=allow_pickle)


def _load_read_only(
    reader: SqliteReader, files: PackageFiles, uri: ModelURI, *, allow_pickle: bool
) -> LoadedModel | None:
    """The model through read-only look-ups (ADR 0020); None when anything is not found,
    so that the full store answers (and explains) instead."""
    from keel.models._package import load_package, read_info

    if uri.scheme == "models":
        assert uri.name is not None
        source = reader.source(uri.name, version=uri.version, alias=uri.alias)
        if source is None:
            return None
        uri = ModelURI.parse(source)
    try:
        return load_package(files, read_info(files, uri), allow_pickle=allow_pickle)
    except NotFound:
        return None


def evaluate(
    model: Any,
    data: pd.DataFrame,
    target: str,
    *,
    slices: Sequence[str | Sequence[str]] = (),
    sensitive: str | None = None,
    baseline: Any = "dummy",
    log: bool = True,
    **options: Any,
) -> EvaluationReport:
    """Evaluate ``model`` overall and per slice; logged to the active run, if any."""
    from keel.evaluation import evaluate as evaluate_model

    if isinstance(model, (str, ModelURI)):
        model = load_model(model)
    report = evaluate_model(
        model, data, target, slices=slices, sensitive=sensitive, baseline=baseline, **options
    )
    run = active_run()
    if log and run is not None:
        report.log_to(get_context().tracking, run.id)
    return report


def validate_model(
    report: EvaluationReport,
    gate: Gate | str,
    *,
    champion_report: EvaluationReport | None = None,
    log: bool = True,
) -> GateResult:
    """Check ``report`` against a gate (a Gate, YAML text or a YAML file path)."""
    from keel.evaluation import Gate

    checked = (gate if isinstance(gate, Gate) else Gate.from_yaml(gate)).check(
        report, champion_report
    )
    run = active_run()
    if log and run is not None:
        checked.log_to(get_context().tracking, run.id)
    return checked


def register_model(
    source_uri: str | ModelInfo,
    name: str,
    *,
    description: str = "",
    tags: Mapping[str, str] | None = None,
) -> ModelVersion:
    """Register a logged package (``runs:/<id>/model``) as the next version of ``name``."""
    uri = source_uri.uri if isinstance(source_uri, ModelInfo) else source_uri
    return get_context().registry.register_model(uri, name, description=description, tags=tags)


def set_alias(
    name: str,
    alias: str,
    version: int,
    *,
    actor: str | None = None,
    reason: str | None = None,
    override: bool = False,
) -> ModelVersion:
    """Point ``alias`` at ``version``; ``champion`` needs a passed gate or an override."""
    return get_context().registry.set_alias(
        name, alias, version, actor=actor, reason=reason, override=override
    )


def get_model_version(name: str, version: int) -> ModelVersion:
    return get_context().registry.get_model_version(name, version)


def search_models(filter: str | None = None, max_results: int = 1000) -> list[ModelVersion]:
    """Registered versions matching ``filter`` (``tags.*``, ``metrics.*``, ``params.*``...)."""
    return get_context().registry.search_models(filter, max_results=max_results)
